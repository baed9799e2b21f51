package ingress_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

// clock is a settable time source for ingress.Deps.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// replayStack is an ingress on a real NATS with one jpglo account whose
// max_age is what config.Parse gives by default for the default 168h
// dedupe window (144h), and a clock the test moves.
type replayStack struct {
	base  string
	js    jetstream.JetStream
	reg   *prometheus.Registry
	clock *clock
}

func startReplayStack(t *testing.T, now time.Time) *replayStack {
	t.Helper()
	cfg, err := config.Parse([]byte(`
nats: {url: "nats://127.0.0.1:1"}
accounts:
  - {id: glo-br, provider: jpglo, merchant_id: "1", secret: "`+seedKey+`", currency: BRL}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Accounts[0].MaxAge; got != 144*time.Hour {
		t.Fatalf("default max_age = %s, want 144h (168h window less a seventh)", got)
	}
	n := testenv.StartNATS(t)
	js, _ := jetstream.New(n.Connect(t))
	if err := natsbus.EnsureStreams(context.Background(), js, cfg.NATS); err != nil {
		t.Fatal(err)
	}
	st := &replayStack{js: js, reg: prometheus.NewRegistry(), clock: &clock{t: now}}
	srv, err := ingress.New(ingress.Deps{Config: cfg, JS: js, Providers: registry.Inbound(), Registry: st.reg, Now: st.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln, 5*time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	st.base = "http://" + ln.Addr().String()
	return st
}

// seedPaymentCallback is jpglo's documented payment callback, as kept in
// the package's test vectors: signed with the seed's key, "timestamp"
// 1656945134 (2022-07-04T14:32:14Z).
func seedPaymentCallback(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../pkg/providers/jpglo/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Jpglo []struct {
			Name   string         `json:"name"`
			Key    string         `json:"key"`
			Params map[string]any `json:"params"`
			Sign   string         `json:"sign"`
		} `json:"jpglo"`
	}
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	if err := d.Decode(&file); err != nil {
		t.Fatal(err)
	}
	for _, v := range file.Jpglo {
		if strings.HasPrefix(v.Name, "payment callback") {
			if v.Key != seedKey || v.Params["timestamp"] != json.Number("1656945134") {
				t.Fatalf("vector %q changed: key %s timestamp %v", v.Name, v.Key, v.Params["timestamp"])
			}
			v.Params["sign"] = v.Sign
			b, _ := json.Marshal(v.Params)
			return string(b)
		}
	}
	t.Fatal("no payment callback vector")
	return ""
}

// freshPaymentCallback is a jpglo payment callback for order signed at signed.
func freshPaymentCallback(order string, signed time.Time) string {
	f := map[string]any{
		"order_no": "J" + order, "mch_order_no": order, "status": "success",
		"apply_amount": json.Number("10000"), "real_amount": json.Number("10000"), "pay_type": "pix",
		"sub_pay_type": nil, "remark": nil, "timestamp": json.Number(strconv.FormatInt(signed.Unix(), 10)),
	}
	f["sign"] = jpglo.Sign(f, seedKey)
	b, _ := json.Marshal(f)
	return string(b)
}

// rawVerdicts lists (verdict, reason) of every record on PAYHOOK_RAW and
// PAYHOOK_RAW_REJECTED.
func rawVerdicts(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for _, stream := range natsbus.RawStreams {
		c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for {
			msgs, err := c.FetchNoWait(100)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for m := range msgs.Messages() {
				n++
				r, err := ingress.DecodeRawRecord(m.Headers(), m.Data())
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, r.Verdict+"/"+r.Reason)
			}
			if n == 0 {
				break
			}
		}
	}
	return out
}

func eventCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), natsbus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestSeedCallbackOf2022IsTooOld: jpglo's documented callback, signed in
// 2022, verifies but is refused as too old, recorded as rejected and counted.
func TestSeedCallbackOf2022IsTooOld(t *testing.T) {
	st := startReplayStack(t, time.Now())
	code, reply := post(t, st.base+"/v1/callbacks/jpglo/glo-br/payin", "application/json", seedPaymentCallback(t))
	if code != 400 || !strings.Contains(reply, `"error":"too_old"`) {
		t.Fatalf("2022 callback: %d %s, want 400 too_old", code, reply)
	}
	if n := eventCount(t, st.js); n != 0 {
		t.Errorf("%d events stored from a too-old callback", n)
	}
	if got := rejectedCount(t, st.reg, "jpglo", "too_old"); got != 1 {
		t.Errorf("payhook_ingress_rejected_total{reason=too_old} = %v, want 1", got)
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		v := rawVerdicts(t, st.js)
		return len(v) == 1 && v[0] == "rejected/too_old"
	}, "raw record of the refusal: %v", rawVerdicts(t, st.js))
}

// TestReplayAfterDedupeWindowIsRefused: a fresh callback is accepted; the
// same bytes posted again once the 168h dedupe window has passed (when the
// dedupe store no longer remembers the event) are refused as too old
// instead of being stored a second time; a callback signed 2h ahead of our
// clock passes, one 4h ahead does not.
func TestReplayAfterDedupeWindowIsRefused(t *testing.T) {
	t0 := time.Now().Truncate(time.Second)
	st := startReplayStack(t, t0)
	url := st.base + "/v1/callbacks/jpglo/glo-br/payin"
	captured := freshPaymentCallback("ord-replay-1", t0.Add(-time.Minute))
	if code, reply := post(t, url, "application/json", captured); code != 200 {
		t.Fatalf("fresh callback: %d %s", code, reply)
	}
	if n := eventCount(t, st.js); n != 1 {
		t.Fatalf("%d events after the fresh callback, want 1", n)
	}

	// Just inside max_age (144h): still accepted (a duplicate of the event).
	st.clock.Set(t0.Add(144*time.Hour - 2*time.Minute))
	if code, reply := post(t, url, "application/json", captured); code != 200 {
		t.Fatalf("retry within max_age: %d %s", code, reply)
	}
	// Past the dedupe window: refused, nothing stored.
	st.clock.Set(t0.Add(168*time.Hour + time.Minute))
	code, reply := post(t, url, "application/json", captured)
	if code != 400 || !strings.Contains(reply, `"error":"too_old"`) {
		t.Fatalf("replay after the dedupe window: %d %s, want 400 too_old", code, reply)
	}
	if n := eventCount(t, st.js); n != 1 {
		t.Errorf("%d events after the replay, want still 1", n)
	}

	// Clock skew: 2h ahead is within the allowed 3h, 4h is not.
	now := t0.Add(168*time.Hour + time.Minute)
	if code, reply := post(t, url, "application/json", freshPaymentCallback("ord-skew-2h", now.Add(2*time.Hour))); code != 200 {
		t.Errorf("signed 2h ahead: %d %s, want 200", code, reply)
	}
	code, reply = post(t, url, "application/json", freshPaymentCallback("ord-skew-4h", now.Add(4*time.Hour)))
	if code != 400 || !strings.Contains(reply, `"error":"future_timestamp"`) {
		t.Errorf("signed 4h ahead: %d %s, want 400 future_timestamp", code, reply)
	}
	if got := rejectedCount(t, st.reg, "jpglo", "too_old"); got != 1 {
		t.Errorf("rejected{reason=too_old} = %v, want 1", got)
	}
}

// TestBodyLimitOverMaxPayloadRefusesToStart: against a NATS server whose
// max_payload is 256 KiB, ingress with the default 64 KiB body_limit (whose
// raw records may reach ~500 KiB) refuses to start with a config error
// naming ingress.body_limit; a body_limit that fits starts.
func TestBodyLimitOverMaxPayloadRefusesToStart(t *testing.T) {
	url := natsWithMaxPayload(t, 256<<10)
	load := func(bodyLimit int64) *config.Config {
		cfg, err := config.Parse([]byte("nats: {url: \""+url+"\"}\ningress: {body_limit: "+strconv.FormatInt(bodyLimit, 10)+"}\nevent_signing: {private_key: \""+testenv.EventPrivateKey+"\"}\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	err := ingress.Run(context.Background(), load(64<<10), ingress.RunOptions{Listener: localListener(t)})
	var ce *config.Error
	if !asConfigError(err, &ce) || ce.Key != "ingress.body_limit" || !strings.Contains(err.Error(), "max_payload (262144 bytes)") {
		t.Fatalf("Run with body_limit 64 KiB on a 256 KiB max_payload: %v, want a config error on ingress.body_limit", err)
	}
	fits := ingress.MaxBodyLimit(256 << 10)
	if fits < 1024 || ingress.MaxMessageBytes(fits) > 256<<10 || ingress.MaxMessageBytes(fits+1) <= 256<<10 {
		t.Fatalf("MaxBodyLimit(256 KiB) = %d is not the largest that fits", fits)
	}
	ctx, cancel := context.WithCancel(context.Background())
	up := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- ingress.Run(ctx, load(fits), ingress.RunOptions{Listener: localListener(t), Listening: func(string) { close(up) }})
	}()
	select {
	case <-up:
	case err := <-done:
		t.Fatalf("Run with body_limit %d: %v", fits, err)
	case <-time.After(30 * time.Second):
		t.Fatal("ingress did not start")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func localListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// natsWithMaxPayload starts a real JetStream server whose max_payload is n.
func natsWithMaxPayload(t *testing.T, n int32) string {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: testenv.FreePort(t), JetStream: true, StoreDir: t.TempDir(),
		MaxPayload: n, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv.ClientURL()
}

func asConfigError(err error, ce **config.Error) bool { return errors.As(err, ce) }

// rejectedCount reads payhook_ingress_rejected_total{provider,reason} from reg.
func rejectedCount(t *testing.T, reg *prometheus.Registry, provider, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "payhook_ingress_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["provider"] == provider && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestWorstCaseRequestFitsMaxPayload: on a NATS server whose max_payload is
// exactly MaxMessageBytes(body_limit), a request at the body limit of bytes
// JSON would spell in six ("\u0001"), with ~15 KiB of headers whose every
// byte the raw record escapes to three ("é" is "%C3%A9"), is refused and
// its raw record stored: the bound ingress checks at start is one the
// records keep.
func TestWorstCaseRequestFitsMaxPayload(t *testing.T) {
	const bodyLimit = 8 << 10
	url := natsWithMaxPayload(t, int32(ingress.MaxMessageBytes(bodyLimit)))
	cfg, err := config.Parse([]byte(`
nats: {url: "`+url+`"}
ingress: {body_limit: `+strconv.Itoa(bodyLimit)+`}
event_signing: {private_key: "`+testenv.EventPrivateKey+`"}
accounts:
  - {id: glo-br, provider: jpglo, merchant_id: "1", secret: "`+seedKey+`", currency: BRL}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	up := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ingress.Run(ctx, cfg, ingress.RunOptions{Listener: localListener(t), Listening: func(a string) { up <- a }})
	}()
	var addr string
	select {
	case addr = <-up:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	defer func() { cancel(); <-done }()
	hdr := []string{}
	for i := range 15 {
		hdr = append(hdr, "X-Fill-"+strconv.Itoa(i), strings.Repeat("é", 500))
	}
	code, reply := post(t, "http://"+addr+"/v1/callbacks/jpglo/glo-br/payin", "application/json", strings.Repeat("\x01", bodyLimit), hdr...)
	if code != 400 || !strings.Contains(reply, "malformed") {
		t.Fatalf("worst-case body: %d %s, want 400 malformed (a 503 means its raw record did not fit)", code, reply)
	}
	nc, js := connect(t, url)
	defer nc.Close()
	if v := rawVerdicts(t, js); len(v) != 1 || v[0] != "rejected/malformed" {
		t.Fatalf("raw records %v, want the one refusal", v)
	}
}

func connect(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	return nc, js
}
