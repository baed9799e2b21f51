package reconcile

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

// A terminal callback closes its order's watch as soon as ingress publishes
// it, not at the watch's next due time (an hour away here): the watch's
// message is gone, both gauges drop, the provider is never asked.
func TestTerminalEventClosesTheWatchAtOnce(t *testing.T) {
	h := newHarness(t, harnessOpts{schedule: "[1h, 1h]"})
	h.jpglo.set("G-7", "success")
	rep := h.start()
	h.announce("jpglo", `{"account":"glo-in","kind":"payin","merchant_order_id":"G-7"}`)
	testenv.Eventually(t, 5*time.Second, func() bool {
		return counter(rep.r.m.open) == 1 && counter(rep.r.m.oldest) > 0
	}, "watch not open (watches_open %v, oldest %v)", counter(rep.r.m.open), counter(rep.r.m.oldest))

	code, _ := post(t, h.ingress+"/v1/callbacks/jpglo/glo-in/payin", "", jpgloCallback("G-7"), "Content-Type", "application/json")
	if code != 200 {
		t.Fatalf("callback: %d", code)
	}
	testenv.Eventually(t, 3*time.Second, func() bool { return h.openWatches() == 0 }, "watch still open after its event")
	testenv.Eventually(t, 3*time.Second, func() bool {
		return counter(rep.r.m.open) == 0 && counter(rep.r.m.oldest) == 0
	}, "gauges did not drop (watches_open %v, oldest %v)", counter(rep.r.m.open), counter(rep.r.m.oldest))
	settle(t, rep.r.m.closed.WithLabelValues("jpglo", "callback"), 1, "closed{callback}")
	if got := counter(rep.r.m.recovered.WithLabelValues("jpglo", "poll")) + counter(rep.r.m.recovered.WithLabelValues("jpglo", "callback")); got != 0 {
		t.Errorf("recovered = %v, want 0: the provider's own callback recovered nothing", got)
	}
	time.Sleep(200 * time.Millisecond) // nothing left to poll
	if got := h.jpglo.count("G-7"); got != 0 {
		t.Errorf("provider queried %d times for an order whose event was published", got)
	}
}

// With two replicas, one closer consumer takes each event: the close is
// counted once, and the replica that did not close the watch drops it from
// oldest_watch_age_seconds at its next refresh.
func TestTerminalEventClosesOnceAcrossReplicas(t *testing.T) {
	h := newHarness(t, harnessOpts{schedule: "[1h, 1h]"})
	a, b := h.start(), h.start()
	const n = 4
	orders := []string{"G-10", "G-11", "G-12", "G-13"}
	for _, o := range orders {
		h.announce("jpglo", `{"account":"glo-in","kind":"payin","merchant_order_id":"`+o+`"}`)
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		return counter(a.r.m.open) == n && counter(b.r.m.open) == n && max(counter(a.r.m.oldest), counter(b.r.m.oldest)) > 0
	}, "watches not open")
	for _, o := range orders {
		if code, _ := post(t, h.ingress+"/v1/callbacks/jpglo/glo-in/payin", "", jpgloCallback(o), "Content-Type", "application/json"); code != 200 {
			t.Fatalf("callback %s: %d", o, code)
		}
	}
	testenv.Eventually(t, 3*time.Second, func() bool { return h.openWatches() == 0 }, "watches still open after their events")
	testenv.Eventually(t, 3*time.Second, func() bool {
		return counter(a.r.m.oldest) == 0 && counter(b.r.m.oldest) == 0 && counter(a.r.m.open) == 0 && counter(b.r.m.open) == 0
	}, "gauges did not drop on both replicas (oldest %v / %v)", counter(a.r.m.oldest), counter(b.r.m.oldest))
	closed := func() float64 {
		return counter(a.r.m.closed.WithLabelValues("jpglo", "callback")) + counter(b.r.m.closed.WithLabelValues("jpglo", "callback"))
	}
	testenv.Eventually(t, 3*time.Second, func() bool { return closed() >= n }, "closes not counted")
	time.Sleep(100 * time.Millisecond)
	if got := closed(); got != n {
		t.Errorf("closed{callback} = %v across replicas, want %d (each close counted once)", got, n)
	}
}

// The compare-and-set a handler saves a watch with treats a watch the closer
// deleted as superseded, so a stale copy never resurrects it; a deletion
// counts once; the order can be watched again afterwards.
func TestClosedWatchIsSupersededForItsHandler(t *testing.T) {
	js, _ := jetstream.New(testenv.StartNATS(t).Connect(t))
	ctx := context.Background()
	q, err := EnsureQueue(ctx, js, config.NATS{})
	if err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{queue: q, log: testLog(), tracked: map[string]tracked{}, opt: Options{AckWait: time.Minute}}
	w := &Watch{ID: WatchID("jpglo", "glo-in", "payin", "G-8"), Provider: "jpglo", Account: "glo-in", Kind: "payin", MerchantOrderID: "G-8", DueAt: time.Now()}
	if err := putWatch(ctx, js, w, 0); err != nil {
		t.Fatal(err)
	}
	held, err := q.GetLastMsgForSubject(ctx, w.Subject()) // what a handler holds
	if err != nil {
		t.Fatal(err)
	}
	w.OpenedAt = time.Now().Add(-time.Hour)
	r.track(w, time.Now().Add(time.Hour)) // this replica handled it last
	if age := r.oldestAge(ctx, time.Now()); age < time.Hour {
		t.Errorf("oldest age of an open watch = %s, want ≥ 1h", age)
	}

	got, err := r.closeSubject(ctx, w.Subject()) // the closer
	if err != nil || got == nil || got.ID != w.ID {
		t.Fatalf("closeSubject = %+v, %v; want the watch", got, err)
	}
	if got, err := r.closeSubject(ctx, w.Subject()); got != nil || err != nil {
		t.Errorf("second closeSubject = %+v, %v; want nothing to close", got, err)
	}
	w.Step++
	if err := putWatch(ctx, js, w, held.Sequence); !errors.Is(err, errSuperseded) {
		t.Errorf("handler's save after the close = %v, want errSuperseded", err)
	}
	if removed, err := r.remove(ctx, held.Sequence); removed || err != nil {
		t.Errorf("handler's delete after the close = %v, %v; want false, nil (not counted twice)", removed, err)
	}
	// Closed on another replica: this one's memory of it is dropped at the
	// next gauge refresh, not an hour later.
	if age := r.oldestAge(ctx, time.Now()); age != 0 || len(r.tracked) != 0 {
		t.Errorf("oldest age after the close = %s (%d remembered), want 0", age, len(r.tracked))
	}
	if info, _ := q.Info(ctx); info.State.Msgs != 0 {
		t.Errorf("%d messages left in %s", info.State.Msgs, StreamReconcile)
	}
	if err := putWatch(ctx, js, w, 0); err != nil {
		t.Errorf("re-announcing the order after the close: %v", err)
	}
}

// With event keys, the closer closes on signed events only: a terminal
// event published straight onto PAYHOOK_EVENTS by another client leaves the
// watch open; the provider's real (signed) callback then closes it.
func TestForgedEventClosesNoWatch(t *testing.T) {
	h := newHarness(t, harnessOpts{schedule: "[1h, 1h]"})
	pub, err := events.ParsePublicKey(testenv.EventPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rep := h.start(func(d *Deps) { d.EventKeys = []events.PublicKey{pub}; d.Signer = testenv.EventSigner(t) })
	h.announce("jpglo", `{"account":"glo-in","kind":"payin","merchant_order_id":"G-F1"}`)
	testenv.Eventually(t, 5*time.Second, func() bool { return counter(rep.r.m.open) == 1 }, "watch not open")

	now := time.Now().UTC()
	forged := events.Event{Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusSucceeded,
		MerchantOrderID: "G-F1", Amount: events.MustMoney("1.00", "INR"), OccurredAt: now, ReceivedAt: now, Origin: events.OriginCallback}
	body, err := forged.MarshalCloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.js.Publish(context.Background(), forged.Subject(), body); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		c, err := h.js.Consumer(context.Background(), natsbus.StreamEvents, ConsumerCloser)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.AckFloor.Stream >= 1 && info.NumAckPending == 0
	}, "closer did not take the forged event")
	if got := h.openWatches(); got != 1 {
		t.Fatalf("%d open watches after a forged event, want 1", got)
	}
	if code, _ := post(t, h.ingress+"/v1/callbacks/jpglo/glo-in/payin", "", jpgloCallback("G-F1"), "Content-Type", "application/json"); code != 200 {
		t.Fatalf("callback: %d", code)
	}
	testenv.Eventually(t, 3*time.Second, func() bool { return h.openWatches() == 0 }, "signed event did not close the watch")
}
