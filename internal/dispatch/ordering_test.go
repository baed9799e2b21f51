package dispatch

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

// twoEventOrders is n orders of one pending then one succeeded event each,
// published order by order (p1, s1, p2, s2, ...).
func twoEventOrders(n int) (evs []events.Event, pending map[string]bool) {
	pending = map[string]bool{}
	for i := range n {
		o := fmt.Sprintf("ord-%03d", i)
		p := event("jpglo", "glo-in", events.KindPayin, events.StatusPending, o)
		evs = append(evs, p, event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, o))
		pending[p.ID()] = true
	}
	return evs, pending
}

// failPendingOnce answers 500 to the first attempt of every pending event.
func failPendingOnce(pending map[string]bool) func(*http.Request, string, int) int {
	return func(_ *http.Request, id string, n int) int {
		if pending[id] && n == 0 {
			return 500
		}
		return 200
	}
}

// checkOrdered fails t unless every event of evs (pairs as twoEventOrders
// makes them) was delivered exactly once, pending before succeeded.
func checkOrdered(t *testing.T, evs []events.Event, got []string) {
	t.Helper()
	pos := map[string]int{}
	for i, id := range got {
		if _, dup := pos[id]; dup {
			t.Fatalf("%s delivered twice", id)
		}
		pos[id] = i
	}
	bad := 0
	for i := 0; i < len(evs); i += 2 {
		p, s := evs[i].ID(), evs[i+1].ID()
		if _, ok := pos[p]; !ok {
			t.Fatalf("order %s: pending never delivered", evs[i].MerchantOrderID)
		}
		if pos[p] > pos[s] {
			bad++
			t.Errorf("order %s: succeeded delivered before pending", evs[i].MerchantOrderID)
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d orders out of order", bad, len(evs)/2)
	}
}

// The auditor's reproduction: more held events than the old fetch cap
// (4 × concurrency = 4) made the replica stop fetching, so the failed
// pending events' redeliveries never came back and their succeeded events
// were let go first, after retry delay + AckWait.
func TestOrderingHeldEventsDoNotStopFetching(t *testing.T) {
	tests := []struct {
		name        string
		orders      int
		concurrency int
		backoff     time.Duration
	}{
		{"6 orders, concurrency 1 (cap was 4)", 6, 1, time.Second},
		{"100 orders, default concurrency 16 (cap was 64)", 100, 16, time.Second},
		// 60 orders = 120 events at concurrency 1: more than MaxAckPending
		// (64), so JetStream itself stops handing out new events until some
		// are acked; redeliveries still come and everything gets through.
		{"more than MaxAckPending, concurrency 1", 60, 1, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, pending := twoEventOrders(tt.orders)
			rc := newReceiver(t, failPendingOnce(pending))
			s := sub(t, "ord", rc.srv.URL)
			s.Concurrency = tt.concurrency
			s.BackoffInitial, s.BackoffMax = config.Duration(tt.backoff), config.Duration(tt.backoff)
			h := newHarness(t, s)
			h.publish(t, evs...)
			h.start(t)
			// The old code delivered the held events after retry delay +
			// AckWait (1 s + 12 s): waiting well past that shows them.
			testenv.Eventually(t, 30*time.Second, func() bool { return len(rc.delivered()) >= len(evs) }, "delivered %d of %d", len(rc.delivered()), len(evs))
			time.Sleep(200 * time.Millisecond)
			checkOrdered(t, evs, rc.delivered())
		})
	}
}

// A replica stopped while failed events wait in JetStream for their retry
// gives the events held behind them back with a delay that makes them due
// just after the failed ones, so the next replica gets each failed event
// first and holds the later one again. (Given back at once, the later
// events would come back first; not given back, only after AckWait.)
func TestRestartKeepsHeldEventsBehindTheirRetry(t *testing.T) {
	evs, pending := twoEventOrders(5)
	rc := newReceiver(t, failPendingOnce(pending))
	s := sub(t, "restart", rc.srv.URL)
	s.Timeout = config.Duration(5 * time.Second) // AckWait 20 s
	s.BackoffInitial, s.BackoffMax = config.Duration(2*time.Second), config.Duration(2*time.Second)
	h := newHarness(t, s)
	r1 := h.start(t)
	h.publish(t, evs...)
	c, err := h.js.Consumer(context.Background(), natsbus.StreamEvents, ConsumerName("restart"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && rc.count() == 5
	}, "the 5 pending events did not all fail with every event fetched (%d attempts)", rc.count())
	if n := len(rc.delivered()); n != 0 {
		t.Fatalf("%d succeeded events delivered while their pending one waits for its retry", n)
	}
	stopped := time.Now()
	r1.stop()
	h.start(t)
	testenv.Eventually(t, 30*time.Second, func() bool { return len(rc.delivered()) >= len(evs) }, "delivered %d of %d", len(rc.delivered()), len(evs))
	if took := time.Since(stopped); took > 10*time.Second {
		t.Errorf("held events came back %s after the stop: not given back, left to AckWait (20 s)", took.Round(time.Second))
	}
	time.Sleep(200 * time.Millisecond)
	checkOrdered(t, evs, rc.delivered())
}

// With two replicas, a failed event's retry comes back to the replica that
// holds the later events of its order, even while that replica has every
// slot busy and does not fetch: the other replica stands by (the consumer
// is pinned, PinGroup) instead of taking the retry and leaving the later
// event to be sent out of order. (Before pinning, the other replica got the
// retry and the held event went out only after AckWait, counted in
// ordering_given_up_total.)
func TestRetryStaysWithThePinnedReplica(t *testing.T) {
	t.Parallel()
	first := event("jpglo", "glo-in", events.KindPayin, events.StatusPending, "X")
	later := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "X")
	var blockers []events.Event
	blocking := map[string]bool{}
	for i := range 4 {
		b := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, fmt.Sprintf("B%d", i))
		blockers = append(blockers, b)
		blocking[b.ID()] = true
	}
	release := make(chan struct{})
	rc := newReceiver(t, func(r *http.Request, id string, n int) int {
		switch {
		case id == first.ID() && n == 0:
			return 500
		case blocking[id] && n == 0: // hang until the test lets go
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		return 200
	})
	s := sub(t, "strand", rc.srv.URL)
	s.Concurrency = 1                            // at most 4 deliveries started per replica
	s.Timeout = config.Duration(5 * time.Second) // AckWait and PinnedTTL 20 s
	backoff := 500 * time.Millisecond
	s.BackoffInitial, s.BackoffMax = config.Duration(backoff), config.Duration(backoff)
	h := newHarness(t, s)
	a := h.start(t)
	h.publish(t, first, later)
	testenv.Eventually(t, 5*time.Second, func() bool { return rc.count() == 1 }, "first attempt not seen")
	h.publish(t, blockers...)
	// Replica a starts the 4 blockers (one hangs, three wait for the slot)
	// and so stops fetching while first's retry falls due.
	wa := a.d.roster().byID["strand"]
	testenv.Eventually(t, 5*time.Second, func() bool {
		wa.mu.Lock()
		defer wa.mu.Unlock()
		return wa.started == 4
	}, "replica a did not fill its slots")
	b := h.startOn(t, h.connect(t))
	time.Sleep(3 * time.Second) // first's retry has been due for 2.5 s
	if got := counter(b, "payhook_dispatch_deliveries_total", "subscriber", "strand", "outcome", OutcomeDelivered); got != 0 {
		t.Fatalf("replica b delivered %v events of a subscriber pinned to a", got)
	}
	close(release)
	testenv.Eventually(t, 15*time.Second, func() bool { return len(rc.delivered()) >= 6 }, "delivered %v of 6", rc.delivered())
	time.Sleep(200 * time.Millisecond)
	got := rc.delivered()
	if len(got) != 6 {
		t.Fatalf("delivered %v, want each of the 6 events once", got)
	}
	if slices.Index(got, first.ID()) > slices.Index(got, later.ID()) {
		t.Fatalf("later before first: %v", got)
	}
	if n := counter(a, "payhook_dispatch_deliveries_total", "subscriber", "strand", "outcome", OutcomeDelivered); n != 6 {
		t.Errorf("replica a delivered %v, want all 6", n)
	}
	for name, r := range map[string]*running{"a": a, "b": b} {
		if got := counter(r, "payhook_dispatch_ordering_given_up_total", "subscriber", "strand"); got != 0 {
			t.Errorf("ordering_given_up_total on %s = %v, want 0", name, got)
		}
	}
}
