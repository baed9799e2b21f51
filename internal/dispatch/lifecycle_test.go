package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

// withMissingHook calls f when a consumer was found gone, before it is
// recreated.
func withMissingHook(f func(subscriber string, replay bool)) Option {
	return func(o *options) { o.onMissing = f }
}

// orders returns n events of distinct orders, named prefix-i.
func orders(prefix string, n int) []events.Event {
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, fmt.Sprintf("%s-%d", prefix, i))
	}
	return evs
}

// tally counts, per event id, the deliveries answered 2xx.
func tally(rc *receiver) map[string]int {
	got := map[string]int{}
	for _, id := range rc.delivered() {
		got[id]++
	}
	return got
}

// checkExactly fails unless rc got every id in want and nothing else, and
// returns how many ids it got more than once.
func checkExactly(t *testing.T, rc *receiver, want []string) (dups int) {
	t.Helper()
	got := tally(rc)
	for _, id := range want {
		switch n := got[id]; {
		case n == 0:
			t.Errorf("event %s never delivered", id)
		case n > 1:
			dups++
		}
		delete(got, id)
	}
	for id := range got {
		t.Errorf("event %s delivered, not expected", id)
	}
	return dups
}

func withSubscribers(cfg *config.Config, subs ...config.Subscriber) *config.Config {
	c := *cfg
	c.Subscribers = subs
	return &c
}

func consumerInfo(t *testing.T, js jetstream.JetStream, stream, name string) (*jetstream.ConsumerInfo, error) {
	t.Helper()
	c, err := js.Consumer(context.Background(), stream, name)
	if err != nil {
		return nil, err
	}
	return c.Info(context.Background())
}

func recordedFloor(t *testing.T, js jetstream.JetStream, id string) uint64 {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), PositionBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), id)
	if err != nil {
		return 0
	}
	var p position
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		t.Fatal(err)
	}
	return p.Floor
}

// Two dispatchers with different subscriber lists on one NATS (a staging
// config pointed at production, the previous release mid-rollout): neither
// deletes the other's consumers, at start or restart, and both keep
// delivering everything once.
func TestDispatchersWithOtherSubscribersLeaveTheirConsumersAlone(t *testing.T) {
	ra, rb := newReceiver(t, nil), newReceiver(t, nil)
	sa, sb := sub(t, "a", ra.srv.URL), sub(t, "b", rb.srv.URL)
	h := newHarness(t)
	cfgA, cfgB := withSubscribers(h.cfg, sa), withSubscribers(h.cfg, sb)

	a := startWith(t, cfgA, h.connect(t))
	want := h.publish(t, orders("first", 20)...)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(tally(ra)) == 20 }, "a got %d of 20", len(tally(ra)))
	b := startWith(t, cfgB, h.connect(t))
	want = append(want, h.publish(t, orders("second", 20)...)...)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(tally(ra)) == 40 && len(tally(rb)) == 40 },
		"a got %d, b got %d of 40 (a consumer deleted by the other dispatcher delivers nothing)", len(tally(ra)), len(tally(rb)))

	// The first dispatcher restarts (a replica of the other release).
	a.stop()
	a = startWith(t, cfgA, h.connect(t))
	want = append(want, h.publish(t, orders("third", 20)...)...)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(tally(ra)) == 60 && len(tally(rb)) == 60 },
		"a got %d, b got %d of 60", len(tally(ra)), len(tally(rb)))
	time.Sleep(300 * time.Millisecond)
	for name, rc := range map[string]*receiver{"a": ra, "b": rb} {
		if dups := checkExactly(t, rc, want); dups > 0 {
			t.Errorf("subscriber %s got %d events twice", name, dups)
		}
	}
	for _, r := range []*running{a, b} {
		for _, id := range []string{"a", "b"} {
			if v := counter(r, "payhook_dispatch_consumer_recreated_total", "subscriber", id); v != 0 {
				t.Errorf("consumer of %s recreated %v times", id, v)
			}
		}
	}

	// Retiring is explicit: refused by a dispatcher configuring the
	// subscriber, done by one that does not.
	adminA := httptest.NewServer(a.d.Handler())
	defer adminA.Close()
	adminB := httptest.NewServer(b.d.Handler())
	defer adminB.Close()
	if code, body := deleteAdmin(t, adminA.URL+"/v1/subscribers/a"); code != http.StatusConflict {
		t.Fatalf("retiring a configured subscriber: %d %s, want 409", code, body)
	}
	if code, body := deleteAdmin(t, adminB.URL+"/v1/subscribers/nobody"); code != http.StatusNotFound {
		t.Fatalf("retiring an unknown subscriber: %d %s, want 404", code, body)
	}
	a.stop()
	code, body := deleteAdmin(t, adminB.URL+"/v1/subscribers/a")
	if code != http.StatusOK || !strings.Contains(body, `"dispatch-a"`) || !strings.Contains(body, `"replay-a"`) || !strings.Contains(body, `"position_forgotten":true`) {
		t.Fatalf("retire: %d %s", code, body)
	}
	for stream, name := range map[string]string{natsbus.StreamEvents: "dispatch-a", StreamReplay: "replay-a"} {
		if _, err := consumerInfo(t, h.js, stream, name); err == nil {
			t.Errorf("%s still exists after retiring a", name)
		}
	}
	if _, err := consumerInfo(t, h.js, natsbus.StreamEvents, "dispatch-b"); err != nil {
		t.Errorf("retiring a touched b: %v", err)
	}
}

func deleteAdmin(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, url, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A consumer deleted by hand while the dispatcher runs: /readyz turns 503
// naming it and payhook_dispatch_consumer_missing is 1, then it is
// recreated from the recorded ack floor. Of 687 events none is missing, and
// only those delivered but not acknowledged at the deletion go out twice.
func TestConsumerDeletedWhileRunningResumesFromAckFloor(t *testing.T) {
	const total, before = 687, 300
	gate := make(chan struct{})
	var open sync.Once
	release := func() { open.Do(func() { close(gate) }) }
	var calls, waiting atomic.Int64
	rc := newReceiver(t, func(*http.Request, string, int) int {
		if calls.Add(1) > before {
			waiting.Add(1)
			<-gate
		}
		return 200
	})
	s := sub(t, "ledger", rc.srv.URL)
	s.Timeout = config.Duration(30 * time.Second) // the gate holds requests
	h := newHarness(t, s)
	t.Cleanup(release) // before the receiver closes, which waits for its requests

	type seen struct {
		readyCode int
		readyBody string
		missing   float64
	}
	var (
		mu  sync.Mutex
		got []seen
		r   *running
	)
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ops.ReadyHandler(ops.Check{Name: "consumers", Fn: r.d.CheckConsumers}).ServeHTTP(w, req)
	}))
	defer ready.Close()
	r = h.start(t, withMissingHook(func(id string, replay bool) {
		resp, err := http.Get(ready.URL)
		if err != nil {
			t.Error(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		mu.Lock()
		got = append(got, seen{resp.StatusCode, string(b), counter(r, "payhook_dispatch_consumer_missing", "subscriber", id)})
		mu.Unlock()
	}))
	want := h.publish(t, orders("o", total)...)

	// Stop the receiver's answers after 300 and let every delivery slot of
	// the replica fill (4 × concurrency started: concurrency requests held
	// by the receiver, the rest waiting for them): no more fetches, no more
	// acks (an ack is sent before its slot frees, so JetStream has it
	// before the fetch that refills the slot). Then the recorded floor
	// catches up.
	w := r.d.roster().byID["ledger"]
	var pending int
	var state string
	defer func() {
		if t.Failed() {
			t.Logf("at the deletion: %s", state)
		}
	}()
	testenv.Eventually(t, 20*time.Second, func() bool {
		w.mu.Lock()
		started := w.started
		w.mu.Unlock()
		info, _ := consumerInfo(t, h.js, natsbus.StreamEvents, ConsumerName("ledger"))
		if info != nil {
			state = fmt.Sprintf("started %d waiting %d ack pending %d floor %d recorded %d", started, waiting.Load(), info.NumAckPending, info.AckFloor.Stream, recordedFloor(t, h.js, "ledger"))
		}
		if started != w.maxStarted || waiting.Load() != int64(s.Concurrency) {
			return false
		}
		info, err := consumerInfo(t, h.js, natsbus.StreamEvents, ConsumerName("ledger"))
		if err != nil {
			t.Logf("consumer info: %v", err)
			return false
		}
		pending = info.NumAckPending
		// The floor is below the first unanswered event, which may be well
		// below the 300th: started deliveries take free slots in any order.
		return pending == 4*s.Concurrency && info.AckFloor.Stream > 0 && recordedFloor(t, h.js, "ledger") == info.AckFloor.Stream
	}, "slots not full or floor not recorded")
	if err := h.js.DeleteConsumer(context.Background(), natsbus.StreamEvents, ConsumerName("ledger")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		return counter(r, "payhook_dispatch_consumer_recreated_total", "subscriber", "ledger") == 1
	}, "consumer not recreated")
	mu.Lock()
	if len(got) != 1 || got[0].readyCode != http.StatusServiceUnavailable || !strings.Contains(got[0].readyBody, "dispatch-ledger") || got[0].missing != 1 {
		t.Errorf("while the consumer was missing: %+v, want one 503 naming dispatch-ledger and consumer_missing 1", got)
	}
	mu.Unlock()
	if code, body := getReady(t, ready.URL); code != http.StatusOK {
		t.Errorf("readyz after recreation: %d %s", code, body)
	}
	if v := counter(r, "payhook_dispatch_consumer_missing", "subscriber", "ledger"); v != 0 {
		t.Errorf("consumer_missing after recreation = %v", v)
	}
	info, err := consumerInfo(t, h.js, natsbus.StreamEvents, ConsumerName("ledger"))
	if err != nil {
		t.Fatal(err)
	}
	if floor := recordedFloor(t, h.js, "ledger"); info.Config.DeliverPolicy != jetstream.DeliverByStartSequencePolicy || info.Config.OptStartSeq != floor+1 {
		t.Errorf("recreated with %v from %d, want by start sequence from the recorded floor + 1 (%d)", info.Config.DeliverPolicy, info.Config.OptStartSeq, floor+1)
	}

	release()
	testenv.Eventually(t, 60*time.Second, func() bool { return len(tally(rc)) == total }, "delivered %d of %d", len(tally(rc)), total)
	time.Sleep(500 * time.Millisecond)
	dups := checkExactly(t, rc, want)
	if dups > pending {
		t.Errorf("%d events delivered twice, want at most the %d in flight at the deletion", dups, pending)
	}
	t.Logf("%d events, %d in flight at the deletion, %d delivered twice", total, pending, dups)
}

func getReady(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A consumer deleted while no dispatcher runs resumes at the next start
// from where the last one stopped: nothing twice, nothing skipped.
func TestConsumerDeletedWhileStoppedResumesFromAckFloor(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHarness(t, sub(t, "ledger", rc.srv.URL))
	r := h.start(t)
	want := h.publish(t, orders("before", 50)...)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(tally(rc)) == 50 }, "delivered %d of 50", len(tally(rc)))
	r.stop()
	for stream, name := range map[string]string{natsbus.StreamEvents: ConsumerName("ledger"), StreamReplay: ReplayConsumerName("ledger")} {
		if err := h.js.DeleteConsumer(context.Background(), stream, name); err != nil {
			t.Fatal(err)
		}
	}
	want = append(want, h.publish(t, orders("while-stopped", 30)...)...)
	h.start(t)
	want = append(want, h.publish(t, orders("after", 20)...)...)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(tally(rc)) == 100 }, "delivered %d of 100", len(tally(rc)))
	time.Sleep(300 * time.Millisecond)
	if dups := checkExactly(t, rc, want); dups > 0 {
		t.Errorf("%d events delivered twice after a clean stop", dups)
	}
}

// A subscriber's start: by default the events stored after it first
// appears, "all" everything retained, a time those stored from then on. A
// restart does not move "new", and changing start later does nothing.
func TestSubscriberStart(t *testing.T) {
	rNew, rAll, rTime := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	sNew, sAll, sTime := sub(t, "new", rNew.srv.URL), sub(t, "all", rAll.srv.URL), sub(t, "time", rTime.srv.URL)
	h := newHarness(t)
	old := h.publish(t, orders("old", 5)...)
	time.Sleep(50 * time.Millisecond)
	from := time.Now().UTC()
	time.Sleep(50 * time.Millisecond)
	recent := h.publish(t, orders("recent", 4)...)

	sNew.Start, sAll.Start, sTime.Start = "", config.StartAll, from.Format(time.RFC3339Nano)
	h.cfg.Subscribers = []config.Subscriber{sNew, sAll, sTime}
	r := h.start(t)
	later := h.publish(t, orders("later", 3)...)
	cat := func(l ...[]string) (out []string) {
		for _, x := range l {
			out = append(out, x...)
		}
		return out
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		return len(tally(rNew)) == 3 && len(tally(rAll)) == 12 && len(tally(rTime)) == 7
	}, "new %d (want 3), all %d (want 12), time %d (want 7)", len(tally(rNew)), len(tally(rAll)), len(tally(rTime)))

	// Restarted with start: all for "new", and its consumer deleted while
	// stopped: it still starts where it first appeared.
	r.stop()
	if err := h.js.DeleteConsumer(context.Background(), natsbus.StreamEvents, ConsumerName("new")); err != nil {
		t.Fatal(err)
	}
	sNew.Start = config.StartAll
	h.cfg.Subscribers = []config.Subscriber{sNew, sAll, sTime}
	whileDown := h.publish(t, orders("down", 2)...)
	h.start(t)
	testenv.Eventually(t, 10*time.Second, func() bool {
		return len(tally(rNew)) == 5 && len(tally(rAll)) == 14 && len(tally(rTime)) == 9
	}, "new %d (want 5), all %d (want 14), time %d (want 9)", len(tally(rNew)), len(tally(rAll)), len(tally(rTime)))
	time.Sleep(300 * time.Millisecond)
	for name, c := range map[string]struct {
		rc   *receiver
		want []string
	}{
		"new":  {rNew, cat(later, whileDown)},
		"all":  {rAll, cat(old, recent, later, whileDown)},
		"time": {rTime, cat(recent, later, whileDown)},
	} {
		if dups := checkExactly(t, c.rc, c.want); dups > 0 {
			t.Errorf("%s: %d events twice", name, dups)
		}
	}
}
