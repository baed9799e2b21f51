package redisdedupe_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/dedupe/dedupetest"
	"github.com/payhook/payhook/pkg/dedupe/redisdedupe"
	"github.com/payhook/payhook/pkg/events"
)

// replica is the ingress flow the package doc prescribes, against a real
// JetStream: Check, Decide, publish with Nats-Msg-Id, RecordPrior, and a
// follow-up conflict when the Record finds that the other terminal status
// raced it.
type replica struct {
	store dedupe.Store
	js    jetstream.JetStream
}

func (r replica) handle(ctx context.Context, e *events.Event) (dedupe.Verdict, error) {
	o := dedupe.OrderOf(e)
	c, err := r.store.Check(ctx, e.ID(), o)
	v := dedupe.Decide(c, e.Status)
	if err != nil {
		v = dedupe.New // store down: JetStream's window only
	}
	if v == dedupe.Duplicate || v == dedupe.Stale {
		return v, nil
	}
	subject := e.Subject()
	if v == dedupe.Conflict {
		subject = events.Subject(e.Provider, e.Kind, events.StatusConflict)
	}
	msg := &nats.Msg{Subject: subject, Data: []byte(e.ID()), Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, e.ID())
	if _, err := r.js.PublishMsg(ctx, msg); err != nil {
		return v, err // nothing recorded: the provider's retry goes through
	}
	prior, err := r.store.RecordPrior(ctx, e.ID(), o, e.Status)
	if err == nil && v == dedupe.New && dedupe.Decide(dedupe.Check{Order: prior}, e.Status) == dedupe.Conflict {
		// Raced the other terminal status, which was recorded first: follow up.
		msg := &nats.Msg{Subject: events.Subject(e.Provider, e.Kind, events.StatusConflict), Data: []byte(e.ID()), Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, e.ID()+":conflict")
		if _, err := r.js.PublishMsg(ctx, msg); err != nil {
			return v, err
		}
		return dedupe.Conflict, nil
	}
	return v, nil
}

func startEvents(t *testing.T) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	n := testenv.StartNATS(t)
	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "PAYHOOK_EVENTS", Subjects: []string{"payhook.events.>"}, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js, st
}

func messages(t *testing.T, st jetstream.Stream) uint64 {
	t.Helper()
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestTwoReplicasOneEvent: 50 identical callbacks at once through two
// replicas (two stores on one Redis) publish exactly one event; concurrent
// ones both pass Check and JetStream's Nats-Msg-Id window keeps one.
func TestTwoReplicasOneEvent(t *testing.T) {
	js, st := startEvents(t)
	r := testenv.StartRedis(t)
	var reps [2]replica
	for i := range reps {
		s, err := redisdedupe.New(r.URL, redisdedupe.Config{Batch: 16})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		reps[i] = replica{store: s, js: js}
	}
	e := dedupetest.Event(dedupetest.Order("race-50"), events.StatusSucceeded)
	var wg sync.WaitGroup
	var dups atomic.Int64
	start := make(chan struct{})
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			v, err := reps[i%2].handle(context.Background(), e)
			if err != nil {
				t.Errorf("handle: %v", err)
			}
			if v == dedupe.Duplicate {
				dups.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := messages(t, st); n != 1 {
		t.Fatalf("%d events in the stream, want 1", n)
	}
	// Once recorded, retries stop at the store, before JetStream.
	if v, _ := reps[0].handle(context.Background(), e); v != dedupe.Duplicate {
		t.Fatalf("retry after the race = %s, want duplicate", v)
	}
	t.Logf("%d of 50 stopped at the store, the rest absorbed by JetStream", dups.Load())
}

// TestRestartWithoutPersistence documents the fallback: Redis restarted
// empty forgets the event; the retry passes Check and is absorbed by
// JetStream's window, so the stream still holds one event. Out-of-order
// protection is lost for orders recorded before the restart.
func TestRestartWithoutPersistence(t *testing.T) {
	js, st := startEvents(t)
	r := testenv.StartRedis(t)
	s, err := redisdedupe.New(r.URL, redisdedupe.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	rep := replica{store: s, js: js}
	e := dedupetest.Event(dedupetest.Order("restart"), events.StatusSucceeded)
	ctx := context.Background()
	if v, err := rep.handle(ctx, e); v != dedupe.New || err != nil {
		t.Fatalf("first = %s, %v", v, err)
	}
	r.Stop()
	// While Redis is down: the retry is published again and JetStream drops it.
	if v, err := rep.handle(ctx, e); err != nil || v != dedupe.New {
		t.Fatalf("retry while down = %s, %v; want new (fallback)", v, err)
	}
	r.Start()
	testenv.Eventually(t, 5*time.Second, func() bool { return s.Ping(ctx) == nil }, "redis back")
	if c := dedupetest.MustCheck(t, s, e.ID(), dedupe.OrderOf(e)); c != (dedupe.Check{}) {
		t.Fatalf("after restart without persistence: %+v, want nothing", c)
	}
	if v, err := rep.handle(ctx, e); err != nil || v != dedupe.New {
		t.Fatalf("retry after restart = %s, %v; want new", v, err)
	}
	if n := messages(t, st); n != 1 {
		t.Fatalf("%d events in the stream, want 1 (JetStream window)", n)
	}
	if v, _ := rep.handle(ctx, e); v != dedupe.Duplicate {
		t.Fatalf("after re-recording = %s, want duplicate", v)
	}
}

// TestOutOfOrderAndConflict drives the callbacks of one order out of order
// through the flow: success, a late pending (dropped), a failure (conflict
// subject), and a poll that finds the success again (duplicate).
func TestOutOfOrderAndConflict(t *testing.T) {
	js, st := startEvents(t)
	s := MustStore(t, redisdedupe.Config{})
	rep := replica{store: s, js: js}
	o := dedupetest.Order("ooo")
	ctx := context.Background()
	poll := dedupetest.Event(o, events.StatusSucceeded)
	poll.Origin = events.OriginPoll
	steps := []struct {
		name string
		e    *events.Event
		want dedupe.Verdict
	}{
		{"success callback", dedupetest.Event(o, events.StatusSucceeded), dedupe.New},
		{"late pending", dedupetest.Event(o, events.StatusPending), dedupe.Stale},
		{"failure after success", dedupetest.Event(o, events.StatusFailed), dedupe.Conflict},
		{"failure retried", dedupetest.Event(o, events.StatusFailed), dedupe.Duplicate},
		{"poll finds the success", poll, dedupe.Duplicate},
	}
	for _, step := range steps {
		if v, err := rep.handle(ctx, step.e); err != nil || v != step.want {
			t.Fatalf("%s = %s, %v; want %s", step.name, v, err, step.want)
		}
	}
	if n := messages(t, st); n != 2 {
		t.Fatalf("%d messages, want 2 (the success and the conflict)", n)
	}
	m, err := st.GetLastMsgForSubject(ctx, events.Subject(o.Provider, o.Kind, events.StatusConflict))
	if err != nil {
		t.Fatalf("no conflict message: %v", err)
	}
	if string(m.Data) != dedupetest.ID(o, events.StatusFailed) {
		t.Fatalf("conflict message is %q", m.Data)
	}
}
