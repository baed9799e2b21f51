package providersim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

// TestQueriesWithPayhookClients: payhook's own query clients, pointed at the
// simulator by BaseURL, get answers they accept, and a terminal answer
// yields the same event id as the callback.
func TestQueriesWithPayhookClients(t *testing.T) {
	queriers := map[string]providers.Querier{
		jpglo.Name:    jpglo.NewClient(nil),
		cashypro.Name: cashypro.NewClient(nil),
		mrnpay.Name:   mrnpay.NewClient(nil),
	}
	cases := []struct {
		name       string
		spec       OrderSpec
		wantStatus events.Status
		wantEvent  bool // the answer carries an event (jpglo, cashypro terminal)
	}{
		{"jpglo succeeded", OrderSpec{Provider: "jpglo", Account: "glo-in", Amount: "100.00"}, events.StatusSucceeded, true},
		{"jpglo failed", OrderSpec{Provider: "jpglo", Account: "glo-in", Outcome: Failed}, events.StatusFailed, true},
		{"jpglo pending", OrderSpec{Provider: "jpglo", Account: "glo-in", Outcome: Pending}, events.StatusPending, false},
		{"cashypro succeeded", OrderSpec{Provider: "cashypro", Account: "cashy-id", Amount: "20000.00"}, events.StatusSucceeded, true},
		{"cashypro failed", OrderSpec{Provider: "cashypro", Account: "cashy-id", Outcome: Failed}, events.StatusFailed, true},
		{"cashypro pending", OrderSpec{Provider: "cashypro", Account: "cashy-id", Outcome: Pending}, events.StatusPending, false},
		{"mrnpay payin succeeded", OrderSpec{Provider: "mrnpay", Account: "mrn-cn"}, events.StatusSucceeded, false},
		{"mrnpay payin failed", OrderSpec{Provider: "mrnpay", Account: "mrn-cn", Outcome: Failed}, events.StatusFailed, false},
		{"mrnpay payout pending", OrderSpec{Provider: "mrnpay", Account: "mrn-cn", Kind: events.KindPayout, Outcome: Pending}, events.StatusPending, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := newIngress(t, allAccounts...)
			sim, _, accts := newSim(t, in, Config{CallbackFailures: true})
			ctx := context.Background()
			o, err := sim.CreateOrder(ctx, c.spec)
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "order completes", func() bool { g, _ := sim.Order(o.ID); return g.Status == o.Outcome })
			res, err := queriers[c.spec.Provider].Query(ctx, accts[c.spec.Account],
				providers.Order{Kind: o.Kind, MerchantOrderID: o.MerchantOrderID, ProviderOrderID: o.ProviderOrderID}, false)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			if !res.Found || res.Status != c.wantStatus || (res.Event != nil) != c.wantEvent {
				t.Fatalf("result found=%v status=%s event=%v", res.Found, res.Status, res.Event != nil)
			}
			if g, _ := sim.Order(o.ID); g.Queries != 1 {
				t.Errorf("queries counted %d", g.Queries)
			}
			if !c.wantEvent {
				return
			}
			got := settled(t, sim, o.ID, 1)
			_ = got
			recs := in.received()
			if len(recs) == 0 || recs[0].Err != nil {
				t.Fatalf("no verified callback: %+v", recs)
			}
			if res.Event.ID() != recs[0].Event.ID() || res.Event.Amount.Cmp(recs[0].Event.Amount) != 0 {
				t.Errorf("poll event %s %s, callback event %s %s", res.Event.ID(), res.Event.Amount.Value, recs[0].Event.ID(), recs[0].Event.Amount.Value)
			}
		})
	}
}

func TestQueryUnknownOrder(t *testing.T) {
	in := newIngress(t)
	_, _, accts := newSim(t, in, Config{})
	ctx := context.Background()
	t.Run("jpglo 5001 is not found", func(t *testing.T) {
		res, err := jpglo.NewClient(nil).Query(ctx, accts["glo-in"], providers.Order{Kind: events.KindPayin, MerchantOrderID: "nope"}, false)
		if err != nil || res.Found {
			t.Fatalf("res %+v err %v", res, err)
		}
	})
	t.Run("mrnpay null result is not found", func(t *testing.T) {
		res, err := mrnpay.NewClient(nil).Query(ctx, accts["mrn-cn"], providers.Order{Kind: events.KindPayin, MerchantOrderID: "nope"}, true)
		if err != nil || res.Found {
			t.Fatalf("res %+v err %v", res, err)
		}
	})
	t.Run("cashypro Payin_Order_Error", func(t *testing.T) {
		_, err := cashypro.NewClient(nil).Query(ctx, accts["cashy-id"], providers.Order{Kind: events.KindPayin, MerchantOrderID: "nope"}, false)
		var ae *providers.APIError
		if !errors.As(err, &ae) || ae.Code != "500" || ae.Message != "Payin_Order_Error" {
			t.Fatalf("err %v", err)
		}
	})
}

// rawDo sends a request and decodes the JSON answer.
func rawDo(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m, ok := decodeFlat(b)
	if !ok {
		t.Fatalf("answer is not a JSON object: %q", b)
	}
	return resp.StatusCode, m
}

func keys(m map[string]any) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

// TestQueryFormatsAndSignatures checks each endpoint's answer against the
// seed's format and that bad signatures get the provider's own refusal.
func TestQueryFormatsAndSignatures(t *testing.T) {
	in := newIngress(t, allAccounts...)
	sim, srv, accts := newSim(t, in, Config{})
	ctx := context.Background()
	mk := func(spec OrderSpec) *Order {
		o, err := sim.CreateOrder(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		settled(t, sim, o.ID, 1)
		return o
	}
	glo := mk(OrderSpec{Provider: "jpglo", Account: "glo-in", Amount: "600.00"})
	cashy := mk(OrderSpec{Provider: "cashypro", Account: "cashy-id", Amount: "20000.00"})
	mrn := mk(OrderSpec{Provider: "mrnpay", Account: "mrn-cn"})

	jpgloURL := func(no, mch, sign string) string {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		if sign == "" {
			sign = jpglo.Sign(map[string]any{"mch_id": mch, "timestamp": ts}, accJpglo.Key("secret"))
		}
		return accts["glo-in"].BaseURL + "/api/order/query/" + no + "/?" + url.Values{"mch_id": {mch}, "timestamp": {ts}, "sign": {sign}}.Encode()
	}
	cashyReq := func(body, mid, sign string) *http.Request {
		if sign == "" {
			sign, _ = cashypro.Sign([]byte(body), accCashy.Key("secret"), "")
		}
		r, _ := http.NewRequest(http.MethodPost, accts["cashy-id"].BaseURL+"/api/payInQuery", strings.NewReader(body))
		r.Header.Set("MerchantId", mid)
		r.Header.Set("Sign", sign)
		return r
	}
	mrnURL := func(appKey, mrnNo, sign string) string {
		if sign == "" {
			sign = mrnpay.SignQuery(appKey, mrnNo, accMrnpay.Key("secret"))
		}
		return accts["mrn-cn"].BaseURL + "/api/Payments/Query?" + url.Values{"appKey": {appKey}, "mrn": {mrnNo}, "sign": {sign}, "callback": {"false"}}.Encode()
	}
	get := func(u string) *http.Request { r, _ := http.NewRequest(http.MethodGet, u, nil); return r }

	t.Run("jpglo answer", func(t *testing.T) {
		_, m := rawDo(t, get(jpgloURL(glo.MerchantOrderID, "1", "")))
		if m["status"] != json.Number("0") || m["msg"] != "OK" || m["timestamp"] == nil {
			t.Fatalf("envelope %v", m)
		}
		d := m["data"].(map[string]any)
		want := []string{"apply_amount", "mch_id", "mch_order_no", "order_no", "pay_type", "real_amount", "remark", "status", "sub_pay_type", "user_ext"}
		if !slices.Equal(keys(d), want) || d["status"] != "success" || d["apply_amount"] != json.Number("60000") || d["real_amount"] != json.Number("60000") {
			t.Fatalf("data %v", d)
		}
	})
	t.Run("cashypro answer", func(t *testing.T) {
		_, m := rawDo(t, cashyReq(`{"mchOrderNo":"`+cashy.MerchantOrderID+`","nonceStr":"9459931608"}`, "1002001", ""))
		if m["code"] != json.Number("200") || m["msg"] != "SUCCESS" {
			t.Fatalf("envelope %v", m)
		}
		d := m["data"].(map[string]any)
		want := []string{"amount", "channelOrderNo", "completionTime", "fee", "mchOrderNo", "merchantId", "nonceStr", "orderNo", "orderStatus", "payCode", "payDeskUrl", "payType", "payUrl"}
		if !slices.Equal(keys(d), want) || d["orderStatus"] != "SUCCESS" || d["amount"] != "20000" || d["orderNo"] != cashy.ProviderOrderID {
			t.Fatalf("data %v", d)
		}
		// by orderNo alone
		_, m = rawDo(t, cashyReq(`{"orderNo":"`+cashy.ProviderOrderID+`","nonceStr":"1"}`, "1002001", ""))
		if m["code"] != json.Number("200") {
			t.Fatalf("by orderNo: %v", m)
		}
		// ids naming different orders
		_, m = rawDo(t, cashyReq(`{"mchOrderNo":"`+cashy.MerchantOrderID+`","orderNo":"PAYIN0","nonceStr":"1"}`, "1002001", ""))
		if m["msg"] != "Payin_Order_Error" {
			t.Fatalf("mismatched ids: %v", m)
		}
	})
	t.Run("mrnpay answer", func(t *testing.T) {
		_, m := rawDo(t, get(mrnURL("app-1", mrn.MerchantOrderID, "")))
		r, _ := m["result"].(map[string]any)
		if m["error"] != "success" || r["Mrn"] != mrn.MerchantOrderID || r["status"] != json.Number("1") || !slices.Equal(keys(r), []string{"Mrn", "status"}) {
			t.Fatalf("answer %v", m)
		}
	})

	refusals := []struct {
		name     string
		req      *http.Request
		wantKey  string
		wantCode any
		provider string
	}{
		{"jpglo bad sign", get(jpgloURL(glo.MerchantOrderID, "1", strings.Repeat("A", 32))), "status", json.Number("1"), "jpglo"},
		{"jpglo lower-case sign", get(jpgloURL(glo.MerchantOrderID, "1", strings.ToLower(jpglo.Sign(map[string]any{"mch_id": "1", "timestamp": "1"}, accJpglo.Key("secret"))))), "status", json.Number("1"), "jpglo"},
		{"jpglo other merchant", get(jpgloURL(glo.MerchantOrderID, "2", "")), "status", json.Number("2001"), ""},
		{"jpglo unknown order", get(jpgloURL("999", "1", "")), "status", json.Number("5001"), ""},
		{"cashypro bad sign", cashyReq(`{"mchOrderNo":"`+cashy.MerchantOrderID+`","nonceStr":"1"}`, "1002001", strings.Repeat("0", 32)), "msg", "Sign_Error", "cashypro"},
		{"cashypro sign of another body", cashyReq(`{"mchOrderNo":"`+cashy.MerchantOrderID+`","nonceStr":"1"}`, "1002001", func() string { s, _ := cashypro.Sign([]byte(`{"nonceStr":"2"}`), accCashy.Key("secret"), ""); return s }()), "msg", "Sign_Error", "cashypro"},
		{"cashypro other merchant", cashyReq(`{"mchOrderNo":"x","nonceStr":"1"}`, "9", ""), "msg", "Merchant_Error", ""},
		{"cashypro no nonce", cashyReq(`{"mchOrderNo":"x"}`, "1002001", ""), "msg", "Param_Error", ""},
		{"mrnpay bad sign", get(mrnURL("app-1", mrn.MerchantOrderID, strings.Repeat("0", 32))), "error", "sign_error", "mrnpay"},
		{"mrnpay other appKey", get(mrnURL("app-2", mrn.MerchantOrderID, "")), "error", "object_not_found", ""},
		{"mrnpay missing sign", get(accts["mrn-cn"].BaseURL + "/api/Payments/Query?appKey=app-1&mrn=x"), "error", "invalid_data", ""},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			before := sim.Stats()
			_, m := rawDo(t, c.req)
			if m[c.wantKey] != c.wantCode {
				t.Fatalf("%s = %v, want %v (answer %v)", c.wantKey, m[c.wantKey], c.wantCode, m)
			}
			if c.provider != "" && sim.Stats()[c.provider].BadSignatures != before[c.provider].BadSignatures+1 {
				t.Errorf("bad signature not counted")
			}
		})
	}

	t.Run("routing", func(t *testing.T) {
		for _, u := range []string{"/", "/jpglo/", "/jpglo/nope/api/order/query/1/", "/mrnpay/glo-in/api/Payments/Query", "/jpglo/glo-in/api/unknown"} {
			resp, err := http.Get(srv.URL + u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", u, resp.StatusCode)
			}
		}
		resp, err := http.Post(mrnURL("app-1", "x", ""), "text/plain", bytes.NewReader(nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST to a GET endpoint: %d", resp.StatusCode)
		}
	})
}

// TestMrnpayCallbackTrueResends: callback=true on a succeeded order re-sends
// the callback through the normal path, even when the first was dropped.
func TestMrnpayCallbackTrueResends(t *testing.T) {
	cases := []struct {
		name      string
		spec      OrderSpec
		retrigger bool
		wantSent  int
	}{
		{"dropped then re-triggered", OrderSpec{Provider: "mrnpay", Account: "mrn-cn", Faults: Faults{DropCallback: true}}, true, 1},
		{"payout re-triggered after callback", OrderSpec{Provider: "mrnpay", Account: "mrn-cn", Kind: events.KindPayout}, true, 2},
		{"callback=false sends nothing", OrderSpec{Provider: "mrnpay", Account: "mrn-cn", Faults: Faults{DropCallback: true}}, false, 0},
		{"failed order is not re-sent", OrderSpec{Provider: "mrnpay", Account: "mrn-cn", Outcome: Failed}, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := newIngress(t, allAccounts...)
			sim, _, accts := newSim(t, in, Config{})
			ctx := context.Background()
			o, err := sim.CreateOrder(ctx, c.spec)
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "order completes", func() bool { g, _ := sim.Order(o.ID); return g.Status == o.Outcome })
			if c.spec.Faults == (Faults{}) && o.Outcome == Succeeded {
				settled(t, sim, o.ID, 1)
			}
			res, err := mrnpay.NewClient(nil).Query(ctx, accts["mrn-cn"], providers.Order{Kind: o.Kind, MerchantOrderID: o.MerchantOrderID}, c.retrigger)
			if err != nil || !res.Found {
				t.Fatalf("query: %+v %v", res, err)
			}
			if c.wantSent > 0 {
				settled(t, sim, o.ID, c.wantSent)
			}
			sim.Close()
			g, _ := sim.Order(o.ID)
			if len(g.Deliveries) != c.wantSent || len(in.received()) != c.wantSent {
				t.Fatalf("deliveries %d, ingress %d, want %d", len(g.Deliveries), len(in.received()), c.wantSent)
			}
			if c.wantSent == 0 {
				return
			}
			last := g.Deliveries[len(g.Deliveries)-1]
			r := in.received()[c.wantSent-1]
			if last.Cause != CauseRetrigger || !last.Acked || r.Err != nil || r.Event.Status != events.StatusSucceeded || r.Event.MerchantOrderID != o.MerchantOrderID {
				t.Fatalf("resend %+v, parsed %+v %v", last, r.Event, r.Err)
			}
			if st := sim.Stats()["mrnpay"]; st.Resends != 1 {
				t.Errorf("resends %d", st.Resends)
			}
		})
	}
}
