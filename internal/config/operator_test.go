package config

import (
	"strings"
	"testing"
	"time"
)

// TestTraceAndWatchRetentionKeys: defaults, a value from the environment,
// and one-line errors naming the key.
func TestTraceAndWatchRetentionKeys(t *testing.T) {
	env := func(k string) (string, bool) {
		if k == "TRACE_BYTES" {
			return "4194304", true
		}
		return "", false
	}
	c, err := Parse([]byte("nats: {url: \"nats://127.0.0.1:1\"}\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.TraceMaxAge.D() != 30*24*time.Hour || c.NATS.TraceMaxBytes != 2<<30 || c.Reconciler.WatchRetention.D() != 7*24*time.Hour {
		t.Errorf("defaults: %v %v %v", c.NATS.TraceMaxAge, c.NATS.TraceMaxBytes, c.Reconciler.WatchRetention)
	}
	c, err = Parse([]byte("nats:\n  url: nats://127.0.0.1:1\n  trace_max_bytes: ${TRACE_BYTES}\n"), env)
	if err != nil || c.NATS.TraceMaxBytes != 4194304 {
		t.Fatalf("from the environment: %v %v", err, c)
	}
	for name, tc := range map[string]struct{ yaml, key string }{
		"trace bytes too small":             {"nats: {url: \"nats://127.0.0.1:1\", trace_max_bytes: 1000}\n", "nats.trace_max_bytes"},
		"trace age negative":                {"nats: {url: \"nats://127.0.0.1:1\", trace_max_age: -1h}\n", "nats.trace_max_age"},
		"retention under the schedule":      {"nats: {url: \"nats://127.0.0.1:1\"}\nreconciler: {schedule: [1m, 48h], watch_retention: 24h}\n", "reconciler.watch_retention"},
		"retention under a provider's step": {"nats: {url: \"nats://127.0.0.1:1\"}\nreconciler: {watch_retention: 30h, providers: {mrnpay: {schedule: [36h]}}}\n", "reconciler.watch_retention"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), env)
			if err == nil || !strings.Contains(err.Error(), tc.key) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v, want one line naming %s", err, tc.key)
			}
		})
	}
}
