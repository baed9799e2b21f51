package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/publisher"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/retrigger"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/dedupe/redisdedupe"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/fantian"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

const (
	adminToken = "test-admin-token-0123456789abcdef"
	jpgloKey   = "9ce23be4-a31b-498f-b951-ad7e771c3d73"
	mrnKey     = "mrn-secret"
	mrnAppKey  = "app-1"
	fantianKey = "ft-secret"
	step       = 60 * time.Millisecond
)

// script is a fake provider's answers for one order: answers[i] is the
// status given to the i-th query (the last one repeats).
type script struct {
	answers []string
}

// fakeProvider records queries per order and the most concurrent queries
// ever seen for one order (must stay 1: no two replicas poll an order at once).
type fakeProvider struct {
	mu        sync.Mutex
	scripts   map[string]*script
	calls     map[string]int
	inflight  map[string]int
	maxFlight int
	retrigger map[string]int       // queries with callback=true
	delay     time.Duration        // per query, to widen races
	first     map[string]time.Time // when each order was first queried
}

func newFake() *fakeProvider {
	return &fakeProvider{scripts: map[string]*script{}, calls: map[string]int{}, inflight: map[string]int{}, retrigger: map[string]int{}, first: map[string]time.Time{}}
}

func (f *fakeProvider) set(order string, answers ...string) {
	f.mu.Lock()
	f.scripts[order] = &script{answers: answers}
	f.mu.Unlock()
}

// begin counts a query and returns the scripted answer ("" when unknown).
func (f *fakeProvider) begin(order string, retrigger bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inflight[order]++
	f.maxFlight = max(f.maxFlight, f.inflight[order])
	n := f.calls[order]
	if n == 0 {
		f.first[order] = time.Now()
	}
	f.calls[order]++
	if retrigger {
		f.retrigger[order]++
	}
	s, ok := f.scripts[order]
	if !ok {
		return ""
	}
	return s.answers[min(n, len(s.answers)-1)]
}

func (f *fakeProvider) end(order string) {
	f.mu.Lock()
	f.inflight[order]--
	f.mu.Unlock()
}

func (f *fakeProvider) count(order string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[order]
}

// firstQuery is when order was first queried (zero: never).
func (f *fakeProvider) firstQuery(order string) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first[order]
}

// total is how many queries were made, for every order.
func (f *fakeProvider) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

func (f *fakeProvider) retriggers(order string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.retrigger[order]
}

// jpgloServer answers GET /api/order/query/{mch_order_no}/ like jpglo
// (seed "订单查询(商户用)"): data.status new|commit|success|fail, amounts in
// minor units, 5001 for an unknown order, HTTP 500 for the "error" answer.
func (f *fakeProvider) jpgloServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		order, ok := strings.CutPrefix(r.URL.Path, "/api/order/query/")
		order = strings.TrimSuffix(order, "/")
		q := r.URL.Query()
		if !ok || r.Method != http.MethodGet || q.Get("sign") != jpglo.Sign(map[string]any{"mch_id": q.Get("mch_id"), "timestamp": json.Number(q.Get("timestamp"))}, jpgloKey) {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"status":1,"msg":"bad request"}`)
			return
		}
		status := f.begin(order, false)
		defer f.end(order)
		time.Sleep(f.delay)
		w.Header().Set("Content-Type", "application/json")
		switch status {
		case "":
			fmt.Fprint(w, `{"status":5001,"msg":"订单不存在","timestamp":"2022-04-08 16:33:16"}`)
		case "error":
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"status":-1,"msg":"内部错误"}`)
		default:
			real := "null"
			if status == "success" {
				real = "10000"
			}
			fmt.Fprintf(w, `{"status":0,"msg":"ok","timestamp":"2022-04-08 16:33:16","data":{"mch_order_no":%q,"order_no":"J%s","status":%q,"pay_type":"upi","apply_amount":10000,"real_amount":%s}}`,
				order, order, status, real)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// mrnpayServer answers GET /api/Payments/Query like mrnpay (seed
// "充值查单接口说明"): status 0|1|2, no amount. With callback=true and status
// 1 it posts the signed pay-in callback to callbackURL (unless dropped),
// after answering, as mrnpay does.
func (f *fakeProvider) mrnpayServer(t *testing.T, callbackURL func() string, drop bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mrn := q.Get("mrn")
		if r.URL.Path != "/api/Payments/Query" || q.Get("sign") != mrnpay.SignQuery(q.Get("appKey"), mrn, mrnKey) {
			fmt.Fprint(w, `{"error":"sign_error"}`)
			return
		}
		retrigger := q.Get("callback") == "true"
		status := f.begin(mrn, retrigger)
		defer f.end(mrn)
		w.Header().Set("Content-Type", "application/json")
		switch status {
		case "":
			fmt.Fprint(w, `{"error":"success"}`)
		case "error":
			w.WriteHeader(http.StatusBadGateway)
		default:
			fmt.Fprintf(w, `{"error":"success","result":{"Mrn":%q,"status":%s}}`, mrn, status)
		}
		if retrigger && status == "1" && !drop {
			body := mrnpay.BuildPayinCallback(mrnAppKey, mrnKey, mrn, "1", "100.00", "100.00")
			go func() {
				resp, err := http.Post(callbackURL(), "application/x-www-form-urlencoded", bytes.NewReader(body))
				if err == nil {
					resp.Body.Close()
				}
			}()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// harness is NATS, a shared dedupe store, fake providers, an ingress and
// any number of reconciler replicas.
type harness struct {
	t       *testing.T
	nats    *testenv.NATS
	js      jetstream.JetStream
	cfg     *config.Config
	store   dedupe.Store
	refs    dedupe.References
	jpglo   *fakeProvider
	mrnpay  *fakeProvider
	fantian *fakeFantian
	ingress string
	marks   *retrigger.Marks
	// redis is the redis-server behind store, unless the test gave its own store.
	redis *testenv.Redis
}

type harnessOpts struct {
	schedule  string // YAML list
	grace     string
	dropRetrg bool
	// store and refs replace the default, redisdedupe on a real redis-server
	// of the test's own: give one only when the test needs what Redis cannot
	// do on demand (memdedupe's SetUnavailable).
	store dedupe.Store
	refs  dedupe.References
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	if o.schedule == "" {
		o.schedule = "[60ms, 60ms, 60ms]"
	}
	if o.grace == "" {
		o.grace = "300ms"
	}
	h := &harness{t: t, jpglo: newFake(), mrnpay: newFake(), fantian: &fakeFantian{calls: map[string]int{}}}
	if o.store == nil {
		// The dedupe store production runs: ingress and the reconciler share
		// it, so "a late callback after the poll is a duplicate" is proven
		// against Redis, not a map.
		h.redis = testenv.StartRedis(t)
		rs, err := redisdedupe.New(h.redis.URL, redisdedupe.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Close() })
		o.store, o.refs = rs, rs
	}
	h.store, h.refs = o.store, o.refs
	var ingressURL string
	jsrv := h.jpglo.jpgloServer(t)
	fsrv := h.fantian.server(t)
	msrv := h.mrnpay.mrnpayServer(t, func() string { return ingressURL + "/v1/callbacks/mrnpay/mrn-cn/payin" }, o.dropRetrg)
	yml := fmt.Sprintf(`
nats: {url: "nats://127.0.0.1:1"}
admin_token: %s
reconciler:
  schedule: %s
  retrigger_grace: %s
  rate_per_second: 1000
  rate_burst: 1000
accounts:
  - {id: glo-in, provider: jpglo, merchant_id: "1", secret: %q, base_url: %q, currency: INR}
  - {id: mrn-cn, provider: mrnpay, merchant_id: %q, secret: %q, base_url: %q, currency: CNY}
  - {id: mp-in, provider: mpurse, merchant_id: "7", aes_key: "0123456789abcdef", currency: INR}
  - {id: ft-in, provider: fantian, merchant_id: "1000001", secret: %q, base_url: %q, currency: INR}
  - {id: cp-id, provider: cashypro, merchant_id: "M1", secret: "cp-secret", base_url: "http://127.0.0.1:1", currency: IDR}
`, adminToken, o.schedule, o.grace, jpgloKey, jsrv.URL, mrnAppKey, mrnKey, msrv.URL, fantianKey, fsrv.URL)
	cfg, err := config.Parse([]byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = cfg
	h.nats = testenv.StartNATS(t)
	h.cfg.NATS.URL = h.nats.URL
	h.js, _ = jetstream.New(h.nats.Connect(t))
	ctx := context.Background()
	if err := natsbus.EnsureStreams(ctx, h.js, cfg.NATS); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureQueue(ctx, h.js, cfg.NATS); err != nil {
		t.Fatal(err)
	}
	marks, err := retrigger.Open(ctx, h.js, time.Minute, 1, h.providers())
	if err != nil {
		t.Fatal(err)
	}
	h.marks = marks
	// Ingress with the real jpglo and mrnpay decoders, on the same dedupe store.
	srv, err := ingress.New(ingress.Deps{Config: cfg, JS: h.js, Log: testLog(), Dedupe: publisher.StoreDeduper{Store: h.store}, Registry: prometheus.NewRegistry(), Retrigger: marks,
		Signer: testenv.EventSigner(t), Providers: map[string]providers.Inbound{"jpglo": jpglo.New(), "mrnpay": mrnpay.New()}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ictx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ictx, ln, 2*time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	ingressURL = "http://" + ln.Addr().String()
	h.ingress = ingressURL
	return h
}

// replica is one running reconciler.
type replica struct {
	r    *Reconciler
	reg  *prometheus.Registry
	url  string
	stop func()
}

// providers are every registered provider, as in production.
func (h *harness) providers() *providers.Set { return registry.All() }

func (h *harness) start(extra ...func(*Deps)) *replica {
	h.t.Helper()
	js, _ := jetstream.New(h.nats.Connect(h.t)) // each replica its own connection
	reg := prometheus.NewRegistry()
	d := Deps{Config: h.cfg, JS: js, Log: testLog(), Store: h.store, References: h.refs, Providers: h.providers(), Registry: reg, Retrigger: h.marks,
		Options: Options{Workers: 4, AckWait: 5 * time.Second, ErrorBase: 20 * time.Millisecond, GaugeInterval: 30 * time.Millisecond, DrainTimeout: 5 * time.Second}}
	for _, f := range extra {
		f(&d)
	}
	r, err := New(d)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	srv := httptest.NewServer(r.Handler(reg))
	var once sync.Once
	rep := &replica{r: r, reg: reg, url: srv.URL}
	rep.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("Run: %v", err)
			}
			srv.Close()
		})
	}
	h.t.Cleanup(rep.stop)
	return rep
}

// announce publishes on payhook.watch.{provider}, as internal services do.
func (h *harness) announce(provider, body string) {
	h.t.Helper()
	if _, err := h.js.Publish(context.Background(), "payhook.watch."+provider, []byte(body)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) count(subject string) int {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), natsbus.StreamEvents)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

func (h *harness) lastEvent(subject string) (events.CloudEvent, string) {
	h.t.Helper()
	s, _ := h.js.Stream(context.Background(), natsbus.StreamEvents)
	m, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		h.t.Fatalf("no message on %s: %v", subject, err)
	}
	ce, err := events.ParseCloudEvent(m.Data)
	if err != nil {
		h.t.Fatal(err)
	}
	return ce, m.Header.Get(jetstream.MsgIDHeader)
}

func (h *harness) openWatches() uint64 {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), StreamReconcile)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs
}

func post(t *testing.T, url, token, body string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func counter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// settle waits until counter c reads want. A close is counted just after the
// watch's message is deleted (its deletion decides who counts it), so a test
// that saw the stream empty may read the counters a moment too early.
func settle(t *testing.T, c prometheus.Collector, want float64, what string) {
	t.Helper()
	testenv.Eventually(t, 3*time.Second, func() bool { return counter(c) == want }, "%s never reached %v", what, want)
}

// jpgloCallback is the signed payment callback jpglo posts (seed "支付回调").
func jpgloCallback(order string) string {
	f := map[string]any{
		"mch_order_no": order, "order_no": "J" + order, "status": "success", "pay_type": "upi", "sub_pay_type": "",
		"apply_amount": json.Number("10000"), "real_amount": json.Number("10000"), "remark": "", "user_ext": "{}",
		"timestamp": json.Number(strconv.FormatInt(time.Now().Unix(), 10)), // within max_age
	}
	f["sign"] = jpglo.Sign(f, jpgloKey)
	b, _ := json.Marshal(f)
	return string(b)
}

// testLog discards logs unless PAYHOOK_TEST_LOG is set.
func testLog() *slog.Logger {
	if os.Getenv("PAYHOOK_TEST_LOG") != "" {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fakeFantian answers POST /gateway/api/v1/payments/reference like fantian
// (seed 000): {"error_code":"0000"} when matched, else error_code and
// error_msg. It checks the sign (the default rule) and answers by
// reference: "NOMATCH…" not matched, "DOWN…" drops the connection,
// "FAIL5XX…" HTTP 502 (with a "not matched" body, which a 5xx does not make
// an answer), others match.
type fakeFantian struct {
	mu    sync.Mutex
	calls map[string]int // by reference
}

func (f *fakeFantian) count(ref string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[ref]
}

func (f *fakeFantian) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

func (f *fakeFantian) server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var sub map[string]string
		if r.URL.Path != fantian.ReferencePath || json.NewDecoder(r.Body).Decode(&sub) != nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		ref := sub["payment_reference"]
		f.mu.Lock()
		f.calls[ref]++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch sign := sub["sign"]; {
		case sign != fantian.Sign(sub, fantianKey, ""):
			fmt.Fprint(w, `{"error_code":"0004","error_msg":"验签错误"}`)
		case strings.HasPrefix(ref, "NOMATCH"):
			fmt.Fprint(w, `{"error_code":"0101","error_msg":"UTR not matched"}`)
		case strings.HasPrefix(ref, "FAIL5XX"):
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, `{"error_code":"0101","error_msg":"UTR not matched"}`)
		case strings.HasPrefix(ref, "DOWN"):
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		default:
			fmt.Fprint(w, `{"error_code":"0000"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}
