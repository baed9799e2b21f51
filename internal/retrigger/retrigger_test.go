package retrigger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

func open(t *testing.T, ttl time.Duration) (*Marks, *testenv.NATS) {
	t.Helper()
	n := testenv.StartNATS(t)
	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(context.Background(), js, ttl, 1, registry.All())
	if err != nil {
		t.Fatal(err)
	}
	return m, n
}

func ev(order string) *events.Event {
	return &events.Event{Provider: mrnpay.Name, Account: "mrn-in", Kind: events.KindPayin, MerchantOrderID: order, Status: events.StatusSucceeded}
}

// TestMarked checks what ingress sees of the reconciler's marks: a mark is
// visible to the very next lookup (a resend may follow the query within
// milliseconds), Unmark removes it, and only a success of a provider that
// resends is ever marked.
func TestMarked(t *testing.T) {
	ctx := context.Background()
	m, _ := open(t, time.Hour)
	for i := range 200 {
		order := fmt.Sprintf("o%d", i)
		if err := m.Mark(ctx, mrnpay.Name, "mrn-in", events.KindPayin, order); err != nil {
			t.Fatal(err)
		}
		if !m.Marked(ctx, ev(order)) {
			t.Fatalf("mark of %s not seen by the lookup right after it", order)
		}
	}
	if m.Marked(ctx, ev("other")) {
		t.Fatal("an order never marked is marked")
	}
	if err := m.Unmark(ctx, mrnpay.Name, "mrn-in", events.KindPayin, "o1"); err != nil {
		t.Fatal(err)
	}
	if m.Marked(ctx, ev("o1")) {
		t.Fatal("unmarked order still marked")
	}
	pending := ev("o2")
	pending.Status = events.StatusPending
	if m.Marked(ctx, pending) {
		t.Fatal("a pending callback is labelled a retrigger (mrnpay resends successes only)")
	}
	other := ev("o2")
	other.Provider = jpglo.Name
	if m.Marked(ctx, other) {
		t.Fatal("a provider without resends is marked")
	}
	otherAccount := ev("o2")
	otherAccount.Account = "mrn-cn"
	if m.Marked(ctx, otherAccount) {
		t.Fatal("a mark of one account marks another's order")
	}
}

// TestMarksExpireByAge checks that a mark ends with the bucket's TTL.
func TestMarksExpireByAge(t *testing.T) {
	ctx := context.Background()
	m, _ := open(t, time.Second)
	if err := m.Mark(ctx, mrnpay.Name, "mrn-in", events.KindPayin, "o1"); err != nil {
		t.Fatal(err)
	}
	if !m.Marked(ctx, ev("o1")) {
		t.Fatal("mark not seen")
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return !m.Marked(ctx, ev("o1")) }, "mark outlived the TTL")
}

// TestNilMarks: ingress runs without the bucket when it cannot be opened.
func TestNilMarks(t *testing.T) {
	var m *Marks
	if m.Marked(context.Background(), ev("o1")) {
		t.Fatal("nil Marks marked an order")
	}
}
