package jpglo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/querytest"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

// fakeJpglo answers like jpglo's API, with the seed's own replies, and
// checks every request's signature with the test's own MD5.
type fakeJpglo struct {
	t *testing.T

	mu   sync.Mutex
	seen []string // request bodies or query strings, in order
}

func (f *fakeJpglo) record(s string) {
	f.mu.Lock()
	f.seen = append(f.seen, s)
	f.mu.Unlock()
}

func (f *fakeJpglo) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		return ""
	}
	return f.seen[len(f.seen)-1]
}

// seed reply "订单不存在"
const reply5001 = `{"status": 5001, "msg": "订单不存在", "timestamp": "2022-04-08 16:33:16"}`

func (f *fakeJpglo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/order/query/"):
		f.query(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/api/order/inquiry/":
		f.appeal(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/api/order/replenish/":
		f.replenish(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeJpglo) badSign(w http.ResponseWriter) {
	// jpglo has no published code for a bad signature; 1 is "参数错误".
	io.WriteString(w, `{"status": 1, "msg": "参数错误", "timestamp": "2022-04-08 16:33:16"}`)
}

func (f *fakeJpglo) query(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.record(r.URL.RawQuery)
	no := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/order/query/"), "/")
	if len(q) != 3 || q.Get("mch_id") != "1" || q.Get("timestamp") == "" ||
		q.Get("sign") != md5Upper("mch_id=1&timestamp="+q.Get("timestamp")+"&key="+seedKey) {
		f.badSign(w)
		return
	}
	order := func(status, payType, real string) string {
		return `{
    "status": 0,
    "msg": "OK",
    "timestamp": "2022-04-08 16:15:39",
    "data": {
        "mch_id": 1,
        "mch_order_no": "` + no + `",
        "order_no": "2202171238501159",
        "status": "` + status + `",
        "pay_type": ` + payType + `,
        "sub_pay_type": null,
        "apply_amount": 10000000,
        "real_amount": ` + real + `,
        "remark": null,
        "user_ext": "{\"user_id\":\"123456\"}"
    }
}`
	}
	switch no {
	case "111123456789":
		io.WriteString(w, order("success", `"pix"`, "10000000"))
	case "SHORT-1":
		io.WriteString(w, order("success", `"pix"`, "9999900"))
	case "NEW-1":
		io.WriteString(w, order("new", "null", "null"))
	case "COMMIT-1":
		io.WriteString(w, order("commit", `"pix"`, "null"))
	case "FAIL-1":
		io.WriteString(w, order("fail", `"pix"`, "null"))
	case "ODD-1":
		io.WriteString(w, order("refunded", `"pix"`, "null"))
	case "OTHER-1":
		io.WriteString(w, strings.Replace(order("success", `"pix"`, "1"), `"mch_order_no": "OTHER-1"`, `"mch_order_no": "OTHER-2"`, 1))
	case "MISSING":
		io.WriteString(w, reply5001)
	case "BLOCKED":
		io.WriteString(w, `{"status": 2012, "msg": "商户订单ip不在白名单中", "timestamp": "2022-02-17 12:41:25"}`)
	case "INTERNAL":
		io.WriteString(w, `{"status": -1, "msg": "内部错误,请联系管理员", "timestamp": "2022-02-17 12:41:25"}`)
	case "GATEWAY":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html>502 Bad Gateway</html>")
	case "HUGE":
		io.WriteString(w, `{"status":0,"msg":"OK","data":{"remark":"`+strings.Repeat("x", 2<<20)+`"}}`)
	case "DUPKEY":
		io.WriteString(w, `{"status":0,"status":5001,"msg":"OK"}`)
	case "SLOW":
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	default:
		io.WriteString(w, reply5001)
	}
}

// decodeBody reads a JSON request body keeping integers exact.
func decodeBody(r *http.Request) (map[string]any, string) {
	b, _ := io.ReadAll(r.Body)
	m := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, string(b)
	}
	return m, string(b)
}

func (f *fakeJpglo) appeal(w http.ResponseWriter, r *http.Request) {
	m, raw := decodeBody(r)
	f.record(raw)
	if r.Header.Get("Content-Type") != "application/json" || m == nil {
		f.badSign(w)
		return
	}
	receipt := m["receipt"].([]any)
	quoted := make([]string, len(receipt))
	for i, u := range receipt {
		quoted[i] = "'" + u.(string) + "'"
	}
	plain := fmt.Sprintf("inquiry_amount=%s&mch_id=%s&mch_inquiry_no=%s&notify_url=%s&order_no=%s&receipt=[%s]&timestamp=%s&user_id=%s&user_real_name=%s",
		m["inquiry_amount"], m["mch_id"], m["mch_inquiry_no"], m["notify_url"], m["order_no"], strings.Join(quoted, ", "), m["timestamp"], m["user_id"], m["user_real_name"])
	if rm, ok := m["user_remark"]; ok {
		plain += fmt.Sprintf("&user_remark=%s", rm)
	}
	if m["sign"] != md5Upper(plain+"&key="+seedKey) {
		f.badSign(w)
		return
	}
	switch m["mch_inquiry_no"] {
	case "DUP":
		io.WriteString(w, `{"status": 5100, "msg": "申诉订单已存在", "timestamp": "2022-05-04 11:27:16"}`)
		return
	}
	if m["order_no"] == "NOPE" {
		io.WriteString(w, `{"status": 5001, "msg": "订单不存在", "timestamp": "2022-05-04 12:15:24"}`)
		return
	}
	io.WriteString(w, `{
    "status": 0,
    "msg": "OK",
    "timestamp": "2022-05-04 11:33:42",
    "data": {
        "mch_order_no": "1234567890",
        "order_no": "2203240014034824",
        "mch_inquiry_no": "111234567890",
        "inquiry_order_no": "2205041133420031",
        "status": "new",
        "inquiry_amount": 1000000,
        "user_remark": "I've paid!",
        "reason": null
    }
}`)
}

func (f *fakeJpglo) replenish(w http.ResponseWriter, r *http.Request) {
	m, raw := decodeBody(r)
	f.record(raw)
	if m == nil {
		f.badSign(w)
		return
	}
	plain := fmt.Sprintf("apply_amount=%s&mch_id=%s&mch_order_no=%s", m["apply_amount"], m["mch_id"], m["mch_order_no"])
	if v, ok := m["pay_type"]; ok {
		plain += fmt.Sprintf("&pay_type=%s", v)
	}
	if v, ok := m["real_name"]; ok {
		plain += fmt.Sprintf("&real_name=%s", v)
	}
	plain += fmt.Sprintf("&timestamp=%s&user_id=%s", m["timestamp"], m["user_id"])
	if m["sign"] != md5Upper(plain+"&key="+seedKey) {
		f.badSign(w)
		return
	}
	if m["mch_order_no"] == "BLOCKED" {
		io.WriteString(w, `{
    "status": 2012,
    "msg": "商户订单ip不在白名单中",
    "timestamp": "2022-02-17 12:41:25"
}`)
		return
	}
	// The seed's reply, with the comma it forgot after "sub_pay_type": null.
	io.WriteString(w, `{
    "status": 0,
    "msg": "OK",
    "timestamp": "2022-05-04 09:06:40",
    "data": {
        "order_no": "2205040906401871",
        "mch_order_no": "111123456789",
        "status": "new",
        "pay_type": "pix",
        "sub_pay_type": null,
        "apply_amount": 10000000,
        "real_amount": null,
        "remark": null
    }
}`)
}

func startFake(t *testing.T) (*fakeJpglo, providers.Account) {
	t.Helper()
	f := &fakeJpglo{t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	a := acct
	a.BaseURL = srv.URL + "/"
	return f, a
}

func TestQuery(t *testing.T) {
	_, a := startFake(t)
	c := jpglo.NewClient(nil)
	tests := []struct {
		name      string
		order     string
		found     bool
		status    events.Status
		event     bool
		amount    string
		mismatch  bool
		errCode   string
		temporary bool
	}{
		{name: "success", order: "111123456789", found: true, status: events.StatusSucceeded, event: true, amount: "100000.00"},
		{name: "success paid less", order: "SHORT-1", found: true, status: events.StatusSucceeded, event: true, amount: "99999.00", mismatch: true},
		{name: "new", order: "NEW-1", found: true, status: events.StatusPending},
		{name: "commit", order: "COMMIT-1", found: true, status: events.StatusPending},
		{name: "fail", order: "FAIL-1", found: true, status: events.StatusFailed, event: true, amount: "100000.00"},
		{name: "not found 5001", order: "MISSING"},
		{name: "ip not allowlisted 2012", order: "BLOCKED", errCode: "2012"},
		{name: "internal -1", order: "INTERNAL", errCode: "-1", temporary: true},
		{name: "http 502 html", order: "GATEWAY", errCode: "http_502", temporary: true},
		{name: "unknown status", order: "ODD-1", errCode: "bad_answer"},
		{name: "answer about another order", order: "OTHER-1", errCode: "bad_answer"},
		{name: "answer over 1 MiB", order: "HUGE", errCode: "too_large"},
		{name: "duplicate keys in answer", order: "DUPKEY", errCode: "bad_answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Query(context.Background(), a, providers.Order{Kind: events.KindPayin, MerchantOrderID: tt.order}, true)
			if tt.errCode != "" {
				var ae *providers.APIError
				if !errors.As(err, &ae) {
					t.Fatalf("err = %v, want *providers.APIError", err)
				}
				if ae.Code != tt.errCode || ae.Temporary != tt.temporary || ae.Provider != "jpglo" || ae.Op != "query" {
					t.Errorf("APIError = %+v, want code %s temporary %v", ae, tt.errCode, tt.temporary)
				}
				if tt.errCode == "2012" && ae.Message != "商户订单ip不在白名单中" {
					t.Errorf("message %q lost", ae.Message)
				}
				if strings.Contains(err.Error(), "sign=") {
					t.Errorf("error leaks the signed URL: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			if res.Found != tt.found || res.Status != tt.status || (res.Event != nil) != tt.event {
				t.Fatalf("got found=%v status=%s event=%v, want %v %s %v", res.Found, res.Status, res.Event != nil, tt.found, tt.status, tt.event)
			}
			if !tt.event {
				return
			}
			ev := res.Event
			if ev.Origin != events.OriginPoll || ev.Status != tt.status || ev.MerchantOrderID != tt.order ||
				ev.ProviderOrderID != "2202171238501159" || ev.Amount != money(tt.amount) ||
				ev.RequestedAmount == nil || *ev.RequestedAmount != money("100000.00") || ev.AmountMismatch != tt.mismatch {
				t.Errorf("event = %+v", ev)
			}
			if ev.ProviderFields["user_ext"] != `{"user_id":"123456"}` {
				t.Errorf("provider fields = %v", ev.ProviderFields)
			}
			if err := ev.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestQueryEventMatchesCallback: a poll that finds what the seed's payment
// callback said yields the very same event id, so the two collapse.
func TestQueryEventMatchesCallback(t *testing.T) {
	_, a := startFake(t)
	res, err := jpglo.NewClient(nil).Query(context.Background(), a, providers.Order{Kind: events.KindPayin, MerchantOrderID: "111123456789"}, false)
	if err != nil || res.Event == nil {
		t.Fatalf("Query: %v, %+v", err, res)
	}
	cb, err := jpglo.New().Parse(a, req(events.KindPayin, []byte(seedPayment)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Event.ID() != cb.ID() {
		t.Errorf("poll id %s != callback id %s", res.Event.ID(), cb.ID())
	}
	if res.Event.Amount != cb.Amount || *res.Event.RequestedAmount != *cb.RequestedAmount || res.Event.Subject() != cb.Subject() {
		t.Errorf("poll %+v\ncallback %+v", res.Event, cb)
	}
}

func TestQueryRequest(t *testing.T) {
	f, a := startFake(t)
	c := jpglo.NewClient(nil)
	before := time.Now().Unix()
	if _, err := c.Query(context.Background(), a, providers.Order{Kind: events.KindPayin, MerchantOrderID: "NEW-1"}, false); err != nil {
		t.Fatal(err)
	}
	after := time.Now().Unix()
	q, err := url.ParseQuery(f.last())
	if err != nil {
		t.Fatal(err)
	}
	ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
	if err != nil || ts < before || ts > after || q.Get("mch_id") != "1" {
		t.Errorf("query string %q", f.last())
	}

	for name, o := range map[string]providers.Order{
		"payout":   {Kind: events.KindPayout, MerchantOrderID: "X"},
		"appeal":   {Kind: events.KindAppeal, MerchantOrderID: "X"},
		"no order": {Kind: events.KindPayin},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Query(context.Background(), a, o, false); err == nil {
				t.Error("accepted")
			}
		})
	}
	t.Run("unsupported kind wraps ErrUnsupported", func(t *testing.T) {
		_, err := c.Query(context.Background(), a, providers.Order{Kind: events.KindPayout, MerchantOrderID: "X"}, false)
		if !errors.Is(err, providers.ErrUnsupported) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("bad base url", func(t *testing.T) {
		b := a
		b.BaseURL = "ftp://x"
		if _, err := c.Query(context.Background(), b, providers.Order{Kind: events.KindPayin, MerchantOrderID: "X"}, false); err == nil {
			t.Error("accepted")
		}
	})
}

func TestQueryCancelAndTimeout(t *testing.T) {
	_, a := startFake(t)
	order := providers.Order{Kind: events.KindPayin, MerchantOrderID: "SLOW"}

	t.Run("context cancelled", func(t *testing.T) {
		querytest.Cancelled(t, jpglo.NewClient(nil), a, order, false)
	})
	t.Run("context deadline", func(t *testing.T) {
		querytest.Deadline(t, jpglo.NewClient(nil), a, order, false)
	})
	t.Run("client timeout", func(t *testing.T) {
		querytest.TransportTimeout(t, jpglo.NewClient(&http.Client{Timeout: 50 * time.Millisecond}), a, order)
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		b := a
		b.BaseURL = srv.URL
		srv.Close()
		_, err := jpglo.NewClient(nil).Query(context.Background(), b, order, false)
		var ae *providers.APIError
		if !errors.As(err, &ae) || !ae.Temporary {
			t.Errorf("err = %v, want a temporary APIError", err)
		}
	})
}

// seedAppealRequest is the seed's appeal example as an AppealRequest.
func seedAppealRequest() jpglo.AppealRequest {
	return jpglo.AppealRequest{
		OrderNo: "2203240014034824", MchInquiryNo: "111234567890", InquiryAmount: 1000000,
		UserID: "123456", UserRealName: "Ida Bagus Sudjana",
		NotifyURL: "http://test_inquiry.com/v3/trade/appeal_notify/jp/",
		Receipt:   []string{"https://imgur.com/gallery/VWjRf"}, UserRemark: "I've paid!",
		Timestamp: time.Unix(1657004710, 0),
	}
}

func TestSubmitAppeal(t *testing.T) {
	f, a := startFake(t)
	c := jpglo.NewClient(nil)

	t.Run("seed example", func(t *testing.T) {
		res, err := c.SubmitAppeal(context.Background(), a, seedAppealRequest())
		if err != nil {
			t.Fatal(err)
		}
		want := jpglo.AppealResult{
			MerchantOrderID: "1234567890", OrderNo: "2203240014034824", MchInquiryNo: "111234567890",
			InquiryOrderNo: "2205041133420031", Status: "new", InquiryAmount: money("10000.00"),
		}
		if res != want {
			t.Errorf("got %+v\nwant %+v", res, want)
		}
		// The body is the seed's request, sign included.
		var got map[string]any
		if err := json.Unmarshal([]byte(f.last()), &got); err != nil {
			t.Fatal(err)
		}
		if got["sign"] != "0AF3ED4FEF59843AE7027F5D86869927" {
			t.Errorf("sign = %v, want the seed's", got["sign"])
		}
		if len(got) != 11 {
			t.Errorf("body has %d fields, want the seed's 11: %v", len(got), got)
		}
	})
	errCases := []struct {
		name     string
		mutate   func(*jpglo.AppealRequest)
		code     string
		msg      string
		notFound bool
	}{
		{"appeal exists 5100", func(r *jpglo.AppealRequest) { r.MchInquiryNo = "DUP" }, "5100", "申诉订单已存在", false},
		{"order not found 5001", func(r *jpglo.AppealRequest) { r.OrderNo = "NOPE" }, "5001", "订单不存在", true},
	}
	for _, tt := range errCases {
		t.Run(tt.name, func(t *testing.T) {
			r := seedAppealRequest()
			tt.mutate(&r)
			_, err := c.SubmitAppeal(context.Background(), a, r)
			var ae *providers.APIError
			if !errors.As(err, &ae) || ae.Code != tt.code || ae.Message != tt.msg || ae.Op != "appeal" || ae.Temporary {
				t.Fatalf("err = %v, want APIError %s %s", err, tt.code, tt.msg)
			}
			if errors.Is(err, providers.ErrNotFound) != tt.notFound {
				t.Errorf("errors.Is(ErrNotFound) = %v, want %v", !tt.notFound, tt.notFound)
			}
		})
	}
	t.Run("optional fields omitted and still verified", func(t *testing.T) {
		r := seedAppealRequest()
		r.UserRemark = ""
		r.Receipt = []string{"https://a.example/1.png", "https://a.example/2.png"}
		r.Timestamp = time.Time{}
		if _, err := c.SubmitAppeal(context.Background(), a, r); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(f.last(), "user_remark") {
			t.Errorf("empty user_remark sent: %s", f.last())
		}
	})
	t.Run("missing required", func(t *testing.T) {
		r := seedAppealRequest()
		r.Receipt = nil
		if _, err := c.SubmitAppeal(context.Background(), a, r); err == nil {
			t.Error("accepted")
		}
	})
	t.Run("non-integer merchant id", func(t *testing.T) {
		b := a
		b = b.With("merchant_id", "m-1")
		if _, err := c.SubmitAppeal(context.Background(), b, seedAppealRequest()); err == nil {
			t.Error("accepted")
		}
	})
}

func TestReplenish(t *testing.T) {
	f, a := startFake(t)
	c := jpglo.NewClient(nil)
	seedReq := jpglo.ReplenishRequest{
		MerchantOrderID: "111123456789", ApplyAmount: 10000000, UserID: "123456",
		PayType: "pix", RealName: "Thomas", Timestamp: time.Unix(1657003362, 0),
	}
	t.Run("seed example", func(t *testing.T) {
		res, err := c.Replenish(context.Background(), a, seedReq)
		if err != nil {
			t.Fatal(err)
		}
		want := jpglo.ReplenishResult{MerchantOrderID: "111123456789", OrderNo: "2205040906401871", Status: "new", ApplyAmount: money("100000.00")}
		if res != want {
			t.Errorf("got %+v, want %+v", res, want)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(f.last()), &got); err != nil {
			t.Fatal(err)
		}
		if got["sign"] != "B9BBBB222845C00E30AD38DEB6393AC5" {
			t.Errorf("sign = %v, want the seed's", got["sign"])
		}
	})
	t.Run("ip not allowlisted 2012", func(t *testing.T) {
		r := seedReq
		r.MerchantOrderID = "BLOCKED"
		_, err := c.Replenish(context.Background(), a, r)
		var ae *providers.APIError
		if !errors.As(err, &ae) || ae.Code != "2012" || ae.Message != "商户订单ip不在白名单中" || ae.Op != "replenish" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong key refused by the fake", func(t *testing.T) {
		b := a
		b = b.With("secret", "other")
		_, err := c.Replenish(context.Background(), b, seedReq)
		var ae *providers.APIError
		if !errors.As(err, &ae) || ae.Code != "1" {
			t.Fatalf("err = %v, want jpglo's parameter error", err)
		}
	})
	t.Run("zero amount", func(t *testing.T) {
		r := seedReq
		r.ApplyAmount = 0
		if _, err := c.Replenish(context.Background(), a, r); err == nil {
			t.Error("accepted")
		}
	})
}
