package reconcile

import (
	"errors"
	"testing"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe/memdedupe"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/jpglo"

	"github.com/nats-io/nats.go/jetstream"
)

// An account the reconciler must call without a base_url is a config error
// naming the key (exit 2), not days of failing polls.
func TestAccountWithoutBaseURLIsAConfigError(t *testing.T) {
	js, _ := jetstream.New(testenv.StartNATS(t).Connect(t))
	cfg := &config.Config{Accounts: []providers.Account{
		{ID: "mp-in", Provider: "mpurse", MerchantID: "m", AESKey: "mpurseKey16bytes", Currency: "INR"},
		{ID: "glo-in", Provider: "jpglo", MerchantID: "1", Secret: "k", Currency: "INR"},
	}}
	_, err := New(Deps{Config: cfg, JS: js, Store: memdedupe.New(memdedupe.Config{}),
		Queriers: map[string]providers.Querier{"jpglo": jpglo.NewClient(nil)}})
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Key != "accounts[1].base_url" {
		t.Fatalf("New = %v, want a config error on accounts[1].base_url", err)
	}
}
