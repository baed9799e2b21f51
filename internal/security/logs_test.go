package security_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dedupestore"
	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/reconcile"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

// Distinctive values: if any of them shows up in a log line, something
// logged a secret, a credential, a signature or a payer's details.
const (
	secJpglo     = "SECjpglo-key-4a8b2d77"
	secMrnpay    = "SECmrnpay-key-91ce07aa"
	secMpurseAES = "SECmpurse-aes!16" // 16 bytes: AES-128
	secCashypro  = "SECcashypro-key-55d2e1"
	secFantian   = "SECfantian-key-0b7f3c"
	secAdmin     = "SECadmin-token-7c1e9f42-5d0b83a6e4f1c2d9"
	secWrongTok  = "SECwrong-admin-token-ae01-77c4e2b19d3f0a65"
	secProxyAuth = "SECproxy-credential-6d6d"
	secCookie    = "SECcookie-session-3b3b"

	piiRealName = "Zqxleak Realname"
	piiPhone    = "+919812300077"
	piiEmail    = "zqx.leak@example.com"
	piiPayerVA  = "zqx.leak.payer@upi"
	piiRRN      = "774411009988"
	piiUTR      = "UTR55443322110099"
)

// subscriberSecret is whsec_ + base64 of a distinctive key.
var subscriberKey = "SECsubscriber-whkey-1234"
var subscriberSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte(subscriberKey))

type stack struct {
	cfg                            *config.Config
	ingress, dispatcher, reconcile string
	js                             jetstream.JetStream
	logs                           *testenv.LogBuffer
	stop                           func()
}

// startStack runs ingress, dispatcher and reconciler in-process, as their
// binaries wire them, on one real NATS and one real Redis, all logging at
// debug level (JSON, cli.Logger) into one buffer.
func startStack(t *testing.T, providerURL, subscriberURL string) *stack {
	t.Helper()
	ns := testenv.StartNATS(t)
	rd := testenv.StartRedis(t)
	yaml := fmt.Sprintf(`
nats: {url: %q, replicas: 1}
redis: {url: %q}
ingress: {listen: "127.0.0.1:0"}
dispatcher: {listen: "127.0.0.1:0"}
reconciler: {listen: "127.0.0.1:0", schedule: [1s, 1s, 1s]}
admin_token: %s
log: {level: debug, format: json}
event_signing: {private_key: "`+testenv.EventPrivateKey+`", public_keys: ["`+testenv.EventPublicKey+`"]}
accounts:
  - {id: glo-in, provider: jpglo, merchant_id: "1", secret: %s, currency: INR, base_url: %q}
  - {id: mrn-cn, provider: mrnpay, merchant_id: mrn-app-1, secret: %s, currency: CNY, base_url: %q}
  - {id: mp-in, provider: mpurse, merchant_id: MPSECPARTNER, aes_key: %q, aes_mode: ecb, currency: INR}
  - {id: cp-id, provider: cashypro, merchant_id: CP1002001, secret: %s, currency: IDR, base_url: %q}
  - {id: ft-in, provider: fantian, merchant_id: "1234567", secret: %s, currency: INR, base_url: %q}
subscribers:
  - {id: ledger, url: %q, secret: %s, max_attempts: 5, timeout: 2s, backoff_initial: 1s, backoff_max: 1s}
`, ns.URL, rd.URL, secAdmin, secJpglo, providerURL, secMrnpay, providerURL, secMpurseAES, secCashypro, providerURL,
		secFantian, providerURL, subscriberURL, subscriberSecret)
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	log := cli.Logger(cfg, logs)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	lnI, lnD, lnR := listen(), listen(), listen()
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	run("ingress", func(ctx context.Context) error {
		return ingress.Run(ctx, cfg, ingress.RunOptions{Log: log.With("component", "ingress"), Listener: lnI, Registry: prometheus.NewRegistry(), DrainTimeout: 5 * time.Second})
	})
	run("dispatcher", func(ctx context.Context) error {
		return dispatch.Run(ctx, cfg, dispatch.RunOptions{Log: log.With("component", "dispatcher"), Listener: lnD, Registry: prometheus.NewRegistry()})
	})
	run("reconciler", func(ctx context.Context) error {
		return runReconciler(ctx, cfg, lnR, log.With("component", "reconciler"))
	})
	var once sync.Once
	s := &stack{cfg: cfg, logs: logs, ingress: "http://" + lnI.Addr().String(), dispatcher: "http://" + lnD.Addr().String(), reconcile: "http://" + lnR.Addr().String()}
	s.stop = func() {
		once.Do(func() {
			cancel()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(40 * time.Second):
				t.Error("stack did not stop within 40s")
			}
		})
	}
	t.Cleanup(s.stop)
	for _, u := range []string{s.ingress, s.dispatcher, s.reconcile} {
		testenv.Eventually(t, 20*time.Second, func() bool {
			r, err := http.Get(u + "/readyz")
			if err != nil {
				return false
			}
			r.Body.Close()
			return r.StatusCode == 200
		}, "ready: "+u)
	}
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	s.js = js
	return s
}

// runReconciler wires the reconciler as cmd/reconciler does.
func runReconciler(ctx context.Context, cfg *config.Config, ln net.Listener, log *slog.Logger) error {
	nc, err := natsbus.Connect(cfg.NATS, "payhook-reconciler", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := natsbus.EnsureStreams(ctx, js, cfg.NATS); err != nil {
		return err
	}
	if _, err := reconcile.EnsureQueue(ctx, js, cfg.NATS); err != nil {
		return err
	}
	store, err := dedupestore.Open(ctx, cfg, js)
	if err != nil {
		return err
	}
	defer store.Store.Close()
	reg := prometheus.NewRegistry()
	r, err := reconcile.New(reconcile.Deps{Config: cfg, JS: js, Store: store.Store, References: store.Store,
		Providers: registry.All(), Registry: reg, Log: log})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: r.Handler(reg), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	return r.Run(ctx)
}

func acct(cfg *config.Config, id string) providers.Account {
	a, ok := cfg.Account(id)
	if !ok {
		panic("no account " + id)
	}
	return a
}

// TestNoSecretsOrPayerDataInLogsOrReplies runs the three services at debug
// level, pushes valid and invalid callbacks carrying distinctive secrets and
// payer fields through them (deliveries retried once, a reconciler poll that
// fails, a UTR submission, admin calls with a wrong token, a callback behind
// a proxy's credentials), then checks that none of those strings is in the
// captured logs, and that no reply to a provider echoes a secret, a
// signature or a payer field.
func TestNoSecretsOrPayerDataInLogsOrReplies(t *testing.T) {
	var provMu sync.Mutex
	provHits := map[string]int{}
	prov := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		provMu.Lock()
		provHits[r.URL.Path]++
		provMu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/payments/reference") {
			_, _ = w.Write([]byte(`{"error_code":"0000"}`))
			return
		}
		http.Error(w, "busy", http.StatusInternalServerError)
	}))
	defer prov.Close()
	var subMu sync.Mutex
	attempts := map[string]int{}
	sub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("webhook-id")
		subMu.Lock()
		attempts[id]++
		n := attempts[id]
		subMu.Unlock()
		if n == 1 {
			http.Error(w, "try again", http.StatusServiceUnavailable) // every event is retried once
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer sub.Close()
	s := startStack(t, prov.URL, sub.URL)

	ext := `{"user_id":"77","real_name":"` + piiRealName + `","phone":"` + piiPhone + `","email":"` + piiEmail + `"}`
	mrn, mp, cp := acct(s.cfg, "mrn-cn"), acct(s.cfg, "mp-in"), acct(s.cfg, "cp-id")
	wrong := func(a providers.Account) providers.Account {
		a = a.With("secret", a.Key("secret")+"x")
		a = a.With("aes_key", strings.Repeat("w", len(a.Key("aes_key"))))
		return a
	}
	type cb struct {
		name, path string
		body       []byte
		hdr        []string
		ok         bool
		signs      []string // signature values that must not come back
	}
	jpOK, jpSign := jpgloPayin(t, secJpglo, "SEC-ORD-1", ext)
	jpBad, jpBadSign := jpgloPayin(t, secJpglo+"x", "SEC-ORD-2", ext)
	cpOK, cpSign := cashyproPayin(t, cp, "SEC-ORD-3", "SUCCESS")
	cpBad, cpBadSign := cashyproPayin(t, wrong(cp), "SEC-ORD-4", "SUCCESS")
	mrnOK := mrnpay.BuildPayinCallback(mrn.Key("merchant_id"), secMrnpay, "SEC-ORD-5", "2", "99.50", "100.00")
	mrnBad := mrnpay.BuildPayinCallback(mrn.Key("merchant_id"), secMrnpay+"x", "SEC-ORD-6", "2", "99.50", "100.00")
	callbacks := []cb{
		{"jpglo valid", "/v1/callbacks/jpglo/glo-in/payin", jpOK, nil, true, []string{jpSign}},
		{"jpglo bad signature", "/v1/callbacks/jpglo/glo-in/payin", jpBad, nil, false, []string{jpBadSign, jpgloSignFor(t, jpBad, secJpglo)}},
		{"mpurse valid", "/v1/callbacks/mpurse/mp-in/payin", mpursePayin(t, mp, "SEC-ORD-7", piiPayerVA, piiRRN), nil, true, nil},
		{"mpurse wrong key", "/v1/callbacks/mpurse/mp-in/payin", mpursePayin(t, wrong(mp), "SEC-ORD-8", piiPayerVA, piiRRN), nil, false, nil},
		{"cashypro valid", "/v1/callbacks/cashypro/cp-id/payin", cpOK, []string{cashypro.HeaderMerchantID, cp.Key("merchant_id"), cashypro.HeaderSign, cpSign}, true, []string{cpSign}},
		{"cashypro bad signature", "/v1/callbacks/cashypro/cp-id/payin", cpBad, []string{cashypro.HeaderMerchantID, cp.Key("merchant_id"), cashypro.HeaderSign, cpBadSign}, false, []string{cpBadSign}},
		{"mrnpay valid", "/v1/callbacks/mrnpay/mrn-cn/payin", mrnOK, []string{"Content-Type", "application/x-www-form-urlencoded"}, true, nil},
		{"mrnpay bad signature", "/v1/callbacks/mrnpay/mrn-cn/payin", mrnBad, nil, false, []string{mrnpay.SignPayin("99.50", mrn.Key("merchant_id"), "2", "SEC-ORD-6", "100.00", secMrnpay)}},
		{"jpglo behind a proxy's credentials", "/v1/callbacks/jpglo/glo-in/payin", jpBad, []string{"Authorization", "Bearer " + secProxyAuth, "Cookie", "session=" + secCookie, "Proxy-Authorization", "Basic " + secProxyAuth, "X-Case", "creds"}, false, nil},
	}
	secrets := []string{secJpglo, secMrnpay, secMpurseAES, secCashypro, secFantian, secAdmin, testenv.EventPrivateKey[len("whsk_"):], secWrongTok, secProxyAuth, secCookie, subscriberKey, subscriberSecret}
	pii := []string{piiRealName, piiPhone, piiEmail, piiPayerVA, piiRRN, piiUTR}
	for _, c := range callbacks {
		r := do(t, http.MethodPost, s.ingress+c.path, c.body, c.hdr...)
		if c.ok != (r.status == 200) {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
		if !c.ok {
			for _, x := range append(append(append([]string{}, secrets...), pii...), c.signs...) {
				if x != "" && strings.Contains(r.body, x) {
					t.Errorf("%s: the reply to the provider echoes %q: %s", c.name, x, r.body)
				}
			}
		}
	}

	// Admin APIs with a wrong token, then the right one.
	admin := []struct{ url, body string }{
		{s.dispatcher + "/v1/dlq/replay", `{"subscriber":"ledger"}`},
		{s.reconcile + "/v1/watches", `{"provider":"mrnpay","account":"mrn-cn","kind":"payin","merchant_order_id":"SEC-WATCH-1"}`},
		{s.reconcile + "/v1/references", `{"account":"ft-in","merchant_order_id":"SEC-FT-1","reference":"` + piiUTR + `"}`},
	}
	for _, a := range admin {
		if r := do(t, http.MethodPost, a.url, []byte(a.body), "Authorization", "Bearer "+secWrongTok); r.status != 401 {
			t.Errorf("%s with a wrong token: %d", a.url, r.status)
		}
		if r := do(t, http.MethodPost, a.url, []byte(a.body), "Authorization", "Bearer "+secAdmin); r.status/100 != 2 {
			t.Errorf("%s with the token: %d %s", a.url, r.status, r.body)
		}
	}

	// Let the dispatcher deliver (each event fails once, then lands) and the
	// reconciler poll the failing provider.
	testenv.Eventually(t, 30*time.Second, func() bool {
		subMu.Lock()
		defer subMu.Unlock()
		delivered := 0
		for _, n := range attempts {
			if n >= 2 {
				delivered++
			}
		}
		return delivered >= 4
	}, "four events delivered after a retry")
	testenv.Eventually(t, 30*time.Second, func() bool {
		provMu.Lock()
		defer provMu.Unlock()
		return provHits["/api/Payments/Query"] >= 1 && provHits["/gateway/api/v1/payments/reference"] >= 1
	}, "reconciler polled mrnpay and submitted the UTR")
	time.Sleep(500 * time.Millisecond) // let the poll's failure be logged

	// The raw record of the proxied callback keeps no credentials.
	var found bool
	for _, rec := range rawRecords(t, s.js, len(callbacks)) {
		if len(rec.Headers["X-Case"]) == 0 {
			continue
		}
		found = true
		for _, h := range []string{"Authorization", "Cookie", "Proxy-Authorization"} {
			if hasHeader(rec.Headers, h) {
				t.Errorf("PAYHOOK_RAW keeps the %s header", h)
			}
		}
		raw, _ := json.Marshal(rec)
		for _, x := range []string{secProxyAuth, secCookie} {
			if strings.Contains(string(raw), x) {
				t.Errorf("PAYHOOK_RAW keeps a proxy credential")
			}
		}
	}
	if !found {
		t.Error("the proxied callback is not on PAYHOOK_RAW")
	}

	s.stop() // shutdown logs too
	logs := s.logs.String()
	lines := strings.Count(logs, "\n")
	if testing.Verbose() {
		t.Log(logs)
	}
	for _, want := range []string{`"msg":"callback refused"`, `"msg":"callback stored"`, `"msg":"delivery failed; will retry"`, `"msg":"poll failed; backing off"`, `"msg":"reference matched"`,
		`"msg":"admin request refused: missing or wrong bearer token"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s: the test did not exercise what it checks", want)
		}
	}
	// The refusals of the wrong token went through each service's own
	// logger (JSON, with its component), not the process default.
	refused := grepLines(logs, `"msg":"admin request refused`)
	for _, c := range []string{"dispatcher", "reconciler"} {
		if !strings.Contains(refused, `"component":"`+c+`"`) {
			t.Errorf("no admin refusal logged by the %s's logger:\n%s", c, refused)
		}
	}
	for _, x := range append(append([]string{}, secrets...), pii...) {
		if strings.Contains(logs, x) {
			t.Errorf("the log contains %q:\n%s", x, grepLines(logs, x))
		}
	}
	for _, c := range callbacks {
		for _, x := range c.signs {
			if strings.Contains(logs, x) {
				t.Errorf("the log contains the signature of %q", c.name)
			}
		}
		if strings.Contains(logs, string(c.body[:min(24, len(c.body))])) {
			t.Errorf("the log contains body bytes of %q", c.name)
		}
	}
	t.Logf("%d log lines at debug level checked for %d secrets, %d payer values and %d signatures", lines, len(secrets), len(pii), 7)
}

// jpgloSignFor is the sign body would need under secret (so a reply that
// leaked the expected signature is caught).
func jpgloSignFor(t *testing.T, body []byte, secret string) string {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(string(body)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return jpglo.Sign(m, secret)
}

func grepLines(logs, x string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, x) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
