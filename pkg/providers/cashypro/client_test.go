package cashypro_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/internal/querytest"
)

// fakeCashy is CashyPro's /api/payInQuery as the seed shows it. It checks
// every request's headers and signature (with the test's own signer) and
// answers with reply, or with a 401-style error envelope when the
// signature is wrong.
type fakeCashy struct {
	t      *testing.T
	rule   string // the sign_rule the fake checks Sign with (testSignRule)
	status int
	reply  string
	delay  time.Duration

	mu   sync.Mutex
	seen []map[string]string
}

func (f *fakeCashy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	bad := func(msg string) {
		f.t.Errorf("fake cashypro: %s", msg)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"msg":"Sign_Error","code":401}`)
	}
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/api/payInQuery":
		bad("unexpected " + r.Method + " " + r.URL.Path)
		return
	case r.Header.Get("Content-Type") != "application/json":
		bad("content type " + r.Header.Get("Content-Type"))
		return
	case r.Header.Get("MerchantId") != "1002001":
		bad("MerchantId " + r.Header.Get("MerchantId"))
		return
	case r.Header.Get("Sign") != testSignRule(f.t, string(body), secret, f.rule):
		bad("signature does not verify")
		return
	}
	var fields map[string]string
	if err := json.Unmarshal(body, &fields); err != nil {
		bad("body is not a flat string object: " + err.Error())
		return
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(fields["nonceStr"]) {
		bad("nonceStr " + fields["nonceStr"])
	}
	f.mu.Lock()
	f.seen = append(f.seen, fields)
	f.mu.Unlock()
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if f.status != 0 {
		w.WriteHeader(f.status)
	}
	_, _ = io.WriteString(w, f.reply)
}

// Replies as the seed prints them, with the callback's order numbers where
// the test compares against the notification.
const (
	replyPaying = `{
"msg": "SUCCESS",
"code": 200,
"data": {
"merchantId": "1002001",
"mchOrderNo": "1386556575370063873",
"orderNo": "PAYIN8551843837024997376",
"payType": "43",
"payCode": "",
"payUrl": "https://m.dana.id/link/pay?bizNo=202412021112128001101660361270",
"payDeskUrl": "https://idpaydesk2.brcashypro.com/views/pay.html?PAYIN8551843837024997376",
"amount": "20000",
"fee": "1700",
"orderStatus": "PAYING",
"completionTime": null,
"nonceStr": null
}
}`
	replySuccessForSeedCallback = `{
"msg": "SUCCESS",
"code": 200,
"data": {
"merchantId": "1002001",
"mchOrderNo": "1386503284355244033",
"orderNo": "PAYIN8551790545658687488",
"payType": "41",
"payCode": "OR.GPNQR..INOPROID_BS",
"payUrl": "https://payurl.com",
"payDeskUrl": "https://idpaydesk2.brcashypro.com/views/pay.html?PAYIN8551790545658687488",
"amount": "20000",
"fee": "2500",
"orderStatus": "SUCCESS",
"completionTime": "2024-12-02 12:07:06",
"nonceStr": null
}
}`
	replyError = `{
"msg": "Payin_Order_Error",
"code": 500
}`
)

func startFake(t *testing.T, f *fakeCashy) providers.Account {
	t.Helper()
	f.t = t
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	a := acct
	a.BaseURL = srv.URL
	return a
}

func TestQueryStatuses(t *testing.T) {
	cases := []struct {
		name      string
		reply     string
		order     providers.Order
		wantFound bool
		want      events.Status
		wantEvent bool
	}{
		{"paying from the seed", replyPaying, providers.Order{Kind: events.KindPayin, MerchantOrderID: "1386556575370063873", ProviderOrderID: "PAYIN8551843837024997376"}, true, events.StatusPending, false},
		{"success", replySuccessForSeedCallback, providers.Order{Kind: events.KindPayin, MerchantOrderID: "1386503284355244033"}, true, events.StatusSucceeded, true},
		{"fail by orderNo only", strings.Replace(replySuccessForSeedCallback, `"SUCCESS",
"completionTime"`, `"FAIL",
"completionTime"`, 1), providers.Order{Kind: events.KindPayin, ProviderOrderID: "PAYIN8551790545658687488"}, true, events.StatusFailed, true},
		{"success without amount: status, no event", strings.Replace(replySuccessForSeedCallback, `"amount": "20000",`, ``, 1), providers.Order{Kind: events.KindPayin, MerchantOrderID: "1386503284355244033"}, true, events.StatusSucceeded, false},
		{"data null is not found", `{"msg":"SUCCESS","code":200,"data":null}`, providers.Order{Kind: events.KindPayin, MerchantOrderID: "nope"}, false, "", false},
		{"no data is not found", `{"msg":"SUCCESS","code":"200"}`, providers.Order{Kind: events.KindPayin, MerchantOrderID: "nope"}, false, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeCashy{reply: c.reply}
			a := startFake(t, f)
			res, err := cashypro.NewClient(nil).Query(context.Background(), a, c.order, true)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			if res.Found != c.wantFound || res.Status != c.want || (res.Event != nil) != c.wantEvent {
				t.Fatalf("got %+v", res)
			}
			if len(f.seen) != 1 || f.seen[0]["mchOrderNo"] != c.order.MerchantOrderID || f.seen[0]["orderNo"] != c.order.ProviderOrderID {
				t.Errorf("request fields %v", f.seen)
			}
			if res.Event != nil {
				if res.Event.Origin != events.OriginPoll || res.Event.Validate() != nil {
					t.Errorf("event %+v", res.Event)
				}
			}
		})
	}
}

// TestPollEventMatchesCallback: a poll that finds what a notification told
// yields the same event id, so the two collapse to one event. The amount is
// spelled differently ("20000" vs 20000.00) but equal.
func TestPollEventMatchesCallback(t *testing.T) {
	cb, err := cashypro.New().Parse(acct, signed(t, seedBody))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	a := startFake(t, &fakeCashy{reply: replySuccessForSeedCallback})
	before := time.Now().UTC()
	res, err := cashypro.NewClient(nil).Query(context.Background(), a, providers.Order{Kind: events.KindPayin, MerchantOrderID: cb.MerchantOrderID}, false)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	ev := res.Event
	if ev == nil {
		t.Fatal("no event")
	}
	if ev.ID() != cb.ID() {
		t.Errorf("poll id %s != callback id %s", ev.ID(), cb.ID())
	}
	if ev.Amount.Value != "20000" || cb.Amount.Value != "20000.00" || ev.Amount.Cmp(cb.Amount) != 0 || !ev.Amount.Equal(cb.Amount) {
		t.Errorf("amounts %v vs %v", ev.Amount, cb.Amount)
	}
	if !ev.OccurredAt.Equal(cb.OccurredAt) || ev.ProviderOrderID != cb.ProviderOrderID {
		t.Errorf("poll %+v vs callback %+v", ev, cb)
	}
	if ev.ReceivedAt.Before(before) || ev.ReceivedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("ReceivedAt %v", ev.ReceivedAt)
	}
}

func TestQueryErrors(t *testing.T) {
	cases := []struct {
		name   string
		fake   *fakeCashy
		check  func(t *testing.T, err error)
		acctFn func(*providers.Account)
	}{
		{"provider error envelope from the seed", &fakeCashy{reply: replyError}, func(t *testing.T, err error) {
			var ae *providers.APIError
			if !errors.As(err, &ae) || ae.Code != "500" || ae.Message != "Payin_Order_Error" || ae.HTTP != 200 || ae.Provider != "cashypro" || ae.Op != cashypro.OpPayinQuery || ae.Temporary {
				t.Errorf("err = %#v", err)
			}
			if errors.Is(err, providers.ErrNotFound) {
				t.Error("Payin_Order_Error taken as not found")
			}
		}, nil},
		{"http 502 with a gateway page", &fakeCashy{status: 502, reply: "<html>bad gateway</html>"}, wantAPIError(502, "http_502", "Bad Gateway", true), nil},
		{"http 500 with the provider's envelope", &fakeCashy{status: 500, reply: replyError}, wantAPIError(500, "500", "Payin_Order_Error", true), nil},
		{"http 400 with a string code", &fakeCashy{status: 400, reply: `{"code":"400","msg":"Param_Error"}`}, wantAPIError(400, "400", "Param_Error", false), nil},
		{"http 403 with a code and no msg", &fakeCashy{status: 403, reply: `{"code":403}`}, wantAPIError(403, "403", "Forbidden", false), nil},
		{"http 429 with an empty body", &fakeCashy{status: 429, reply: ``}, wantAPIError(429, "http_429", "Too Many Requests", true), nil},
		{"http 500 with duplicate codes", &fakeCashy{status: 500, reply: `{"code":200,"code":500}`}, wantAPIError(500, "http_500", "Internal Server Error", true), nil},
		{"http 500 with a nested code", &fakeCashy{status: 500, reply: `{"code":{"x":1},"msg":"m"}`}, wantAPIError(500, "http_500", "Internal Server Error", true), nil},
		{"reply over 1 MiB", &fakeCashy{reply: `{"code":200,"pad":"` + strings.Repeat("x", 1<<20) + `"}`}, wantAPIError(200, "too_large", "answer over 1048576 bytes", false), nil},
		{"not JSON", &fakeCashy{reply: "OK"}, wantIs(cashypro.ErrReply), nil},
		{"no code", &fakeCashy{reply: `{"msg":"SUCCESS"}`}, wantIs(cashypro.ErrReply), nil},
		{"duplicate keys", &fakeCashy{reply: `{"code":200,"code":500}`}, wantIs(cashypro.ErrReply), nil},
		{"reply about another order", &fakeCashy{reply: replyPaying}, wantIs(cashypro.ErrReply), nil},
		{"reply for another merchant", &fakeCashy{reply: strings.Replace(replySuccessForSeedCallback, `"merchantId": "1002001"`, `"merchantId": "9"`, 1)}, wantIs(cashypro.ErrReply), nil},
		{"unknown orderStatus", &fakeCashy{reply: strings.Replace(replySuccessForSeedCallback, `"SUCCESS",
"completionTime"`, `"REFUND",
"completionTime"`, 1)}, wantIs(cashypro.ErrReply), nil},
		{"data is a string", &fakeCashy{reply: `{"code":200,"data":"x"}`}, wantIs(cashypro.ErrReply), nil},
		{"unknown sign rule", &fakeCashy{reply: replySuccessForSeedCallback}, wantIs(cashypro.ErrSignRule), func(a *providers.Account) { *a = a.With("sign_rule", "hmac") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := startFake(t, c.fake)
			if c.acctFn != nil {
				c.acctFn(&a)
			}
			_, err := cashypro.NewClient(nil).Query(context.Background(), a, providers.Order{Kind: events.KindPayin, MerchantOrderID: "1386503284355244033"}, false)
			if err == nil {
				t.Fatal("no error")
			}
			c.check(t, err)
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

func wantAPIError(http int, code, msg string, temporary bool) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ae *providers.APIError
		if !errors.As(err, &ae) || ae.HTTP != http || ae.Code != code || ae.Message != msg || ae.Temporary != temporary ||
			ae.Provider != "cashypro" || ae.Op != cashypro.OpPayinQuery {
			t.Errorf("err = %#v, want http %d code %q message %q temporary %v", err, http, code, msg, temporary)
		}
	}
}

func wantIs(target error) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Errorf("err = %v, want %v", err, target)
		}
	}
}

// TestQueryEveryRule: the query request is signed with the account's rule
// (the fake checks the Sign header exactly, case included).
func TestQueryEveryRule(t *testing.T) {
	for _, rule := range allRules {
		t.Run(rule, func(t *testing.T) {
			f := &fakeCashy{reply: replySuccessForSeedCallback, rule: rule}
			a := startFake(t, f)
			a = a.With("sign_rule", rule)
			if _, err := cashypro.NewClient(nil).Query(context.Background(), a, providers.Order{Kind: events.KindPayin, MerchantOrderID: "1386503284355244033"}, false); err != nil {
				t.Fatalf("Query: %v", err)
			}
			if len(f.seen) != 1 {
				t.Errorf("%d requests", len(f.seen))
			}
		})
	}
}

func TestQueryRefusals(t *testing.T) {
	c := cashypro.NewClient(nil)
	a := acct
	a.BaseURL = "http://127.0.0.1:1" // never dialled
	if _, err := c.Query(context.Background(), a, providers.Order{Kind: events.KindPayout, MerchantOrderID: "x"}, false); !errors.Is(err, providers.ErrUnsupported) {
		t.Errorf("payout: %v", err)
	}
	if _, err := c.Query(context.Background(), a, providers.Order{Kind: events.KindAppeal, MerchantOrderID: "x"}, false); !errors.Is(err, providers.ErrUnsupported) {
		t.Errorf("appeal: %v", err)
	}
	if _, err := c.Query(context.Background(), a, providers.Order{Kind: events.KindPayin}, false); err == nil {
		t.Error("no ids accepted")
	}
	a.BaseURL = ""
	if _, err := c.Query(context.Background(), a, providers.Order{Kind: events.KindPayin, MerchantOrderID: "x"}, false); err == nil {
		t.Error("no base url accepted")
	}
}

func TestQueryCancelAndTimeout(t *testing.T) {
	order := providers.Order{Kind: events.KindPayin, MerchantOrderID: "1386503284355244033"}
	t.Run("context cancelled mid-request", func(t *testing.T) {
		a := startFake(t, &fakeCashy{reply: replySuccessForSeedCallback, delay: 5 * time.Second})
		querytest.Cancelled(t, cashypro.NewClient(nil), a, order, false)
	})
	t.Run("context deadline", func(t *testing.T) {
		a := startFake(t, &fakeCashy{reply: replySuccessForSeedCallback, delay: 5 * time.Second})
		querytest.Deadline(t, cashypro.NewClient(nil), a, order, false)
	})
	t.Run("client timeout", func(t *testing.T) {
		a := startFake(t, &fakeCashy{reply: replySuccessForSeedCallback, delay: 5 * time.Second})
		querytest.TransportTimeout(t, cashypro.NewClient(&http.Client{Timeout: 50 * time.Millisecond}), a, order)
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		a := acct
		a.BaseURL = srv.URL + "/?token=SECRETURL"
		srv.Close()
		_, err := cashypro.NewClient(nil).Query(context.Background(), a, order, false)
		var ae *providers.APIError
		if !errors.As(err, &ae) || ae.Code != "transport" || ae.Message != "request failed" || !ae.Temporary || ae.Provider != "cashypro" || ae.Op != cashypro.OpPayinQuery {
			t.Errorf("err = %#v, want a temporary transport APIError", err)
		}
		var ne net.Error
		if errors.As(err, &ne) || strings.Contains(err.Error(), "SECRETURL") || strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("err %q wraps the net error or names the URL", err)
		}
	})
}
