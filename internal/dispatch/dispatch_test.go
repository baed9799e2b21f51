package dispatch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

const adminToken = "test-admin-token-0123456789abcdef"

// hit is one request a receiver got.
type hit struct {
	id     string
	status int
	body   []byte
	hdr    http.Header
	at     time.Time // when the request arrived
}

// receiver is a real HTTP subscriber whose answers the test scripts:
// respond gets the event id and how many times it was seen before;
// headers, when set, adds response headers to that answer.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	hits    []hit
	seen    map[string]int
	respond func(r *http.Request, id string, n int) int
	headers func(id string, n int, h http.Header)
}

func newReceiver(t *testing.T, respond func(r *http.Request, id string, n int) int) *receiver {
	t.Helper()
	rc := &receiver{seen: map[string]int{}, respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get("webhook-id")
		rc.mu.Lock()
		n := rc.seen[id]
		rc.seen[id]++
		f, hf := rc.respond, rc.headers
		rc.mu.Unlock()
		status := 200
		if f != nil {
			status = f(r, id, n)
		}
		if hf != nil {
			hf(id, n, w.Header())
		}
		rc.mu.Lock()
		rc.hits = append(rc.hits, hit{id: id, status: status, body: body, hdr: r.Header.Clone(), at: at})
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setRespond(f func(r *http.Request, id string, n int) int) {
	rc.mu.Lock()
	rc.respond = f
	rc.mu.Unlock()
}

// delivered lists the ids answered 2xx, in order.
func (rc *receiver) delivered() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, h := range rc.hits {
		if h.status < 300 {
			out = append(out, h.id)
		}
	}
	return out
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.hits)
}

func (rc *receiver) allHits() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.hits)
}

func newSecret(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

func sub(t *testing.T, id, url string) config.Subscriber {
	return config.Subscriber{
		ID: id, URL: url, Secret: newSecret(t), MaxAttempts: 15,
		Timeout: config.Duration(time.Second), BackoffInitial: config.Duration(20 * time.Millisecond),
		BackoffMax: config.Duration(100 * time.Millisecond), Concurrency: 4,
		// Most tests publish before the dispatcher starts.
		Start: config.StartAll,
	}
}

type harness struct {
	n   *testenv.NATS
	js  jetstream.JetStream
	cfg *config.Config
}

func newHarness(t *testing.T, subs ...config.Subscriber) *harness {
	t.Helper()
	n := testenv.StartNATS(t)
	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{AdminToken: adminToken, Subscribers: subs, NATS: config.NATS{Replicas: 1},
		EventSigning: config.EventSigning{PublicKeys: []string{testenv.EventPublicKey}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, cfg.NATS); err != nil {
		t.Fatal(err)
	}
	return &harness{n: n, js: js, cfg: cfg}
}

// running is a started Dispatcher.
type running struct {
	d    *Dispatcher
	reg  *prometheus.Registry
	stop func()
}

func (h *harness) start(t *testing.T, opts ...Option) *running {
	t.Helper()
	return h.startOn(t, h.js, opts...)
}

// connect opens another NATS connection, as a second replica would.
func (h *harness) connect(t *testing.T) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(h.n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// startOn starts a Dispatcher on js with the harness config.
func (h *harness) startOn(t *testing.T, js jetstream.JetStream, opts ...Option) *running {
	t.Helper()
	return startWith(t, h.cfg, js, opts...)
}

// startWith starts a Dispatcher on js with cfg.
func startWith(t *testing.T, cfg *config.Config, js jetstream.JetStream, opts ...Option) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts = append([]Option{WithFetchWait(100 * time.Millisecond), WithStatsInterval(100 * time.Millisecond), WithPositionInterval(50 * time.Millisecond), WithBreaker(1000, time.Second, time.Second)}, opts...)
	d, err := New(cfg, js, reg, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return &running{d: d, reg: reg, stop: stop}
}

func event(provider, account string, kind events.Kind, status events.Status, order string) events.Event {
	return events.Event{
		Provider: provider, Account: account, Kind: kind, Status: status, MerchantOrderID: order,
		Amount: events.MustMoney("100.00", "INR"), Origin: events.OriginCallback,
		OccurredAt: time.Unix(1700000000, 0).UTC(), ReceivedAt: time.Unix(1700000001, 0).UTC(),
	}
}

func (h *harness) publish(t *testing.T, evs ...events.Event) []string {
	t.Helper()
	var ids []string
	for _, e := range evs {
		b, err := e.MarshalCloudEvent()
		if err != nil {
			t.Fatal(err)
		}
		testenv.PublishEvent(t, h.js, e.Subject(), e.ID(), b)
		ids = append(ids, e.ID())
	}
	return ids
}

func counter(r *running, name string, labels ...string) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				ok := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						ok = true
					}
				}
				if !ok {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

func TestFanOutFiltersAndRotatedSecrets(t *testing.T) {
	all := newReceiver(t, nil)
	succ := newReceiver(t, nil)
	mp := newReceiver(t, nil)
	sAll := sub(t, "all", all.srv.URL)
	old, cur := newSecret(t), newSecret(t)
	sAll.Secret, sAll.Secrets = old, []string{cur}
	sSucc := sub(t, "succ", succ.srv.URL)
	sSucc.Filter = config.Filter{Statuses: []string{"succeeded"}, Accounts: []string{"glo-in"}}
	sMp := sub(t, "mp", mp.srv.URL)
	sMp.Filter = config.Filter{Providers: []string{"mpurse"}, Kinds: []string{"payout"}}
	h := newHarness(t, sAll, sSucc, sMp)
	r := h.start(t)
	ids := h.publish(t,
		event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o1"), // all, succ
		event("jpglo", "glo-2", events.KindPayin, events.StatusSucceeded, "o2"),  // all (account)
		event("mpurse", "mp-in", events.KindPayout, events.StatusFailed, "o3"),   // all, mp
		event("mpurse", "mp-in", events.KindPayin, events.StatusSucceeded, "o4"), // all (kind)
		event("jpglo", "glo-in", events.KindPayin, events.StatusPending, "o5"),   // all
	)
	testenv.Eventually(t, 10*time.Second, func() bool {
		return len(all.delivered()) == 5 && len(succ.delivered()) == 1 && len(mp.delivered()) == 1
	}, "all=%v succ=%v mp=%v", all.delivered(), succ.delivered(), mp.delivered())
	time.Sleep(200 * time.Millisecond) // nothing more arrives
	if got := succ.delivered(); len(got) != 1 || got[0] != ids[0] {
		t.Fatalf("succ got %v, want [%s]", got, ids[0])
	}
	if got := mp.delivered(); len(got) != 1 || got[0] != ids[2] {
		t.Fatalf("mp got %v, want [%s]", got, ids[2])
	}
	if got := all.delivered(); !sameSet(got, ids) {
		t.Fatalf("all got %v, want %v", got, ids)
	}
	// Every delivery verifies under each rotated secret on its own, with the
	// reference library, and carries the body exactly as stored.
	for _, hh := range all.allHits() {
		if sigs := strings.Fields(hh.hdr.Get("webhook-signature")); len(sigs) != 2 {
			t.Fatalf("want 2 signatures, got %q", hh.hdr.Get("webhook-signature"))
		}
		for _, sec := range []string{old, cur} {
			wh, _ := standardwebhooks.NewWebhook(sec)
			if err := wh.Verify(hh.body, hh.hdr); err != nil {
				t.Fatalf("signature does not verify with a rotated secret: %v", err)
			}
		}
		if hh.hdr.Get("Content-Type") != "application/json" || hh.hdr.Get("User-Agent") != "payhook" {
			t.Fatalf("headers %v", hh.hdr)
		}
		ce, err := events.ParseCloudEvent(hh.body)
		if err != nil || ce.ID != hh.id {
			t.Fatalf("body is not the CloudEvent with id %s: %v", hh.id, err)
		}
	}
	// Statuses are filtered by the consumer's subjects; the account in code.
	if got := counter(r, "payhook_dispatch_deliveries_total", "subscriber", "succ", "outcome", OutcomeFiltered); got != 2 {
		t.Fatalf("succ filtered in code = %v, want 2 (the other account's and mpurse's succeeded events)", got)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestDownThenUpDeliversOnceInOrder(t *testing.T) {
	// Down for the first 4 requests (500, timeout, 503 with Retry-After, 500), then up.
	var mu sync.Mutex
	calls := 0
	rc := newReceiver(t, func(r *http.Request, id string, n int) int {
		mu.Lock()
		calls++
		c := calls
		mu.Unlock()
		switch c {
		case 1, 4:
			return 500
		case 2:
			select { // longer than the subscriber timeout
			case <-time.After(800 * time.Millisecond):
			case <-r.Context().Done():
			}
			return 500
		case 3:
			return 503
		}
		return 200
	})
	s := sub(t, "down", rc.srv.URL)
	s.Timeout = config.Duration(300 * time.Millisecond)
	s.Concurrency = 1
	h := newHarness(t, s)
	r := h.start(t)
	ids := h.publish(t,
		event("jpglo", "glo-in", events.KindPayin, events.StatusPending, "o1"),
		event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o1"),
	)
	testenv.Eventually(t, 15*time.Second, func() bool { return len(rc.delivered()) == 2 }, "delivered %v", rc.delivered())
	time.Sleep(300 * time.Millisecond)
	if got := rc.delivered(); !slices.Equal(got, ids) {
		t.Fatalf("delivered %v, want exactly once each, in order %v", got, ids)
	}
	if got := counter(r, "payhook_dispatch_deliveries_total", "subscriber", "down", "outcome", OutcomeRetry); got != 4 {
		t.Fatalf("retries = %v, want 4", got)
	}
}

func TestGonePausesUntilResumed(t *testing.T) {
	rc := newReceiver(t, func(*http.Request, string, int) int { return http.StatusGone })
	h := newHarness(t, sub(t, "gone", ""))
	h.cfg.Subscribers[0].URL = rc.srv.URL
	r := h.start(t)
	ids := h.publish(t,
		event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o1"),
		event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o2"),
	)
	testenv.Eventually(t, 5*time.Second, func() bool { return r.d.Paused("gone") }, "not paused")
	testenv.Eventually(t, 5*time.Second, func() bool {
		return testutil.ToFloat64(r.d.m.paused.WithLabelValues("gone")) == 1
	}, "paused metric not 1")
	// An attempt already on the wire when the 410 arrived may still land;
	// after that, nothing more.
	time.Sleep(300 * time.Millisecond)
	n := rc.count()
	time.Sleep(500 * time.Millisecond)
	if rc.count() != n {
		t.Fatalf("paused subscriber still called: %d → %d", n, rc.count())
	}
	// Nothing dropped: both events still in the consumer.
	ci, err := h.js.Consumer(context.Background(), natsbus.StreamEvents, ConsumerName("gone"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		info, err := ci.Info(context.Background())
		return err == nil && info.NumPending+uint64(info.NumAckPending) == 2
	}, "events not kept in the consumer")

	rc.setRespond(nil)
	srv := httptest.NewServer(r.d.Handler())
	defer srv.Close()
	if st := postAdmin(t, srv.URL+"/v1/subscribers/gone/resume", "", ""); st != 401 {
		t.Fatalf("resume without token: %d, want 401", st)
	}
	if st := postAdmin(t, srv.URL+"/v1/subscribers/gone/resume", adminToken, ""); st != 200 {
		t.Fatalf("resume: %d", st)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return sameSet(rc.delivered(), ids) }, "delivered %v", rc.delivered())
	if r.d.Paused("gone") {
		t.Fatal("still paused after resume")
	}
}

func postAdmin(t *testing.T, url, token, body string) int {
	t.Helper()
	st, _ := postBody(t, url, token, body)
	return st
}

func postBody(t *testing.T, url, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(body)))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestMaxAttemptsDeadLetterThenReplay(t *testing.T) {
	rc := newReceiver(t, func(*http.Request, string, int) int { return 500 })
	s := sub(t, "dlq", rc.srv.URL)
	s.MaxAttempts = 3
	h := newHarness(t, s)
	r := h.start(t)
	ids := h.publish(t, event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o1"))
	var dls []DeadLetter
	testenv.Eventually(t, 10*time.Second, func() bool {
		var err error
		dls, err = ListDLQ(context.Background(), h.js, "dlq")
		return err == nil && len(dls) == 1
	}, "no dead letter")
	dl := dls[0]
	if dl.EventID != ids[0] || dl.Attempts != 3 || dl.LastStatus != 500 || len(dl.History) != 3 || dl.Subscriber != "dlq" {
		t.Fatalf("dead letter %+v", dl)
	}
	if ce, err := events.ParseCloudEvent(dl.Event); err != nil || ce.ID != ids[0] {
		t.Fatalf("dead letter event: %v", err)
	}
	if rc.count() != 3 {
		t.Fatalf("receiver called %d times, want 3", rc.count())
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		return testutil.ToFloat64(r.d.m.dlqDepth.WithLabelValues("dlq")) == 1
	}, "dlq depth metric")
	if got := testutil.ToFloat64(r.d.m.deadLetters.WithLabelValues("dlq")); got != 1 {
		t.Fatalf("dead letters metric %v", got)
	}

	rc.setRespond(nil)
	srv := httptest.NewServer(r.d.Handler())
	defer srv.Close()
	body := `{"subscriber":"dlq","event_ids":["` + ids[0] + `","evt_nope"]}`
	if st := postAdmin(t, srv.URL+"/v1/dlq/replay", "", body); st != 401 {
		t.Fatalf("missing token: %d, want 401", st)
	}
	if st := postAdmin(t, srv.URL+"/v1/dlq/replay", "wrong", body); st != 401 {
		t.Fatalf("wrong token: %d, want 401", st)
	}
	st, b := postBody(t, srv.URL+"/v1/dlq/replay", adminToken, body)
	var res ReplayResult
	if st != 200 || json.Unmarshal(b, &res) != nil || res.Replayed != 1 || !slices.Equal(res.Missing, []string{"evt_nope"}) {
		t.Fatalf("replay: %d %s", st, b)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rc.delivered()) == 1 }, "replay not delivered")
	if got := rc.delivered()[0]; got != ids[0] {
		t.Fatalf("replayed webhook-id %s, want %s", got, ids[0])
	}
	if dls, err := ListDLQ(context.Background(), h.js, "dlq"); err != nil || len(dls) != 0 {
		t.Fatalf("DLQ after replay: %v %v", dls, err)
	}
}

func TestStopMidDeliveryThenRestartLosesNothing(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(r *http.Request, id string, n int) int {
		if n == 0 {
			select { // the first request hangs until the dispatcher gives up
			case <-release:
			case <-r.Context().Done():
			}
			return 500
		}
		return 200
	})
	s := sub(t, "crash", rc.srv.URL)
	s.Timeout = config.Duration(5 * time.Second)
	h := newHarness(t, s)
	r1 := h.start(t, WithDrainTimeout(200*time.Millisecond))
	ids := h.publish(t, event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o1"))
	testenv.Eventually(t, 5*time.Second, func() bool { return rc.count() == 0 && inFlight(rc, ids[0]) }, "first request not seen")
	r1.stop()
	close(release)
	if len(rc.delivered()) != 0 {
		t.Fatal("delivered before restart")
	}
	h.start(t)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rc.delivered()) == 1 }, "not delivered after restart")
	if got := rc.delivered()[0]; got != ids[0] {
		t.Fatalf("webhook-id %s after restart, want %s", got, ids[0])
	}
}

// inFlight reports whether the receiver has started (not finished) a request for id.
func inFlight(rc *receiver, id string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.seen[id] > 0
}

func TestOrderingPerOrderWithParallelOrders(t *testing.T) {
	a := event("jpglo", "glo-in", events.KindPayin, events.StatusPending, "A")
	first := a.ID()
	rc := newReceiver(t, func(r *http.Request, id string, n int) int {
		if id == first && n < 2 {
			return 500 // A's first event fails twice
		}
		return 200
	})
	s := sub(t, "ord", rc.srv.URL)
	s.BackoffInitial = config.Duration(150 * time.Millisecond)
	s.BackoffMax = config.Duration(300 * time.Millisecond)
	h := newHarness(t, s)
	h.start(t)
	var evs []events.Event
	for _, st := range []events.Status{events.StatusPending, events.StatusSucceeded} {
		for _, o := range []string{"A", "B", "C", "D"} {
			evs = append(evs, event("jpglo", "glo-in", events.KindPayin, st, o))
		}
	}
	h.publish(t, evs...)
	testenv.Eventually(t, 15*time.Second, func() bool { return len(rc.delivered()) == len(evs) }, "delivered %v", rc.delivered())
	got := rc.delivered()
	pos := map[string]int{}
	for i, id := range got {
		if _, dup := pos[id]; dup {
			t.Fatalf("%s delivered twice", id)
		}
		pos[id] = i
	}
	for i := range 4 {
		p, s := evs[i].ID(), evs[i+4].ID()
		if pos[p] > pos[s] {
			t.Fatalf("order %s: succeeded delivered before pending (%v)", evs[i].MerchantOrderID, got)
		}
	}
	// Other orders did not wait for A: both of B's events went out before A's pending finally did.
	if pos[evs[5].ID()] > pos[first] {
		t.Fatalf("order B waited for order A: %v", got)
	}
}

func TestRateLimit(t *testing.T) {
	rc := newReceiver(t, nil)
	s := sub(t, "rl", rc.srv.URL)
	s.RatePerSecond, s.RateBurst = 5, 1
	h := newHarness(t, s)
	var evs []events.Event
	for i := range 8 {
		evs = append(evs, event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o"+string(rune('a'+i))))
	}
	h.publish(t, evs...)
	h.start(t)
	testenv.Eventually(t, 5*time.Second, func() bool { return rc.count() >= 1 }, "nothing delivered")
	time.Sleep(400 * time.Millisecond)
	// 1 burst + 5/s × 0.4 s ≈ 3; all 8 would mean no limit at all.
	if n := rc.count(); n >= 6 {
		t.Fatalf("%d deliveries within 400ms at 5/s burst 1", n)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rc.delivered()) == 8 }, "delivered %d", len(rc.delivered()))
}

func TestBreakerBacksOffWholeSubscriber(t *testing.T) {
	var mu sync.Mutex
	up := false
	rc := newReceiver(t, func(*http.Request, string, int) int {
		mu.Lock()
		defer mu.Unlock()
		if up {
			return 200
		}
		return 500
	})
	s := sub(t, "brk", rc.srv.URL)
	s.BackoffInitial, s.BackoffMax = config.Duration(10*time.Millisecond), config.Duration(10*time.Millisecond)
	h := newHarness(t, s)
	// The cool-down is long enough that the observation window below ends
	// well before the half-open probe, even on a loaded machine.
	r := h.start(t, WithBreaker(3, 2*time.Second, 2*time.Second))
	var evs []events.Event
	for i := range 6 {
		evs = append(evs, event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o"+string(rune('a'+i))))
	}
	h.publish(t, evs...)
	testenv.Eventually(t, 5*time.Second, func() bool { return r.d.Breaker("brk") == BreakerOpen }, "breaker not open")
	if got := testutil.ToFloat64(r.d.m.breaker.WithLabelValues("brk")); got != 2 {
		t.Fatalf("breaker metric %v, want 2", got)
	}
	// Attempts already on the wire when the breaker opened may still land;
	// after that, nothing until the cool-down ends.
	time.Sleep(200 * time.Millisecond)
	n := rc.count()
	time.Sleep(400 * time.Millisecond)
	if got := rc.count(); got > n+1 {
		t.Fatalf("breaker open but %d more requests", got-n)
	}
	mu.Lock()
	up = true
	mu.Unlock()
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rc.delivered()) == 6 }, "delivered %d", len(rc.delivered()))
	if r.d.Breaker("brk") != BreakerClosed {
		t.Fatalf("breaker %s after recovery", r.d.Breaker("brk"))
	}
}
