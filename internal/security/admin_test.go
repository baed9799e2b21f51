package security_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/reconcile"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe/memdedupe"
)

const adminToken = "tok-admin-8c2f-31aa-4e6b0d95c7a1f382"

// adminServers serves the dispatcher's and the reconciler's admin APIs
// (their real handlers, on a real NATS) under cfg's admin_token.
func adminServers(t *testing.T, token string) (dispatcherURL, reconcilerURL string) {
	t.Helper()
	ns := testenv.StartNATS(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`
admin_token: "`+token+`"
event_signing: {public_keys: ["`+testenv.EventPublicKey+`"]}
accounts:
  - {id: ft-in, provider: fantian, merchant_id: "1234567", secret: s3cret-fantian, currency: INR, base_url: "http://127.0.0.1:9"}
  - {id: mrn-cn, provider: mrnpay, merchant_id: app, secret: s3cret-mrnpay, currency: CNY, base_url: "http://127.0.0.1:9"}
subscribers:
  - {id: ledger, url: "http://127.0.0.1:9/hooks", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, max_attempts: 3, timeout: 1s}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, cfg.NATS); err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(cfg, js, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r, err := reconcile.New(reconcile.Deps{Config: cfg, JS: js, Store: memdedupe.New(memdedupe.Config{}), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ds := httptest.NewServer(d.Handler())
	rs := httptest.NewServer(r.Handler(reg))
	t.Cleanup(ds.Close)
	t.Cleanup(rs.Close)
	return ds.URL, rs.URL
}

type adminCall struct{ name, method, path, body string }

func adminCalls(dispatcherURL, reconcilerURL string) []adminCall {
	return []adminCall{
		{"dispatcher dlq replay", http.MethodPost, dispatcherURL + "/v1/dlq/replay", `{"subscriber":"ledger"}`},
		{"dispatcher dlq list", http.MethodGet, dispatcherURL + "/v1/dlq?subscriber=ledger", ""},
		{"dispatcher pause", http.MethodPost, dispatcherURL + "/v1/subscribers/ledger/pause", `{"reason":"admin test"}`},
		{"dispatcher resume", http.MethodPost, dispatcherURL + "/v1/subscribers/ledger/resume", ""},
		{"dispatcher retire", http.MethodDelete, dispatcherURL + "/v1/subscribers/ledger", ""}, // configured: 409 with the token
		{"reconciler watches", http.MethodPost, reconcilerURL + "/v1/watches", `{"provider":"mrnpay","account":"mrn-cn","kind":"payin","merchant_order_id":"ADM-1"}`},
		{"reconciler references", http.MethodPost, reconcilerURL + "/v1/references", `{"account":"ft-in","merchant_order_id":"ADM-2","reference":"not a reference!"}`},
	}
}

// TestAdminAPIsRejectMissingAndWrongTokens: every admin endpoint of the
// dispatcher and the reconciler answers 401 (with WWW-Authenticate, without
// echoing what was sent) unless the request carries exactly
// "Authorization: Bearer <admin_token>".
func TestAdminAPIsRejectMissingAndWrongTokens(t *testing.T) {
	dURL, rURL := adminServers(t, adminToken)
	auth := []struct {
		name string
		hdr  []string
		ok   bool
	}{
		{"no Authorization", nil, false},
		{"wrong token", []string{"Authorization", "Bearer wrong-token"}, false},
		{"empty bearer", []string{"Authorization", "Bearer "}, false},
		{"token prefix", []string{"Authorization", "Bearer " + adminToken[:len(adminToken)-1]}, false},
		{"token plus a byte", []string{"Authorization", "Bearer " + adminToken + "x"}, false},
		{"token without scheme", []string{"Authorization", adminToken}, false},
		{"basic auth with the token", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+adminToken))}, false},
		{"token in another header", []string{"X-Admin-Token", adminToken}, false},
		{"token with trailing space", []string{"Authorization", "Bearer " + adminToken + " "}, true}, // HTTP trims header whitespace
		{"right token", []string{"Authorization", "Bearer " + adminToken}, true},
	}
	for _, c := range adminCalls(dURL, rURL) {
		for _, a := range auth {
			t.Run(c.name+"/"+a.name, func(t *testing.T) {
				url := c.url()
				if a.name == "token in another header" {
					url += sep(url) + "token=" + adminToken
				}
				r := doResp(t, c.method, url, c.body, a.hdr...)
				switch {
				case a.ok && (r.status == 401 || r.status == 404):
					t.Errorf("authorized call refused: %d %s", r.status, r.body)
				case !a.ok && r.status != 401:
					t.Errorf("got %d %s, want 401", r.status, r.body)
				case !a.ok && r.wwwAuth == "":
					t.Error("401 without WWW-Authenticate")
				}
				if strings.Contains(r.body, adminToken[4:]) {
					t.Errorf("reply echoes the token: %s", r.body)
				}
			})
		}
	}
}

// TestAdminAPIsDisabledWithoutToken: an empty admin_token turns every admin
// endpoint off (404), even for a request that sends an empty bearer token.
func TestAdminAPIsDisabledWithoutToken(t *testing.T) {
	dURL, rURL := adminServers(t, "")
	for _, c := range adminCalls(dURL, rURL) {
		for _, hdr := range [][]string{nil, {"Authorization", "Bearer "}, {"Authorization", "Bearer anything"}} {
			t.Run(c.name+"/"+strings.Join(hdr, "="), func(t *testing.T) {
				if r := doResp(t, c.method, c.url(), c.body, hdr...); r.status != 404 {
					t.Errorf("got %d %s, want 404", r.status, r.body)
				}
			})
		}
	}
}

func (c adminCall) url() string { return c.path }

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}

type adminResp struct {
	status  int
	body    string
	wwwAuth string
}

func doResp(t *testing.T, method, url, body string, hdr ...string) adminResp {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b := new(strings.Builder)
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return adminResp{r.StatusCode, b.String(), r.Header.Get("WWW-Authenticate")}
}
