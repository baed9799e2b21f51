package mrnpay_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/querytest"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

// fakeMrnpay answers like mrnpay's query endpoints, checking each request's
// signature with the test's own MD5 and counting the callbacks it would
// resend (callback=true on a paid order).
type fakeMrnpay struct {
	mu          sync.Mutex
	queries     []string // "path?rawquery"
	resent      int
	withAmounts bool // reply with amount/originAmount (not in the seed)
}

func (f *fakeMrnpay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.queries = append(f.queries, r.URL.Path+"?"+r.URL.RawQuery)
	withAmounts := f.withAmounts
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if r.Method != http.MethodGet || (r.URL.Path != "/api/Payments/Query" && r.URL.Path != "/api/Payouts/Query") {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	mrn := q.Get("mrn")
	if q.Get("appKey") != "app-1" {
		io.WriteString(w, `{"error":"object_not_found","errorMessage":"无效的商户账户"}`)
		return
	}
	if q.Get("sign") != md5Lower("appKey=app-1&mrn="+mrn+"&key="+key) {
		io.WriteString(w, `{"error":"sign_error","errorMessage":"签名错误"}`)
		return
	}
	if cb := q.Get("callback"); cb != "true" && cb != "false" {
		io.WriteString(w, `{"error":"invalid_data","errorMessage":"无效的请求数据"}`)
		return
	}
	status := func(s string) {
		if s == "1" && q.Get("callback") == "true" {
			f.mu.Lock()
			f.resent++
			f.mu.Unlock()
		}
		extra := ""
		if withAmounts {
			extra = `,"amount":"99.50","originAmount":100.00,"channel":2`
			if r.URL.Path == "/api/Payouts/Query" {
				extra = `,"amount":500`
			}
		}
		io.WriteString(w, `{"error":"success","result":{"Mrn":"`+mrn+`","status":`+s+extra+`}}`)
	}
	switch mrn {
	case "M-1001", "P-2001":
		status("1")
	case "M-WAIT":
		status("0")
	case "M-FAIL":
		status("2")
	case "M-ODD":
		status("7")
	case "M-GONE":
		io.WriteString(w, `{"error":"success","result":null}`)
	case "M-OTHER":
		io.WriteString(w, `{"error":"success","result":{"Mrn":"M-ELSE","status":1}}`)
	case "M-500":
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "Internal Server Error")
	case "M-404":
		w.WriteHeader(http.StatusNotFound)
	case "M-HTML":
		io.WriteString(w, "<html>maintenance</html>")
	case "M-HUGE":
		io.WriteString(w, `{"error":"success","result":{"Mrn":"`+strings.Repeat("x", 2<<20)+`","status":1}}`)
	case "M-SLOW":
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	default:
		io.WriteString(w, `{"error":"success","result":null}`)
	}
}

func (f *fakeMrnpay) resentCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.resent
}

func (f *fakeMrnpay) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[len(f.queries)-1]
}

func startFake(t *testing.T) (*fakeMrnpay, providers.Account) {
	t.Helper()
	f := &fakeMrnpay{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	a := acct
	a.BaseURL = srv.URL
	return f, a
}

func TestQuery(t *testing.T) {
	f, a := startFake(t)
	c := mrnpay.NewClient(nil)
	tests := []struct {
		name      string
		kind      events.Kind
		mrn       string
		found     bool
		status    events.Status
		errCode   string
		temporary bool
	}{
		{name: "payin paid", kind: events.KindPayin, mrn: "M-1001", found: true, status: events.StatusSucceeded},
		{name: "payout paid", kind: events.KindPayout, mrn: "P-2001", found: true, status: events.StatusSucceeded},
		{name: "waiting", kind: events.KindPayin, mrn: "M-WAIT", found: true, status: events.StatusPending},
		{name: "failed", kind: events.KindPayout, mrn: "M-FAIL", found: true, status: events.StatusFailed},
		{name: "no result is not found", kind: events.KindPayin, mrn: "M-GONE"},
		{name: "unknown status", kind: events.KindPayin, mrn: "M-ODD", errCode: "bad_answer"},
		{name: "answer about another order", kind: events.KindPayin, mrn: "M-OTHER", errCode: "bad_answer"},
		{name: "http 500", kind: events.KindPayin, mrn: "M-500", errCode: "http_500", temporary: true},
		{name: "http 404", kind: events.KindPayin, mrn: "M-404", errCode: "http_404"},
		{name: "not JSON", kind: events.KindPayin, mrn: "M-HTML", errCode: "bad_answer"},
		{name: "answer over 1 MiB", kind: events.KindPayin, mrn: "M-HUGE", errCode: "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Query(context.Background(), a, providers.Order{Kind: tt.kind, MerchantOrderID: tt.mrn}, false)
			if tt.errCode != "" {
				var ae *providers.APIError
				if !errors.As(err, &ae) || ae.Code != tt.errCode || ae.Temporary != tt.temporary || ae.Provider != "mrnpay" {
					t.Fatalf("err = %v, want APIError %s temporary=%v", err, tt.errCode, tt.temporary)
				}
				if strings.Contains(err.Error(), "sign=") {
					t.Errorf("error leaks the signed URL: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Found != tt.found || res.Status != tt.status {
				t.Errorf("got %+v, want found=%v status=%s", res, tt.found, tt.status)
			}
			if res.Event != nil {
				t.Errorf("the seed's reply has no amount, yet an event was synthesized: %+v", res.Event)
			}
		})
	}
	if n := f.resentCount(); n != 0 {
		t.Errorf("callback=false made the fake resend %d callbacks", n)
	}
}

func TestQueryErrorStrings(t *testing.T) {
	_, a := startFake(t)
	c := mrnpay.NewClient(nil)
	tests := []struct {
		name string
		acct func(providers.Account) providers.Account
		code string
		msg  string
	}{
		{"sign_error", func(a providers.Account) providers.Account { return a.With("secret", "other") }, "sign_error", "签名错误"},
		{"object_not_found", func(a providers.Account) providers.Account { return a.With("merchant_id", "app-9") }, "object_not_found", "无效的商户账户"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Query(context.Background(), tt.acct(a), providers.Order{Kind: events.KindPayin, MerchantOrderID: "M-1001"}, false)
			var ae *providers.APIError
			if !errors.As(err, &ae) || ae.Code != tt.code || ae.Message != tt.msg || ae.Temporary || ae.Op != "query" {
				t.Fatalf("err = %v, want APIError %s %s", err, tt.code, tt.msg)
			}
		})
	}
}

func TestQueryRetrigger(t *testing.T) {
	f, a := startFake(t)
	c := mrnpay.NewClient(nil)
	res, err := c.Query(context.Background(), a, providers.Order{Kind: events.KindPayin, MerchantOrderID: "M-1001"}, true)
	if err != nil || res.Status != events.StatusSucceeded {
		t.Fatalf("Query: %+v %v", res, err)
	}
	if !strings.HasPrefix(f.last(), "/api/Payments/Query?") || !strings.Contains(f.last(), "callback=true") {
		t.Errorf("request %q", f.last())
	}
	if n := f.resentCount(); n != 1 {
		t.Errorf("resent = %d, want 1", n)
	}
	if _, err := c.Query(context.Background(), a, providers.Order{Kind: events.KindPayout, MerchantOrderID: "P-2001"}, false); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(f.last(), "/api/Payouts/Query?") || !strings.Contains(f.last(), "callback=false") {
		t.Errorf("request %q", f.last())
	}
}

// TestQueryEventMatchesCallback: when a reply does carry amounts, the
// synthesized event has the callback's id, amounts and subject.
func TestQueryEventMatchesCallback(t *testing.T) {
	f, a := startFake(t)
	f.mu.Lock()
	f.withAmounts = true
	f.mu.Unlock()
	c := mrnpay.NewClient(nil)
	for _, tt := range []struct {
		kind events.Kind
		mrn  string
		body string
	}{
		{events.KindPayin, "M-1001", payinBody},
		{events.KindPayout, "P-2001", payoutBody},
	} {
		t.Run(string(tt.kind), func(t *testing.T) {
			res, err := c.Query(context.Background(), a, providers.Order{Kind: tt.kind, MerchantOrderID: tt.mrn}, false)
			if err != nil || res.Event == nil {
				t.Fatalf("Query: %+v %v", res, err)
			}
			cb, err := mrnpay.New().Parse(a, req(tt.kind, tt.body))
			if err != nil {
				t.Fatal(err)
			}
			ev := res.Event
			if ev.ID() != cb.ID() || ev.Subject() != cb.Subject() {
				t.Errorf("poll id %s != callback id %s", ev.ID(), cb.ID())
			}
			if ev.Origin != events.OriginPoll || !ev.Amount.Equal(cb.Amount) || ev.AmountMismatch != cb.AmountMismatch {
				t.Errorf("poll %+v\ncallback %+v", ev, cb)
			}
			if (ev.RequestedAmount == nil) != (cb.RequestedAmount == nil) || (ev.RequestedAmount != nil && !ev.RequestedAmount.Equal(*cb.RequestedAmount)) {
				t.Errorf("requested: poll %v, callback %v", ev.RequestedAmount, cb.RequestedAmount)
			}
			if err := ev.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestQueryArguments(t *testing.T) {
	_, a := startFake(t)
	c := mrnpay.NewClient(nil)
	tests := []struct {
		name        string
		acct        providers.Account
		order       providers.Order
		unsupported bool
	}{
		{"appeal kind", a, providers.Order{Kind: events.KindAppeal, MerchantOrderID: "M"}, true},
		{"no mrn", a, providers.Order{Kind: events.KindPayin}, false},
		{"no secret", providers.Account{ID: "x", Keys: providers.Keys{"merchant_id": "app-1"}, BaseURL: a.BaseURL}, providers.Order{Kind: events.KindPayin, MerchantOrderID: "M"}, false},
		{"no base url", providers.Account{ID: "x", Keys: providers.Keys{"merchant_id": "app-1", "secret": key}}, providers.Order{Kind: events.KindPayin, MerchantOrderID: "M"}, false},
		{"bad base url", providers.Account{ID: "x", Keys: providers.Keys{"merchant_id": "app-1", "secret": key}, BaseURL: "mrnpay.example"}, providers.Order{Kind: events.KindPayin, MerchantOrderID: "M"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Query(context.Background(), tt.acct, tt.order, false)
			if err == nil {
				t.Fatal("accepted")
			}
			if errors.Is(err, providers.ErrUnsupported) != tt.unsupported {
				t.Errorf("err = %v, ErrUnsupported want %v", err, tt.unsupported)
			}
		})
	}
}

func TestQueryCancelAndTimeout(t *testing.T) {
	_, a := startFake(t)
	order := providers.Order{Kind: events.KindPayin, MerchantOrderID: "M-SLOW"}
	t.Run("context cancelled", func(t *testing.T) {
		querytest.Cancelled(t, mrnpay.NewClient(nil), a, order, true)
	})
	t.Run("context deadline", func(t *testing.T) {
		querytest.Deadline(t, mrnpay.NewClient(nil), a, order, false)
	})
	t.Run("client timeout", func(t *testing.T) {
		querytest.TransportTimeout(t, mrnpay.NewClient(&http.Client{Timeout: 50 * time.Millisecond}), a, order)
	})
}

// TestQueryReplyIsStrict: the reply is read with strictjson. A repeated
// member (at any depth, or one whose name differs only in case, since
// names match ignoring case) is refused rather than resolved to its last
// value, which is what encoding/json did: {"error":"sign_error",
// "error":"success"} read as success.
func TestQueryReplyIsStrict(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		code   string        // APIError code; "" for a result
		want   events.Status // when code is ""
	}{
		{name: "duplicate error", body: `{"error":"sign_error","error":"success","result":{"Mrn":"M-1","status":1}}`, code: "bad_answer"},
		{name: "duplicate status", body: `{"error":"success","result":{"Mrn":"M-1","status":2,"status":1}}`, code: "bad_answer"},
		{name: "duplicate deeper", body: `{"error":"success","result":{"Mrn":"M-1","status":1,"x":{"a":1,"a":2}}}`, code: "bad_answer"},
		{name: "duplicate result", body: `{"error":"success","result":null,"result":{"Mrn":"M-1","status":1}}`, code: "bad_answer"},
		{name: "names differing only in case", body: `{"error":"success","Error":"sign_error","result":{"Mrn":"M-1","status":1}}`, code: "bad_answer"},
		{name: "Mrn and mrn", body: `{"error":"success","result":{"Mrn":"M-1","mrn":"M-2","status":1}}`, code: "bad_answer"},
		{name: "trailing data", body: `{"error":"success","result":{"Mrn":"M-1","status":1}}{}`, code: "bad_answer"},
		{name: "error not a string", body: `{"error":0,"result":{"Mrn":"M-1","status":1}}`, code: "bad_answer"},
		{name: "status not a number", body: `{"error":"success","result":{"Mrn":"M-1","status":true}}`, code: "bad_answer"},
		{name: "result an array", body: `{"error":"success","result":[1]}`, code: "bad_answer"},
		{name: "amount an object", body: `{"error":"success","result":{"Mrn":"M-1","status":1,"amount":{"v":1}}}`, code: "bad_answer"},
		{name: "duplicate amount", body: `{"error":"success","result":{"Mrn":"M-1","status":1,"amount":1,"amount":1000}}`, code: "bad_answer"},
		{name: "http 500 with duplicate error keeps the status code", status: 500, body: `{"error":"invalid_data","error":"x"}`, code: "http_500"},
		{name: "http 500 with mrnpay's error", status: 500, body: `{"error":"invalid_data","errorMessage":"无效的请求数据"}`, code: "invalid_data"},
		{name: "names in another case", body: `{"ERROR":"success","Result":{"mrn":"M-1","STATUS":1}}`, want: events.StatusSucceeded},
		{name: "status quoted", body: `{"error":"success","result":{"Mrn":"M-1","status":"2"}}`, want: events.StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			a := acct
			a.BaseURL = srv.URL
			res, err := mrnpay.NewClient(nil).Query(context.Background(), a, providers.Order{Kind: events.KindPayin, MerchantOrderID: "M-1"}, false)
			if tt.code == "" {
				if err != nil || !res.Found || res.Status != tt.want {
					t.Fatalf("got %+v %v, want %s", res, err, tt.want)
				}
				return
			}
			var ae *providers.APIError
			if !errors.As(err, &ae) || ae.Code != tt.code || ae.Provider != "mrnpay" {
				t.Fatalf("got %+v %v, want APIError %s", res, err, tt.code)
			}
		})
	}
}
