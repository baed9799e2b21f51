package dedupetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
)

func testInvalid(t *testing.T, s Subject) {
	ctx, good := ctxT(t), Order("valid")
	id := ID(good, events.StatusPending)
	long := string(make([]byte, 300))
	tests := []struct {
		name string
		call func() error
	}{
		{"empty id", func() error { _, err := s.Store.Check(ctx, "", good); return err }},
		{"long id", func() error { _, err := s.Store.Check(ctx, long, good); return err }},
		{"empty key", func() error {
			_, err := s.Store.Check(ctx, id, dedupe.Order{Provider: "p", Account: "a", Kind: events.KindPayin})
			return err
		}},
		{"bad kind", func() error {
			_, err := s.Store.Check(ctx, id, dedupe.Order{Provider: "p", Account: "a", Kind: "refund", Key: "k"})
			return err
		}},
		{"conflict is not a status", func() error { return s.Store.Record(ctx, id, good, events.StatusConflict) }},
		{"conflict is not a status (prior)", func() error {
			_, err := s.Store.RecordPrior(ctx, id, good, events.StatusConflict)
			return err
		}},
		{"empty status", func() error { return s.Store.Record(ctx, id, good, "") }},
		{"empty reference", func() error { _, _, err := s.Refs.ClaimReference(ctx, "a", "", "o"); return err }},
		{"empty order", func() error { return s.Refs.ReleaseReference(ctx, "a", "r", "") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, dedupe.ErrInvalid) || errors.Is(err, dedupe.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrInvalid only", err)
			}
		})
	}
	wantCheck(t, s.Store, id, good, dedupe.Check{})
}

func testCancelled(t *testing.T, s Subject) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := Order("cancelled")
	_, err := s.Store.Check(ctx, ID(o, events.StatusPending), o)
	if !errors.Is(err, dedupe.ErrUnavailable) {
		t.Fatalf("Check with a cancelled context: %v, want ErrUnavailable", err)
	}
	if err := s.Store.Record(ctx, ID(o, events.StatusPending), o, events.StatusPending); !errors.Is(err, dedupe.ErrUnavailable) {
		t.Fatalf("Record with a cancelled context: %v, want ErrUnavailable", err)
	}
	if _, err := s.Store.RecordPrior(ctx, ID(o, events.StatusPending), o, events.StatusPending); !errors.Is(err, dedupe.ErrUnavailable) {
		t.Fatalf("RecordPrior with a cancelled context: %v, want ErrUnavailable", err)
	}
}

// testOutage: the store's server dies. Every call fails with ErrUnavailable
// within Bound even without a deadline of the caller's, and works again once
// the server is back; what it remembers then depends on durability.
func testOutage(t *testing.T, s Subject) {
	o := Order("outage")
	id := ID(o, events.StatusSucceeded)
	MustRecord(t, s.Store, id, o, events.StatusSucceeded)
	if _, ok := claim(t, s.Refs, "fan-in", "utr-outage", "A"); !ok {
		t.Fatal("claim refused")
	}

	s.Stop()
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"check", func(ctx context.Context) error { _, err := s.Store.Check(ctx, id, o); return err }},
		{"record", func(ctx context.Context) error { return s.Store.Record(ctx, id, o, events.StatusSucceeded) }},
		{"record prior", func(ctx context.Context) error {
			_, err := s.Store.RecordPrior(ctx, id, o, events.StatusSucceeded)
			return err
		}},
		{"ping", func(ctx context.Context) error { return s.Store.Ping(ctx) }},
		{"claim", func(ctx context.Context) error {
			_, _, err := s.Refs.ClaimReference(ctx, "fan-in", "utr-outage", "B")
			return err
		}},
		{"release", func(ctx context.Context) error { return s.Refs.ReleaseReference(ctx, "fan-in", "utr-outage", "A") }},
	}
	for round := range 2 { // the second round hits a client that already saw the failure
		for _, c := range calls {
			start := time.Now()
			err := c.call(context.Background())
			took := time.Since(start)
			if !errors.Is(err, dedupe.ErrUnavailable) {
				t.Errorf("round %d: %s with the server down: %v, want ErrUnavailable", round, c.name, err)
			}
			if took > Bound+slack {
				t.Errorf("round %d: %s took %s with the server down, want ≤ %s (+ %s slack)", round, c.name, took, Bound, slack)
			}
		}
	}

	s.Start()
	var c dedupe.Check
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		c, err = s.Store.Check(context.Background(), id, o)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover 10s after the server came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	owner, _ := claim(t, s.Refs, "fan-in", "utr-outage", "B")
	if s.Durable {
		if want := (dedupe.Check{Published: true, Order: dedupe.OrderState{Status: events.StatusSucceeded, EventID: id}}); c != want {
			t.Fatalf("after restart of a durable store: %+v, want %+v", c, want)
		}
		if owner != "A" {
			t.Fatalf("after restart of a durable store the reference belongs to %q, want A", owner)
		}
	} else {
		// Documented: a store without persistence forgets; JetStream's
		// Nats-Msg-Id window is then the only guard against a duplicate.
		if c != (dedupe.Check{}) {
			t.Fatalf("after restart without persistence: %+v, want nothing remembered", c)
		}
		if owner != "B" {
			t.Fatalf("after restart without persistence the reference belongs to %q, want B", owner)
		}
	}
	MustRecord(t, s.Store, id, o, events.StatusSucceeded)
	if !MustCheck(t, s.Store, id, o).Published {
		t.Fatal("record after recovery not remembered")
	}
}
