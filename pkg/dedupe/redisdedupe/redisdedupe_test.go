package redisdedupe_test

import (
	"testing"

	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe/dedupetest"
	"github.com/payhook/payhook/pkg/dedupe/redisdedupe"
)

// newSubject starts a redis-server of its own (no persistence) and a store on it.
func newSubject(batch int) dedupetest.Factory {
	return func(t *testing.T, cfg dedupetest.Config) dedupetest.Subject {
		r := testenv.StartRedis(t)
		s, err := redisdedupe.New(r.URL, redisdedupe.Config{
			Window: cfg.Window, ReferenceTTL: cfg.ReferenceTTL, Batch: batch,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return dedupetest.Subject{Store: s, Refs: s, Stop: r.Stop, Start: r.Start}
	}
}

func TestConformance(t *testing.T) {
	dedupetest.Run(t, newSubject(0))
}

func TestConformanceBatched(t *testing.T) {
	dedupetest.Run(t, newSubject(64))
}
