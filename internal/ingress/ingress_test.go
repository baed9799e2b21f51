package ingress

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/publisher"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// fakeProvider is a minimal provider for testing ingress mechanics apart from
// any real provider's format: JSON {"order","status","amount","sign"} where
// sign = md5(order|status|amount|secret).
type fakeProvider struct{ name string }

func (f fakeProvider) Name() string       { return f.name }
func (fakeProvider) Kinds() []events.Kind { return []events.Kind{events.KindPayin} }
func (fakeProvider) Ack(events.Kind) providers.Reply {
	return providers.Reply{Status: 200, ContentType: "text/plain", Body: []byte("success")}
}

func fakeSign(order, status, amount, secret string) string {
	s := md5.Sum([]byte(order + "|" + status + "|" + amount + "|" + secret))
	return hex.EncodeToString(s[:])
}

func (f fakeProvider) Parse(a providers.Account, r providers.Request) (events.Event, error) {
	var m struct{ Order, Status, Amount, Sign string }
	if err := json.Unmarshal(r.Body, &m); err != nil {
		return events.Event{}, providers.Reject("malformed", providers.ErrMalformed, "not JSON")
	}
	if fakeSign(m.Order, m.Status, m.Amount, a.Key("secret")) != m.Sign {
		return events.Event{}, providers.Reject("bad_signature", providers.ErrSignature, "sign mismatch")
	}
	amt, err := events.ParseMoney(m.Amount, a.Currency)
	if err != nil {
		return events.Event{}, providers.Reject("bad_amount", providers.ErrMalformed, "amount")
	}
	if m.Status == "panic" {
		panic("decoder bug")
	}
	if m.Status == "customer.created" {
		return events.Event{}, fmt.Errorf("%w: type %s", providers.ErrIgnored, m.Status)
	}
	// Orders are for 100.00: any other paid amount is a mismatch.
	req := events.MustMoney("100.00", a.Currency)
	return events.Event{
		Provider: f.name, Account: a.ID, Kind: r.Kind, Status: events.Status(m.Status),
		MerchantOrderID: m.Order, Amount: amt, RequestedAmount: &req, AmountMismatch: amt.Cmp(req) != 0,
		OccurredAt: r.ReceivedAt, ReceivedAt: r.ReceivedAt, Origin: events.OriginCallback,
	}, nil
}

// ClaimedOrder reads "order" without checking anything, as a provider's
// ClaimedOrder role does; it panics on the order PANIC-CLAIM.
func (fakeProvider) ClaimedOrder(_ providers.Account, r providers.Request) (string, bool) {
	var m struct{ Order string }
	if json.Unmarshal(r.Body, &m) != nil || m.Order == "" {
		return "", false
	}
	if m.Order == "PANIC-CLAIM" {
		panic("claim reader bug")
	}
	return m.Order, true
}

type harness struct {
	t    *testing.T
	nats *testenv.NATS
	js   jetstream.JetStream
	url  string
	reg  *prometheus.Registry
	srv  *Server
	stop func()
}

func testConfig() *config.Config {
	c := &config.Config{
		Accounts: []providers.Account{
			{ID: "acc-1", Provider: "fakeprov", Keys: providers.Keys{"merchant_id": "1", "secret": "s3cret"}, Currency: "INR"},
			{ID: "acc-ip", Provider: "fakeprov", Keys: providers.Keys{"merchant_id": "2", "secret": "s3cret"}, Currency: "INR", AllowIPs: []string{"203.0.113.0/24"}},
		},
	}
	c.Ingress.BodyLimit = 2048
	c.Ingress.PublishTimeout = config.Duration(time.Second)
	c.Ingress.TrustedProxyHeader = "X-Forwarded-For"
	c.Ingress.TrustedProxies = []string{"127.0.0.1/32"}
	c.NATS.Replicas = 1
	return c
}

func start(t *testing.T, cfg *config.Config, dd publisher.Deduper) *harness {
	t.Helper()
	return startOn(t, testenv.StartNATS(t), cfg, dd)
}

// startOn starts another ingress instance on an existing NATS server.
func startOn(t *testing.T, n *testenv.NATS, cfg *config.Config, dd publisher.Deduper) *harness {
	t.Helper()
	nc, err := natsbus.Connect(config.NATS{URL: n.URL}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	if err := natsbus.EnsureStreams(context.Background(), js, cfg.NATS); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	srv, err := New(Deps{Config: cfg, JS: js, Registry: reg, Dedupe: dd,
		Providers: map[string]providers.Inbound{"fakeprov": fakeProvider{"fakeprov"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv.MountOps(reg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 5*time.Second) }()
	h := &harness{t: t, nats: n, js: js, url: "http://" + ln.Addr().String(), reg: reg, srv: srv}
	h.stop = func() { cancel(); <-done }
	t.Cleanup(func() { cancel() })
	return h
}

func body(order, status, amount string) string {
	return fmt.Sprintf(`{"order":%q,"status":%q,"amount":%q,"sign":%q}`, order, status, amount, fakeSign(order, status, amount, "s3cret"))
}

func (h *harness) post(path, b string, hdr ...string) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url+path, strings.NewReader(b))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(rb)
}

func (h *harness) count(stream, subject string) int {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), stream)
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

func (h *harness) last(subject string) ([]byte, string) {
	h.t.Helper()
	s, _ := h.js.Stream(context.Background(), natsbus.StreamEvents)
	m, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		h.t.Fatalf("no message on %s: %v", subject, err)
	}
	return m.Data, m.Header.Get(jetstream.MsgIDHeader)
}

const cbPath = "/v1/callbacks/fakeprov/acc-1/payin"

func TestAcceptedCallbackStoresExactCloudEvent(t *testing.T) {
	h := start(t, testConfig(), nil)
	code, reply := h.post(cbPath, body("ORD-1", "succeeded", "100000.00"))
	if code != 200 || reply != "success" {
		t.Fatalf("got %d %q, want 200 success", code, reply)
	}
	data, msgID := h.last("payhook.events.fakeprov.payin.succeeded")
	var ce map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&ce); err != nil {
		t.Fatal(err)
	}
	want := events.Event{Provider: "fakeprov", Account: "acc-1", Kind: "payin", Status: "succeeded", MerchantOrderID: "ORD-1"}
	if ce["id"] != want.ID() || msgID != want.ID() {
		t.Errorf("id %v / Nats-Msg-Id %q, want %s", ce["id"], msgID, want.ID())
	}
	for k, v := range map[string]string{"specversion": "1.0", "source": "payhook/fakeprov/acc-1", "type": "payhook.payin.succeeded", "datacontenttype": "application/json", "subject": "ORD-1"} {
		if ce[k] != v {
			t.Errorf("%s = %v, want %s", k, ce[k], v)
		}
	}
	d := ce["data"].(map[string]any)
	amt := d["amount"].(map[string]any)
	if amt["value"] != "100000.00" || amt["currency"] != "INR" || d["origin"] != "callback" || d["merchant_order_id"] != "ORD-1" {
		t.Errorf("data = %v", d)
	}
	if got := testutil.ToFloat64(h.srv.m.callbacks.WithLabelValues("fakeprov", "payin", "accepted")); got != 1 {
		t.Errorf("accepted counter = %v", got)
	}
	testenv.Eventually(t, 2*time.Second, func() bool { return h.count(natsbus.StreamRaw, "payhook.raw.fakeprov.accepted") == 1 }, "raw record")
}

// A verified callback of a type payhook does not map is acknowledged (so
// the provider stops resending it) and recorded as ignored; no event.
func TestIgnoredCallbackIsAcknowledgedWithoutEvent(t *testing.T) {
	h := start(t, testConfig(), nil)
	code, reply := h.post(cbPath, body("ORD-IGN", "customer.created", "100.00"))
	if code != 200 || reply != "success" {
		t.Fatalf("got %d %q, want 200 success", code, reply)
	}
	if got := testutil.ToFloat64(h.srv.m.callbacks.WithLabelValues("fakeprov", "payin", VerdictIgnored)); got != 1 {
		t.Errorf("ignored counter = %v", got)
	}
	testenv.Eventually(t, 2*time.Second, func() bool { return h.count(natsbus.StreamRaw, "payhook.raw.fakeprov.ignored") == 1 }, "raw record")
	if n := h.count(natsbus.StreamEvents, "payhook.events.>"); n != 0 {
		t.Errorf("%d events stored for an ignored callback", n)
	}
	// A forged one is still a rejection.
	if code, _ := h.post(cbPath, strings.Replace(body("ORD-IGN", "customer.created", "100.00"), `"sign":"`, `"sign":"0`, 1)); code != 401 {
		t.Errorf("forged ignored type: %d, want 401", code)
	}
}

func TestRejections(t *testing.T) {
	h := start(t, testConfig(), nil)
	big := strings.Repeat("x", 4096)
	cases := []struct {
		name, path, body string
		hdr              []string
		code             int
		reason           string
	}{
		{"bad signature", cbPath, strings.Replace(body("ORD-2", "succeeded", "1.00"), `"sign":"`, `"sign":"0`, 1), nil, 401, "bad_signature"},
		{"tampered amount", cbPath, strings.Replace(body("ORD-2", "succeeded", "1.00"), `"1.00"`, `"9.00"`, 1), nil, 401, "bad_signature"},
		{"not json", cbPath, "amount=1", nil, 400, "malformed"},
		{"empty", cbPath, "", nil, 400, "malformed"},
		{"unknown account", "/v1/callbacks/fakeprov/nope/payin", body("O", "succeeded", "1"), nil, 404, "unknown_account"},
		{"unknown provider", "/v1/callbacks/paypal/acc-1/payin", body("O", "succeeded", "1"), nil, 404, "unknown_provider"},
		{"wrong kind", "/v1/callbacks/fakeprov/acc-1/payout", body("O", "succeeded", "1"), nil, 404, "wrong_kind"},
		{"bogus kind", "/v1/callbacks/fakeprov/acc-1/refund", body("O", "succeeded", "1"), nil, 404, "wrong_kind"},
		{"oversized", cbPath, big, nil, 413, "too_large"},
		{"ip not allowed", "/v1/callbacks/fakeprov/acc-ip/payin", body("O", "succeeded", "1"), nil, 403, "ip_not_allowed"},
		{"spoofed first hop ignored", "/v1/callbacks/fakeprov/acc-ip/payin", body("O", "succeeded", "1"), []string{"X-Forwarded-For", "203.0.113.9, 198.51.100.1"}, 403, "ip_not_allowed"},
		{"invalid status", cbPath, body("O", "weird", "1"), nil, 400, "invalid_event"},
		{"decoder panic", cbPath, body("O", "panic", "1"), nil, 400, "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, reply := h.post(c.path, c.body, c.hdr...)
			if code != c.code || !strings.Contains(reply, `"error":"`+c.reason+`"`) {
				t.Fatalf("got %d %s, want %d %s", code, reply, c.code, c.reason)
			}
			if strings.Contains(reply, "s3cret") {
				t.Errorf("reply leaks the secret: %s", reply)
			}
		})
	}
	if n := h.count(natsbus.StreamEvents, "payhook.events.>"); n != 0 {
		t.Errorf("%d events published for rejected callbacks", n)
	}
	testenv.Eventually(t, 2*time.Second, func() bool {
		return h.count(natsbus.StreamRawRejected, "payhook.raw.*.rejected") == len(cases)
	}, "every rejection in PAYHOOK_RAW_REJECTED")
	// The allowlist passes the address our trusted proxy appended.
	code, _ := h.post("/v1/callbacks/fakeprov/acc-ip/payin", body("O-IP", "succeeded", "1"), "X-Forwarded-For", "198.51.100.1, 203.0.113.9")
	if code != 200 {
		t.Errorf("allowed proxied address refused: %d", code)
	}
}

func TestRetriesCollapseInJetStreamWindow(t *testing.T) {
	h := start(t, testConfig(), nil)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _ := h.post(cbPath, body("ORD-DUP", "succeeded", "5.00")); code != 200 {
				t.Errorf("code %d", code)
			}
		}()
	}
	wg.Wait()
	if n := h.count(natsbus.StreamEvents, "payhook.events.>"); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

// NATS down: 503 and nothing acknowledged; after the restart the provider's
// retry lands. With a real dedupe store this is also the "release": the
// failed publish left nothing recorded (no claim to expire), so the retry is
// new at Check, and the retry after that stops at the store as a duplicate.
func TestNATSDownAnswers503ThenRetryLands(t *testing.T) {
	for name, dd := range map[string]func(t *testing.T) publisher.Deduper{
		"jetstream window only": func(*testing.T) publisher.Deduper { return nil },
		"redis dedupe":          func(t *testing.T) publisher.Deduper { return redisDeduper(t, testenv.StartRedis(t), 0) },
	} {
		t.Run(name, func(t *testing.T) { testNATSDown(t, dd(t)) })
	}
}

func testNATSDown(t *testing.T, dd publisher.Deduper) {
	h := start(t, testConfig(), dd)
	h.nats.Stop()
	code, reply := h.post(cbPath, body("ORD-OUT", "succeeded", "7.00"))
	if code != 503 || !strings.Contains(reply, "unavailable") {
		t.Fatalf("NATS down: got %d %s, want 503", code, reply)
	}
	req, _ := http.NewRequest(http.MethodGet, h.url+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("readyz with NATS down = %d, want 503", resp.StatusCode)
	}
	sd, withStore := dd.(publisher.StoreDeduper)
	ev := events.Event{Provider: "fakeprov", Account: "acc-1", Kind: events.KindPayin, Status: events.StatusSucceeded, MerchantOrderID: "ORD-OUT"}
	if withStore {
		c, err := sd.Store.Check(context.Background(), ev.ID(), dedupe.OrderOf(&ev))
		if err != nil || c != (dedupe.Check{}) {
			t.Fatalf("after the failed publish the store holds %+v (%v), want nothing recorded", c, err)
		}
	}
	h.nats.Start()
	testenv.Eventually(t, 10*time.Second, func() bool { return h.js.Conn().IsConnected() }, "reconnect")
	code, _ = h.post(cbPath, body("ORD-OUT", "succeeded", "7.00"))
	if code != 200 {
		t.Fatalf("provider retry after restart: %d", code)
	}
	if n := h.count(natsbus.StreamEvents, "payhook.events.>"); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
	if !withStore {
		return
	}
	if c, err := sd.Store.Check(context.Background(), ev.ID(), dedupe.OrderOf(&ev)); err != nil || !c.Published {
		t.Fatalf("after the retry landed the store holds %+v (%v), want it recorded", c, err)
	}
	if code, _ := h.post(cbPath, body("ORD-OUT", "succeeded", "7.00")); code != 200 {
		t.Fatalf("second retry: %d", code)
	}
	for result, want := range map[string]float64{"new": 2, "duplicate": 1, "jetstream_duplicate": 0, "unavailable": 0} {
		if got := counter(t, []*harness{h}, "payhook_dedupe_total", "result", result); got != want {
			t.Errorf(`payhook_dedupe_total{result=%q} = %v, want %v (503'd attempt, the retry that landed, the retry after)`, result, got, want)
		}
	}
	if n := h.count(natsbus.StreamEvents, "payhook.events.>"); n != 1 {
		t.Fatalf("%d events after the second retry, want 1", n)
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	h := start(t, testConfig(), nil)
	// Hold the request open mid-body so it is in flight when shutdown begins.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, h.url+cbPath, pr)
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		resp.Body.Close()
		res <- result{code: resp.StatusCode}
	}()
	b := body("ORD-DRAIN", "succeeded", "3.00")
	_, _ = pw.Write([]byte(b[:10]))
	time.Sleep(100 * time.Millisecond)
	stopped := make(chan struct{})
	go func() { h.stop(); close(stopped) }()
	time.Sleep(100 * time.Millisecond)
	_, _ = pw.Write([]byte(b[10:]))
	pw.Close()
	r := <-res
	<-stopped
	if r.err != nil || r.code != 200 {
		t.Fatalf("in-flight callback during shutdown: %+v", r)
	}
	if n := h.count(natsbus.StreamEvents, "payhook.events.>"); n != 1 {
		t.Fatalf("%d events after drain, want 1", n)
	}
}

// The proxy header is believed only from ingress.trusted_proxies: a client
// connecting directly cannot claim an allowlisted address.
func TestProxyHeaderIgnoredFromUntrustedPeer(t *testing.T) {
	cfg := testConfig()
	cfg.Ingress.TrustedProxies = []string{"10.0.0.0/8"} // the test client is 127.0.0.1
	h := start(t, cfg, nil)
	code, reply := h.post("/v1/callbacks/fakeprov/acc-ip/payin", body("O-PX", "succeeded", "1"), "X-Forwarded-For", "203.0.113.9")
	if code != 403 || !strings.Contains(reply, "ip_not_allowed") {
		t.Fatalf("spoofed header from an untrusted peer: %d %s, want 403", code, reply)
	}
}

func TestRoutesTrailingSlashAndUnroutedRecorded(t *testing.T) {
	h := start(t, testConfig(), nil)
	if code, reply := h.post(cbPath+"/", body("ORD-SL", "succeeded", "2.00")); code != 200 {
		t.Fatalf("trailing slash: %d %s", code, reply)
	}
	cases := []struct {
		method, path string
		code         int
		reason       string
	}{
		{http.MethodPost, "/v1/callbacks/fakeprov/acc-1", 404, "unknown_route"},
		{http.MethodPost, "/v1/callbacks/fakeprov/acc-1/payin/extra", 404, "unknown_route"},
		{http.MethodGet, cbPath, 405, "method_not_allowed"},
		{http.MethodPut, cbPath, 405, "method_not_allowed"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, h.url+c.path, strings.NewReader("x=1"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(b), c.reason) {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, resp.StatusCode, b, c.code, c.reason)
		}
	}
	testenv.Eventually(t, 2*time.Second, func() bool {
		return h.count(natsbus.StreamRawRejected, "payhook.raw.unknown.rejected") == len(cases)
	}, "unrouted requests in PAYHOOK_RAW_REJECTED")
}

// A mismatch is counted once per event, not once per provider retry.
func TestAmountMismatchCountedOncePerEvent(t *testing.T) {
	h := start(t, testConfig(), nil)
	for i := 0; i < 3; i++ {
		if code, _ := h.post(cbPath, body("ORD-MM", "succeeded", "99.50")); code != 200 {
			t.Fatalf("code %d", code)
		}
	}
	if got := testutil.ToFloat64(h.srv.m.mismatches.WithLabelValues("fakeprov", "payin")); got != 1 {
		t.Errorf("mismatches = %v, want 1", got)
	}
}
