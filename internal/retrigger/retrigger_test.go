package retrigger

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

func open(t *testing.T, ttl time.Duration) (*Marks, *testenv.NATS) {
	t.Helper()
	n := testenv.StartNATS(t)
	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(context.Background(), js, ttl, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m, n
}

func ev(order string) *events.Event {
	return &events.Event{Provider: providers.Mrnpay, Account: "mrn-in", Kind: events.KindPayin, MerchantOrderID: order}
}

// TestMarkedWithAndWithoutMirror checks that Marked answers the same from
// NATS and from the local mirror: a mark made before the mirror started is
// seen (the watch delivers the bucket's contents first), marks made later
// arrive, Unmark removes, other providers are never marked.
func TestMarkedWithAndWithoutMirror(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, _ := open(t, time.Hour)
	if err := m.Mark(ctx, providers.Mrnpay, "mrn-in", events.KindPayin, "before"); err != nil {
		t.Fatal(err)
	}
	if !m.Marked(ctx, ev("before")) || m.Marked(ctx, ev("other")) {
		t.Fatal("without the mirror: want before marked, other not")
	}
	if err := m.Mirror(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		m.mu.RLock()
		defer m.mu.RUnlock()
		return m.live
	}, "mirror never caught up")
	if !m.Marked(ctx, ev("before")) {
		t.Fatal("mirror lost the mark made before it started")
	}
	if err := m.Mark(ctx, providers.Mrnpay, "mrn-in", events.KindPayin, "after"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return m.Marked(ctx, ev("after")) }, "new mark not mirrored")
	if err := m.Unmark(ctx, providers.Mrnpay, "mrn-in", events.KindPayin, "after"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return !m.Marked(ctx, ev("after")) }, "unmark not mirrored")
	if m.Marked(ctx, ev("other")) {
		t.Fatal("an order never marked is marked")
	}
	other := ev("before")
	other.Provider = providers.Jpglo
	if m.Marked(ctx, other) {
		t.Fatal("a provider without resends is marked")
	}

	// The mirror ends with its context; Marked asks NATS again.
	cancel()
	testenv.Eventually(t, 5*time.Second, func() bool {
		m.mu.RLock()
		defer m.mu.RUnlock()
		return !m.live
	}, "mirror did not stop with its context")
	if !m.Marked(context.Background(), ev("before")) {
		t.Fatal("after the mirror stopped: mark not found in NATS")
	}
}

// TestMirroredMarksExpireByAge checks that a mirrored mark ends with the
// bucket's TTL, although expiry in the bucket sends no watch update.
func TestMirroredMarksExpireByAge(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, _ := open(t, time.Second)
	if err := m.Mirror(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Mark(ctx, providers.Mrnpay, "mrn-in", events.KindPayin, "o1"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return m.Marked(ctx, ev("o1")) }, "mark not mirrored")
	testenv.Eventually(t, 5*time.Second, func() bool { return !m.Marked(ctx, ev("o1")) }, "mirrored mark outlived the TTL")
}
