package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

// signedBody is e's CloudEvent and the headers the producer signs it with.
func signedBody(t *testing.T, e events.Event) ([]byte, nats.Header) {
	t.Helper()
	body := mustMarshal(t, e)
	h := nats.Header{}
	testenv.EventSigner(t).Sign(h, e.ID(), time.Now(), body)
	return body, h
}

// TestRelabelledSubjectIsForged: a genuine, signed jpglo payin success
// copied with its headers onto payhook.events.mpurse.payin.failed reaches
// neither the subscriber filtered to mpurse failures (whose consumer the
// subject gets it into) nor an unfiltered one: the subject is not the one
// its signed body says. It is refused as forged (subject_mismatch), logged
// once and terminated; a genuine mpurse failure is delivered to both.
func TestRelabelledSubjectIsForged(t *testing.T) {
	m, all := newReceiver(t, nil), newReceiver(t, nil)
	sm := sub(t, "mpurse-failed", m.srv.URL)
	sm.Filter = config.Filter{Providers: []string{"mpurse"}, Statuses: []string{"failed"}}
	h := newHarness(t, sm, sub(t, "all", all.srv.URL))
	r, logs := h.startLogged(t)

	const relabelled = "payhook.events.mpurse.payin.failed"
	body, hdr := signedBody(t, event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o-1"))
	rawPublish(t, h.js, relabelled, body, hdr)
	good := h.publish(t, event("mpurse", "mp-1", events.KindPayin, events.StatusFailed, "o-2"))

	testenv.Eventually(t, 10*time.Second, func() bool { return len(m.delivered()) == 1 && len(all.delivered()) == 1 }, "genuine event not delivered")
	testenv.Eventually(t, 5*time.Second, func() bool {
		return counter(r, "payhook_dispatch_forged_total", "subscriber", "mpurse-failed") == 1 && counter(r, "payhook_dispatch_forged_total", "subscriber", "all") == 1
	}, "relabelled event not counted as forged once per subscriber")
	for _, rc := range []*receiver{m, all} {
		if got := rc.delivered(); len(got) != 1 || got[0] != good[0] {
			t.Fatalf("delivered %v, want only %s", got, good[0])
		}
	}
	lines := forgedLogLines(logs.String())
	if len(lines) != 1 || lines[0]["reason"] != "subject_mismatch" || lines[0]["subject"] != relabelled {
		t.Fatalf("forged log lines %v, want one subject_mismatch on %s", lines, relabelled)
	}
	for _, id := range []string{"mpurse-failed", "all"} {
		testenv.Eventually(t, 5*time.Second, func() bool {
			info, err := consumerInfo(t, h.js, natsbus.StreamEvents, ConsumerName(id))
			return err == nil && info.NumAckPending == 0 && info.NumPending == 0
		}, "consumer "+id+" still holds messages")
	}
}

// TestReplayIsFiltered: a replayed copy is on payhook.replay.{id}, which
// says nothing of the event, so the subscriber's filter is matched against
// the subject its signed body says. A genuine jpglo success put on the DLQ
// of a subscriber filtered to mpurse failures (by hand, or left from an
// earlier filter) is not delivered when replayed, and counted as filtered;
// a genuine mpurse failure replayed with it is delivered.
func TestReplayIsFiltered(t *testing.T) {
	rc := newReceiver(t, nil)
	s := sub(t, "mpurse-failed", rc.srv.URL)
	s.Filter = config.Filter{Providers: []string{"mpurse"}, Statuses: []string{"failed"}}
	h := newHarness(t, s)
	r := h.start(t)
	ctx := context.Background()

	excluded := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o-1")
	matching := event("mpurse", "mp-1", events.KindPayin, events.StatusFailed, "o-2")
	for _, e := range []events.Event{excluded, matching} {
		body, hdr := signedBody(t, e)
		if err := PublishDeadLetter(ctx, h.js, DeadLetter{Event: body, EventID: e.ID(), Subscriber: s.ID, Attempts: 1, LastError: "x"}, hdr); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := Replay(ctx, h.js, s.ID, nil); err != nil || res.Replayed != 2 {
		t.Fatalf("Replay = %+v, %v", res, err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rc.delivered()) == 1 }, "matching replay not delivered")
	testenv.Eventually(t, 5*time.Second, func() bool {
		return counter(r, "payhook_dispatch_deliveries_total", "subscriber", s.ID, "outcome", OutcomeFiltered) == 1
	}, "excluded replay not counted as filtered")
	if got := rc.delivered(); len(got) != 1 || got[0] != matching.ID() {
		t.Fatalf("delivered %v, want only %s", got, matching.ID())
	}
	if got := counter(r, "payhook_dispatch_forged_total", "subscriber", s.ID); got != 0 {
		t.Fatalf("forged_total = %v for genuine replays", got)
	}
}

// TestExistingConsumerWithoutPositionKeepsItsBacklog: a consumer made
// before positions were recorded has none. Starting a dispatcher records
// its ack floor at once, so when the consumer is deleted before this
// subscriber delivered anything (paused, breaker open: it never got
// pinned), it is recreated from that floor, not as a new subscriber
// (`start: new` would skip the whole backlog).
func TestExistingConsumerWithoutPositionKeepsItsBacklog(t *testing.T) {
	rc := newReceiver(t, nil)
	s := sub(t, "ledger", rc.srv.URL)
	s.Start = config.StartNew
	h := newHarness(t, s)
	ctx := context.Background()
	before := h.publish(t, orders("before", 2)...)
	newOnly := func() {
		t.Helper()
		if _, err := New(h.cfg, h.js, prometheus.NewRegistry(), nil); err != nil {
			t.Fatal(err)
		}
	}
	newOnly() // creates the consumer from "new": after the 2 events
	kv, err := h.js.KeyValue(ctx, PositionBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, s.ID); err != nil { // as if made before positions were recorded
		t.Fatal(err)
	}
	backlog := h.publish(t, orders("backlog", 5)...)
	newOnly() // the upgraded dispatcher starts; this subscriber delivers nothing
	if got := recordedFloor(t, h.js, s.ID); got != 2 {
		t.Fatalf("recorded floor %d, want the consumer's ack floor 2", got)
	}
	if err := h.js.DeleteConsumer(ctx, natsbus.StreamEvents, ConsumerName(s.ID)); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(tally(rc)) == 5 }, "delivered %d of the 5 pending", len(tally(rc)))
	time.Sleep(300 * time.Millisecond)
	got := tally(rc)
	for _, id := range before {
		if got[id] > 0 {
			t.Errorf("%s, stored before the subscriber started, delivered", id)
		}
	}
	if dups := checkExactly(t, rc, backlog); dups > 0 {
		t.Errorf("%d events delivered twice", dups)
	}
}

// TestRetryReleasesItsOwnHeldCopy: the consumer was recreated while event
// E was in flight; the new consumer's copy E′ (same stream sequence) was
// held behind E. E fails: its nak goes to the old consumer, so only E′
// will come back. done must not keep E′ held behind itself: it naks E′
// with the retry's delay on its own consumer, which redelivers it.
func TestRetryReleasesItsOwnHeldCopy(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHarness(t, sub(t, "ledger", rc.srv.URL))
	ctx := context.Background()
	d, err := New(h.cfg, h.js, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := d.roster().workers[0]
	h.publish(t, event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o-1"))

	// Two real consumers stand for the deleted one and its replacement;
	// AckWait is long, so only a nak gets E′ redelivered within the test.
	fetchOne := func(name string) jetstream.Msg {
		t.Helper()
		c, err := h.js.CreateOrUpdateConsumer(ctx, natsbus.StreamEvents, jetstream.ConsumerConfig{
			Durable: name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute, FilterSubject: natsbus.SubjectEvents,
		})
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			return m
		}
		t.Fatalf("nothing fetched from %s", name)
		return nil
	}
	mkItem := func(m jetstream.Msg) *item {
		meta, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		h, err := newHead(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		return &item{msg: m, seq: meta.Sequence.Stream, attempt: int(meta.NumDelivered), id: h.ce.ID, key: h.key, head: h, body: m.Data()}
	}
	e, dup := mkItem(fetchOne("old")), mkItem(fetchOne("new"))
	w.mu.Lock()
	w.orders[e.key] = &orderState{busy: true, queue: []*item{dup}}
	w.owned[e], w.owned[dup] = struct{}{}, struct{}{}
	w.started = 1
	w.mu.Unlock()

	const delay = 200 * time.Millisecond
	_ = e.msg.NakWithDelay(delay)
	w.done(ctx, e, finRetry, delay)

	w.mu.Lock()
	st := w.orders[e.key]
	if st == nil || len(st.queue) != 0 || st.retrySeq != e.seq {
		w.mu.Unlock()
		t.Fatalf("order state %+v, want the copy released and the retry awaited at seq %d", st, e.seq)
	}
	if _, ok := w.owned[dup]; ok {
		w.mu.Unlock()
		t.Fatal("the released copy is still owned (kept alive)")
	}
	w.mu.Unlock()
	again := mkItem(fetchOne("new"))
	if again.seq != e.seq || again.attempt != 2 {
		t.Fatalf("redelivered seq %d attempt %d, want seq %d attempt 2", again.seq, again.attempt, e.seq)
	}
}
