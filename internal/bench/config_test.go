package bench

import (
	"testing"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/registry"
)

// TestConfigYAMLPassesIngressChecks: the config the benchmark starts ingress
// and the dispatcher with passes the checks those binaries make at start,
// for every account of the mix (each provider refuses keys it does not
// know, so a key rendered for every account would stop ingress).
func TestConfigYAMLPassesIngressChecks(t *testing.T) {
	b, err := ConfigYAML("nats://127.0.0.1:4999", "redis://127.0.0.1:6999/0", 18080, 18081, Accounts(), "http://127.0.0.1:18082", 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, b)
	}
	if err := cfg.CheckProviders(registry.All()); err != nil {
		t.Fatalf("providers: %v\n%s", err, b)
	}
	if len(cfg.Accounts) != len(Accounts()) || len(cfg.Subscribers) != 2 {
		t.Fatalf("%d accounts and %d subscribers, want %d and 2", len(cfg.Accounts), len(cfg.Subscribers), len(Accounts()))
	}
	for i, a := range Accounts() {
		for k, v := range a.Keys {
			if got := cfg.Accounts[i].Key(k); got != v {
				t.Errorf("accounts[%d].%s = %q, want %q", i, k, got, v)
			}
		}
	}
}
