package memdedupe_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/dedupe/dedupetest"
	"github.com/payhook/payhook/pkg/dedupe/memdedupe"
	"github.com/payhook/payhook/pkg/events"
)

func TestConformance(t *testing.T) {
	dedupetest.Run(t, func(t *testing.T, cfg dedupetest.Config) dedupetest.Subject {
		s := memdedupe.New(memdedupe.Config{Window: cfg.Window, ReferenceTTL: cfg.ReferenceTTL})
		return dedupetest.Subject{
			Store: s,
			Refs:  s,
			Stop:  func() { s.SetUnavailable(true) },
			// Like a Redis without persistence: back, but empty.
			Start: func() { s.Reset(); s.SetUnavailable(false) },
		}
	})
}

// TestSweepBoundsMemory: expired orders are dropped even if never asked about again.
func TestSweepBoundsMemory(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := memdedupe.New(memdedupe.Config{Window: time.Minute, Now: func() time.Time { return now }})
	for i := range 3000 {
		o := dedupetest.Order(strconv.Itoa(i))
		dedupetest.MustRecord(t, s, dedupetest.ID(o, events.StatusPending), o, events.StatusPending)
		now = now.Add(time.Second) // each order outlives the 60 s window after 60 more records
	}
	if n := s.Len(); n > 60+1024 {
		t.Fatalf("%d orders tracked, want at most the window's 60 plus one sweep interval", n)
	}
	o := dedupetest.Order("2999")
	if c := dedupetest.MustCheck(t, s, dedupetest.ID(o, events.StatusPending), o); !c.Published {
		t.Fatal("the latest order was swept")
	}
}
