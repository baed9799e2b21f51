package providersim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/fantian"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

// TestJpgloReplenish: a replenish ends in a normal, verified payment callback.
func TestJpgloReplenish(t *testing.T) {
	in := newIngress(t, allAccounts...)
	sim, _, accts := newSim(t, in, Config{ReplenishDelay: time.Minute, TimeScale: 1e-4}) // 6 ms
	ctx := context.Background()
	c := jpglo.NewClient(nil)
	res, err := c.Replenish(ctx, accts["glo-in"], jpglo.ReplenishRequest{MerchantOrderID: "R-1001", ApplyAmount: 10000000, UserID: "123456", PayType: "pix"})
	if err != nil {
		t.Fatalf("Replenish: %v", err)
	}
	if res.Status != "new" || res.MerchantOrderID != "R-1001" || res.ApplyAmount.Value != "100000.00" || res.OrderNo == "" {
		t.Fatalf("result %+v", res)
	}
	id := OrderID("jpglo", "glo-in", events.KindPayin, "R-1001")
	g := settled(t, sim, id, 1)
	if g.Deliveries[0].Cause != CauseReplenish || g.ProviderOrderID != res.OrderNo {
		t.Fatalf("order %+v", g)
	}
	r := in.received()[0]
	if r.Err != nil || r.Event.Status != events.StatusSucceeded || r.Event.MerchantOrderID != "R-1001" || r.Event.ProviderFields["pay_type"] != "pix" {
		t.Fatalf("callback %+v %v", r.Event, r.Err)
	}
	// The same merchant order number again is 5013.
	_, err = c.Replenish(ctx, accts["glo-in"], jpglo.ReplenishRequest{MerchantOrderID: "R-1001", ApplyAmount: 100, UserID: "1"})
	var ae *providers.APIError
	if !errors.As(err, &ae) || ae.Code != "5013" {
		t.Fatalf("duplicate replenish: %v", err)
	}
	// A wrong key is refused with status 1 and no order is made.
	bad := accts["glo-in"]
	bad = bad.With("secret", "wrong")
	_, err = c.Replenish(ctx, bad, jpglo.ReplenishRequest{MerchantOrderID: "R-1002", ApplyAmount: 100, UserID: "1"})
	if !errors.As(err, &ae) || ae.Code != "1" {
		t.Fatalf("bad sign: %v", err)
	}
	if _, ok := sim.Order(OrderID("jpglo", "glo-in", events.KindPayin, "R-1002")); ok {
		t.Fatal("a badly signed replenish created an order")
	}
}

// TestJpgloAppeal: an appeal submitted with payhook's client is answered as
// the seed shows and decided by an appeal callback to notify_url.
func TestJpgloAppeal(t *testing.T) {
	in := newIngress(t, allAccounts...)
	sim, _, accts := newSim(t, in, Config{AppealDelay: time.Minute, TimeScale: 1e-4, AppealOutcome: Failed})
	ctx := context.Background()
	pay, err := sim.CreateOrder(ctx, OrderSpec{Provider: "jpglo", Account: "glo-in", Outcome: Pending})
	if err != nil {
		t.Fatal(err)
	}
	c := jpglo.NewClient(nil)
	req := jpglo.AppealRequest{
		OrderNo: pay.ProviderOrderID, MchInquiryNo: "A-77", InquiryAmount: 1000000, UserID: "123456",
		UserRealName: "Test User", NotifyURL: in.srv.URL + "/v1/callbacks/jpglo/glo-in/appeal",
		Receipt: []string{"https://imgur.com/gallery/VWjRf"}, UserRemark: "I've paid!",
	}
	res, err := c.SubmitAppeal(ctx, accts["glo-in"], req)
	if err != nil {
		t.Fatalf("SubmitAppeal: %v", err)
	}
	if res.Status != "new" || res.MerchantOrderID != pay.MerchantOrderID || res.OrderNo != pay.ProviderOrderID || res.MchInquiryNo != "A-77" || res.InquiryOrderNo == "" || res.InquiryAmount.Value != "10000.00" {
		t.Fatalf("result %+v", res)
	}
	g := settled(t, sim, OrderID("jpglo", "glo-in", events.KindAppeal, "A-77"), 1)
	r := in.received()[0]
	if r.Err != nil || r.Kind != events.KindAppeal || r.Event.Status != events.StatusFailed || r.Event.Reference != res.InquiryOrderNo ||
		r.Event.IdempotencyKey != "A-77" || r.Event.MerchantOrderID != pay.MerchantOrderID || g.Deliveries[0].Cause != CauseAppeal {
		t.Fatalf("appeal callback %+v %v", r.Event, r.Err)
	}
	cases := []struct {
		name string
		req  jpglo.AppealRequest
		code string
	}{
		{"second appeal for the order", func() jpglo.AppealRequest { r := req; r.MchInquiryNo = "A-78"; return r }(), "5100"},
		{"unknown order", func() jpglo.AppealRequest { r := req; r.OrderNo = "0000"; r.MchInquiryNo = "A-79"; return r }(), "5001"},
	}
	for _, c2 := range cases {
		t.Run(c2.name, func(t *testing.T) {
			_, err := c.SubmitAppeal(ctx, accts["glo-in"], c2.req)
			var ae *providers.APIError
			if !errors.As(err, &ae) || ae.Code != c2.code {
				t.Fatalf("err %v, want %s", err, c2.code)
			}
		})
	}
}

// TestFantianReference: UTR matching with payhook's fantian client.
func TestFantianReference(t *testing.T) {
	in := newIngress(t)
	sim, srv, accts := newSim(t, in, Config{})
	ctx := context.Background()
	paid, err := sim.CreateOrder(ctx, OrderSpec{Provider: "fantian", Account: "ft-in", Reference: "412345678901"})
	if err != nil {
		t.Fatal(err)
	}
	unpaid, _ := sim.CreateOrder(ctx, OrderSpec{Provider: "fantian", Account: "ft-in", Outcome: Failed})
	other, _ := sim.CreateOrder(ctx, OrderSpec{Provider: "fantian", Account: "ft-in", Service: "SVC0001"})
	second, _ := sim.CreateOrder(ctx, OrderSpec{Provider: "fantian", Account: "ft-in", Reference: "499999999999"})
	eventually(t, "orders live", func() bool { g, _ := sim.Order(unpaid.ID); return g.Status == Failed })
	if g, _ := sim.Order(paid.ID); g.Status != Pending {
		t.Fatalf("a fantian order must wait for its UTR, status %s", g.Status)
	}
	c := fantian.NewClient(nil)
	acct := accts["ft-in"]
	wrongKey := acct
	wrongKey = wrongKey.With("secret", "nope")
	upper := acct
	upper = upper.With("sign_rule", fantian.RuleSortedUpper)
	cases := []struct {
		name  string
		acct  providers.Account
		order string
		ref   string
		code  string // "" = matched
	}{
		{"wrong reference", acct, paid.MerchantOrderID, "400000000000", "0008"},
		{"bad signature", wrongKey, paid.MerchantOrderID, "412345678901", "0004"},
		{"unknown order", acct, "DEVPM0", "412345678901", "0005"},
		{"not SVC0031", acct, other.MerchantOrderID, other.Reference, "0006"},
		{"payer never paid", acct, unpaid.MerchantOrderID, unpaid.Reference, "0008"},
		{"matched", acct, paid.MerchantOrderID, "412345678901", ""},
		{"matched again (upper-case sign accepted)", upper, paid.MerchantOrderID, "412345678901", ""},
		{"reference used by another order", acct, second.MerchantOrderID, "412345678901", "0007"},
	}
	for _, c2 := range cases {
		t.Run(c2.name, func(t *testing.T) {
			err := c.SubmitReference(ctx, c2.acct, c2.order, c2.ref)
			if c2.code == "" {
				if err != nil {
					t.Fatalf("SubmitReference: %v", err)
				}
				return
			}
			var ae *providers.APIError
			if !errors.As(err, &ae) || ae.Code != c2.code {
				t.Fatalf("err %v, want code %s", err, c2.code)
			}
			if c2.code == "0008" && !fantian.NotMatched(err) {
				t.Errorf("payhook's client does not read %q as not matched", ae.Message)
			}
		})
	}
	g, _ := sim.Order(paid.ID)
	if g.Status != Succeeded || g.Matched != "412345678901" {
		t.Fatalf("after match: %+v", g)
	}
	// The seed's wire format: error_code only on success, error_msg with errors.
	resp, err := http.Post(srv.URL+"/fantian/ft-in/gateway/api/v1/payments/reference", "application/json",
		strings.NewReader(`{"platform_id":"PF0002","payment_cl_id":"x","payment_reference":"y","sign":"c81634c1769044eac9e9628a2292f557"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || m["error_code"] != "0004" || m["error_msg"] != "验签错误!" {
		t.Fatalf("answer %v %v", m, err)
	}
}
