package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
)

// Two replicas started on the same config share the subscribers' durable
// consumers, each pinned to one replica (PinGroup): every event reaches
// every subscriber exactly once (by webhook-id) and per merchant order in
// stream order, although every order's first event fails once and its
// retry is redelivered while the order's later event waits. One replica
// delivers each subscriber's events, and says so in
// payhook_dispatch_subscriber_active.
func TestReplicasDeliverInOrderExactlyOnce(t *testing.T) {
	t.Parallel()
	evs, pending := twoEventOrders(100)
	ra, rb := newReceiver(t, failPendingOnce(pending)), newReceiver(t, failPendingOnce(pending))
	h := newHarness(t, sub(t, "a", ra.srv.URL), sub(t, "b", rb.srv.URL))
	r1 := h.start(t)
	r2 := h.startOn(t, h.connect(t))
	h.publish(t, evs...)
	for name, rc := range map[string]*receiver{"a": ra, "b": rb} {
		testenv.Eventually(t, 60*time.Second, func() bool { return len(rc.delivered()) >= len(evs) }, "subscriber %s: delivered %d of %d", name, len(rc.delivered()), len(evs))
	}
	time.Sleep(500 * time.Millisecond) // nothing more arrives
	for name, rc := range map[string]*receiver{"a": ra, "b": rb} {
		checkOrdered(t, evs, rc.delivered())
		n1 := counter(r1, "payhook_dispatch_deliveries_total", "subscriber", name, "outcome", OutcomeDelivered)
		n2 := counter(r2, "payhook_dispatch_deliveries_total", "subscriber", name, "outcome", OutcomeDelivered)
		if int(n1+n2) != len(evs) || (n1 != 0 && n2 != 0) {
			t.Errorf("subscriber %s: replica 1 delivered %v, replica 2 %v; want one of them all %d", name, n1, n2, len(evs))
		}
		a1 := counter(r1, "payhook_dispatch_subscriber_active", "subscriber", name)
		a2 := counter(r2, "payhook_dispatch_subscriber_active", "subscriber", name)
		if want1 := float64(min(n1, 1)); a1 != want1 || a2 != 1-want1 {
			t.Errorf("subscriber %s: active gauges %v and %v, want the delivering replica 1 and the other 0", name, a1, a2)
		}
		for _, r := range []*running{r1, r2} {
			if got := counter(r, "payhook_dispatch_ordering_given_up_total", "subscriber", name); got != 0 {
				t.Errorf("subscriber %s: ordering_given_up_total = %v", name, got)
			}
		}
	}
}

// The replica delivering a subscriber's events stops (SIGTERM) while
// failed events wait in JetStream for their retry and the later events of
// their orders are held: it gives the held events back and unpins the
// consumer, and the standing-by replica takes over at once (not after
// PinnedTTL = AckWait, 20 s here) and delivers everything in order.
func TestStoppedReplicaHandsOverToTheOther(t *testing.T) {
	t.Parallel()
	evs, pending := twoEventOrders(5)
	rc := newReceiver(t, failPendingOnce(pending))
	s := sub(t, "handover", rc.srv.URL)
	s.Timeout = config.Duration(5 * time.Second) // AckWait and PinnedTTL 20 s
	s.BackoffInitial, s.BackoffMax = config.Duration(2*time.Second), config.Duration(2*time.Second)
	h := newHarness(t, s)
	r1 := h.start(t)
	h.publish(t, evs...)
	testenv.Eventually(t, 10*time.Second, func() bool { return rc.count() == 5 }, "the 5 pending events did not all fail (%d attempts)", rc.count())
	r2 := h.startOn(t, h.connect(t)) // stands by: r1 is pinned
	time.Sleep(500 * time.Millisecond)
	if n := len(rc.delivered()); n != 0 {
		t.Fatalf("%d events delivered while their order's pending one waits for its retry", n)
	}
	stopped := time.Now()
	r1.stop()
	testenv.Eventually(t, 30*time.Second, func() bool { return len(rc.delivered()) >= len(evs) }, "delivered %d of %d", len(rc.delivered()), len(evs))
	if took := time.Since(stopped); took > 10*time.Second {
		t.Errorf("the other replica took over %s after the stop: the pin was not handed over (PinnedTTL 20 s)", took.Round(time.Second))
	}
	time.Sleep(200 * time.Millisecond)
	checkOrdered(t, evs, rc.delivered())
	if got := counter(r2, "payhook_dispatch_deliveries_total", "subscriber", "handover", "outcome", OutcomeDelivered); got != float64(len(evs)) {
		t.Errorf("replica 2 delivered %v, want all %d", got, len(evs))
	}
}

// The pin moves while the pinned replica holds later events behind retries
// (here an operator's unpin; in production, PinnedTTL running out): the
// replica learns it from its next fetch (423), gives the held events back
// due after their retries, and whichever replica is pinned next delivers
// every order in order, each event once.
func TestPinMovedWhileEventsAreHeld(t *testing.T) {
	t.Parallel()
	evs, pending := twoEventOrders(20)
	rc := newReceiver(t, failPendingOnce(pending))
	s := sub(t, "moved", rc.srv.URL)
	s.BackoffInitial, s.BackoffMax = config.Duration(2*time.Second), config.Duration(2*time.Second)
	h := newHarness(t, s)
	r1 := h.start(t)
	h.publish(t, evs...)
	testenv.Eventually(t, 10*time.Second, func() bool { return rc.count() == 20 }, "the 20 pending events did not all fail (%d attempts)", rc.count())
	r2 := h.startOn(t, h.connect(t))
	time.Sleep(200 * time.Millisecond)
	stream, err := h.js.Stream(context.Background(), natsbus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.UnpinConsumer(context.Background(), ConsumerName("moved"), PinGroup); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() bool { return len(rc.delivered()) >= len(evs) }, "delivered %d of %d", len(rc.delivered()), len(evs))
	time.Sleep(200 * time.Millisecond)
	checkOrdered(t, evs, rc.delivered())
	for name, r := range map[string]*running{"1": r1, "2": r2} {
		if got := counter(r, "payhook_dispatch_ordering_given_up_total", "subscriber", "moved"); got != 0 {
			t.Errorf("ordering_given_up_total on replica %s = %v, want 0", name, got)
		}
	}
	n1 := counter(r1, "payhook_dispatch_deliveries_total", "subscriber", "moved", "outcome", OutcomeDelivered)
	n2 := counter(r2, "payhook_dispatch_deliveries_total", "subscriber", "moved", "outcome", OutcomeDelivered)
	t.Logf("after the unpin: replica 1 delivered %v, replica 2 %v", n1, n2)
}
