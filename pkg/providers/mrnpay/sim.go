package mrnpay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
	"github.com/payhook/payhook/pkg/providers/internal/simwire"
)

// MrnPay's side of the wire, for the provider simulator, devstack and the
// test suites (providers.Simulated).

var (
	_ providers.Simulated      = (*Provider)(nil)
	_ providers.SimServerError = (*Provider)(nil)
	_ providers.SimSelective   = (*Provider)(nil)
	_ providers.SimDrawer      = (*Provider)(nil)
	_ providers.SimDeskServer  = (*Provider)(nil)
)

// SimRetrySchedule is an ASSUMPTION: seed 003 says only that the merchant
// must answer 200 "success". We use the schedule common to Chinese payment
// platforms (WeChat Pay's notify schedule): 15 s, 15 s, 30 s, 3 min,
// 10 min, 20 min, 30 min ×3, 1 h, 3 h ×3, 6 h ×2 — 15 retries, the last
// about 24 h 4 min after the first.
var SimRetrySchedule = []time.Duration{
	15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, time.Hour,
	3 * time.Hour, 3 * time.Hour, 3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
}

// SimAccount is DemoAccount's keys under id.
func (p *Provider) SimAccount(id string) providers.Account {
	a := p.DemoAccount()
	a.ID = id
	return a
}

// SimKinds: pay-ins ("充值") and payouts ("下发").
func (p *Provider) SimKinds() []events.Kind { return p.Kinds() }

// SimExponent: pay-in amounts have 2 decimals; payouts are whole yuan.
func (p *Provider) SimExponent(kind events.Kind, _ string) int {
	if kind == events.KindPayout {
		return 0
	}
	return 2
}

// SimAmount: a payout of 100 to 4 999 yuan; pay-ins are left to the
// simulator.
func (p *Provider) SimAmount(kind events.Kind, _ string, intn func(int) int) string {
	if kind == events.KindPayout {
		return strconv.Itoa(100 + intn(4900))
	}
	return ""
}

// SimPayType is the pay-in's channel, 1 to 15.
func (p *Provider) SimPayType(_ events.Kind, intn func(int) int) string {
	return strconv.Itoa(1 + intn(15))
}

// SimIDs: the mrn is the merchant's ("M" or "P" and 14 digits); MrnPay
// sends no order number of its own.
func (p *Provider) SimIDs(o *providers.SimOrder, digits func(n int) string) {
	if o.MerchantOrderID == "" {
		prefix := "M"
		if o.Kind == events.KindPayout {
			prefix = "P"
		}
		o.MerchantOrderID = prefix + digits(14)
	}
}

// SimCallsBack: the callbacks have no status field and are sent for
// successes only (seed 003 "充值成功后的回调", "出款成功后的回调"), so they
// cannot report a failure either.
func (p *Provider) SimCallsBack(o providers.SimOrder, _ bool) bool {
	return o.Status == events.StatusSucceeded
}

// SimCallback renders seed 003 "充值回调" / "下发回调": a form built by
// BuildPayinCallback / BuildPayoutCallback. Pay-in amount (paid) and
// originAmount (asked) have 2 decimals; payout amounts are whole yuan. A
// corrupt callback is signed with the wrong key.
func (p *Provider) SimCallback(acct providers.Account, o providers.SimOrder, _ time.Time, corrupt bool) (http.Header, []byte, error) {
	secret := acct.Key("secret")
	if corrupt {
		secret += "-wrong"
	}
	var body []byte
	if o.Kind == events.KindPayout {
		body = BuildPayoutCallback(acct.Key("merchant_id"), secret, o.MerchantOrderID, simwire.Fixed(o.Paid, 0))
	} else {
		channel := o.PayType
		if channel == "" {
			channel = "1"
		}
		body = BuildPayinCallback(acct.Key("merchant_id"), secret, o.MerchantOrderID, channel,
			simwire.Fixed(o.Paid, 2), simwire.Fixed(o.Amount, 2))
	}
	return hostile.FormHeader(), body, nil
}

// SimSign cannot sign a mutated body beside it: MrnPay's sign is a field of
// the form.
func (p *Provider) SimSign(providers.Account, events.Kind, []byte, time.Time) (http.Header, error) {
	return nil, fmt.Errorf("%w: mrnpay's sign is a field of the body", providers.ErrUnsupported)
}

// SimAcked: HTTP 200 with the body "success" (seed 003).
func (p *Provider) SimAcked(status int, body []byte) bool {
	return status == 200 && string(bytes.TrimSpace(body)) == "success"
}

// SimRetries is SimRetrySchedule.
func (p *Provider) SimRetries() []time.Duration { return SimRetrySchedule }

// SimServerError is {"error":"internal_error"} with HTTP 500.
func (p *Provider) SimServerError(w http.ResponseWriter) {
	simwire.WriteJSON(w, http.StatusInternalServerError, []simwire.KV{{K: "error", V: "internal_error"}})
}

// SimServe is SimServeDesk over find alone (callback=true resends nothing).
func (p *Provider) SimServe(w http.ResponseWriter, r *http.Request, acct providers.Account, path string, find providers.SimLookup) bool {
	return p.SimServeDesk(w, r, acct, path, providers.LookupDesk(find))
}

// SimServeDesk answers GET /api/Payments/Query and /api/Payouts/Query
// (seed 003 "充值查单接口说明", "下发查单接口说明") with
// {"error":"success","result":{"Mrn":...,"status":0|1|2}}. Refusals use the
// seed's error words: invalid_data (missing parameters), object_not_found
// (appKey not this account's: "无效的商户账户"), sign_error. Assumption: the
// seed has no answer for an unknown mrn; we answer "success" with a null
// result, which the client reads as not found. callback=true on a
// succeeded order resends its callback (desk.Resend), even when its first
// callbacks were dropped.
func (p *Provider) SimServeDesk(w http.ResponseWriter, r *http.Request, acct providers.Account, path string, desk providers.SimDesk) bool {
	var kind events.Kind
	switch path {
	case "/api/Payments/Query":
		kind = events.KindPayin
	case "/api/Payouts/Query":
		kind = events.KindPayout
	default:
		return false
	}
	if simwire.WrongMethod(w, r, http.MethodGet) {
		return true
	}
	fail := func(code string) { simwire.WriteJSON(w, http.StatusOK, []simwire.KV{{K: "error", V: code}}) }
	q := r.URL.Query()
	appKey, mrn, sign := q.Get("appKey"), q.Get("mrn"), q.Get("sign")
	if appKey == "" || mrn == "" || sign == "" {
		fail("invalid_data")
		return true
	}
	if appKey != acct.Key("merchant_id") {
		fail("object_not_found")
		return true
	}
	if !simwire.EqualFold(sign, SignQuery(appKey, mrn, acct.Key("secret"))) || !simwire.ValidMD5(sign) {
		desk.BadSignature()
		fail("sign_error")
		return true
	}
	o, found := desk.Find(kind, mrn, "")
	if !found {
		simwire.WriteJSON(w, http.StatusOK, []simwire.KV{{K: "error", V: "success"}, {K: "result", V: nil}})
		return true
	}
	code := map[events.Status]int{events.StatusPending: 0, events.StatusSucceeded: 1, events.StatusFailed: 2}[o.Status]
	result := simwire.MustOrdered([]simwire.KV{{K: "Mrn", V: mrn}, {K: "status", V: json.Number(strconv.Itoa(code))}})
	simwire.WriteJSON(w, http.StatusOK, []simwire.KV{{K: "error", V: "success"}, {K: "result", V: result}})
	if o.Status == events.StatusSucceeded && q.Get("callback") == "true" {
		desk.Resend(o)
	}
	return true
}
