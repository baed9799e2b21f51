package kvdedupe_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe/dedupetest"
	"github.com/payhook/payhook/pkg/dedupe/kvdedupe"
)

func TestConformance(t *testing.T) {
	dedupetest.Run(t, func(t *testing.T, cfg dedupetest.Config) dedupetest.Subject {
		n := testenv.StartNATS(t)
		js, err := jetstream.New(n.Connect(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := kvdedupe.New(ctx, js, kvdedupe.Config{Window: cfg.Window, ReferenceTTL: cfg.ReferenceTTL})
		if err != nil {
			t.Fatal(err)
		}
		// File storage: what was recorded survives a restart.
		return dedupetest.Subject{Store: s, Refs: s, Stop: n.Stop, Start: n.Start, Durable: true}
	})
}
