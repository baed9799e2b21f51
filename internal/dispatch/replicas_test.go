package dispatch

import (
	"testing"
	"time"

	"github.com/payhook/payhook/internal/testenv"
)

// Two replicas started on the same config share each subscriber's durable
// consumer: every event reaches every subscriber exactly once (by
// webhook-id), and both replicas deliver some of it. Some events fail once,
// so their retries can be redelivered to either replica; held events whose
// earlier event went to the other replica are still sent, once.
//
// Per-order ordering is not asserted: across replicas it is not
// guaranteed (docs/dispatcher.md "Ordering guarantee"), since two events of
// one order can be fetched by the two replicas at the same moment.
func TestReplicasShareWorkExactlyOnce(t *testing.T) {
	t.Parallel() // mostly waiting out AckWait
	evs, _ := twoEventOrders(100)
	flaky := map[string]bool{}
	for i := 0; i < len(evs); i += 20 { // every 10th order's pending fails once
		flaky[evs[i].ID()] = true
	}
	ra, rb := newReceiver(t, failPendingOnce(flaky)), newReceiver(t, failPendingOnce(flaky))
	h := newHarness(t, sub(t, "a", ra.srv.URL), sub(t, "b", rb.srv.URL))
	r1 := h.start(t)
	r2 := h.startOn(t, h.connect(t))
	ids := h.publish(t, evs...)
	for name, rc := range map[string]*receiver{"a": ra, "b": rb} {
		// A held event whose earlier event's retry went to the other
		// replica waits for that retry to be due for AckWait (12 s here).
		testenv.Eventually(t, 60*time.Second, func() bool { return len(rc.delivered()) >= len(evs) }, "subscriber %s: delivered %d of %d", name, len(rc.delivered()), len(evs))
	}
	time.Sleep(500 * time.Millisecond) // nothing more arrives
	for name, rc := range map[string]*receiver{"a": ra, "b": rb} {
		got := rc.delivered()
		seen := map[string]bool{}
		for _, id := range got {
			if seen[id] {
				t.Errorf("subscriber %s: %s delivered twice", name, id)
			}
			seen[id] = true
		}
		if !sameSet(got, ids) {
			t.Errorf("subscriber %s: delivered %d events, want the %d published, each once", name, len(got), len(ids))
		}
		n1 := counter(r1, "payhook_dispatch_deliveries_total", "subscriber", name, "outcome", OutcomeDelivered)
		n2 := counter(r2, "payhook_dispatch_deliveries_total", "subscriber", name, "outcome", OutcomeDelivered)
		if n1 == 0 || n2 == 0 || int(n1+n2) != len(evs) {
			t.Errorf("subscriber %s: replica 1 delivered %v, replica 2 %v; want both some, %d in all", name, n1, n2, len(evs))
		}
		t.Logf("subscriber %s: replica 1 delivered %v, replica 2 %v", name, n1, n2)
	}
}
