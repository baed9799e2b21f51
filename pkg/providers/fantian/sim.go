package fantian

import (
	"fmt"
	"net/http"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/simwire"
)

// Fantian's side of the wire, for the provider simulator, devstack and
// the test suites (providers.Simulated). Fantian sends no callbacks; its
// only API is UTR matching (seed 000 "UTR匹配订单"), so a paid order waits
// for its reference (providers.SimDesk.Match).

var (
	_ providers.Simulated      = (*Provider)(nil)
	_ providers.SimServerError = (*Provider)(nil)
	_ providers.SimDrawer      = (*Provider)(nil)
	_ providers.SimDeskServer  = (*Provider)(nil)
)

// SimService is the service code of orders that can be matched by UTR,
// the default of a simulated order.
const SimService = "SVC0031"

// Error codes of the reference endpoint. Only 0000 and 0004 are in the
// seed; the others are ASSUMPTIONS in the same style.
const (
	simBadParam   = "0001" // 参数错误
	simNoMerchant = "0002" // 商户不存在
	simNoOrder    = "0005" // 订单不存在
	simService    = "0006" // not an SVC0031 order
	simRefUsed    = "0007" // the reference was already matched to another order
	simNoMatch    = "0008" // no payment with this reference for the order
	simSystem     = "9999" // 系统错误 (a failure on fantian's side)
)

// SimAccount is DemoAccount's keys under id.
func (p *Provider) SimAccount(id string) providers.Account {
	a := p.DemoAccount()
	a.ID = id
	return a
}

// SimKinds: pay-ins, the orders UTRs are submitted for.
func (p *Provider) SimKinds() []events.Kind { return []events.Kind{events.KindPayin} }

// SimExponent: rupees with two decimals.
func (p *Provider) SimExponent(events.Kind, string) int { return 2 }

// SimAmount leaves amounts to the simulator.
func (p *Provider) SimAmount(events.Kind, string, func(int) int) string { return "" }

// SimPayType is SimService: an order names another service only when asked.
func (p *Provider) SimPayType(events.Kind, func(int) int) string { return SimService }

// SimIDs: payment_cl_id "DEVPM00014581" and a 12-digit UPI UTR as the
// reference the payer got; fantian's own order number never reaches the
// merchant here.
func (p *Provider) SimIDs(o *providers.SimOrder, digits func(n int) string) {
	if o.MerchantOrderID == "" {
		o.MerchantOrderID = "DEVPM" + digits(8)
	}
	if o.Reference == "" {
		o.Reference = digits(12)
	}
}

// SimCallback: fantian sends no callbacks.
func (p *Provider) SimCallback(providers.Account, providers.SimOrder, time.Time, bool) (http.Header, []byte, error) {
	return nil, nil, fmt.Errorf("%w: fantian sends no callbacks", providers.ErrUnsupported)
}

// SimSign: fantian sends no callbacks.
func (p *Provider) SimSign(providers.Account, events.Kind, []byte, time.Time) (http.Header, error) {
	return nil, fmt.Errorf("%w: fantian sends no callbacks", providers.ErrUnsupported)
}

// SimAcked: fantian sends no callbacks, so nothing is acknowledged.
func (p *Provider) SimAcked(int, []byte) bool { return false }

// SimRetries: none.
func (p *Provider) SimRetries() []time.Duration { return nil }

func simReply(w http.ResponseWriter, status int, code, msg string) {
	f := []simwire.KV{{K: "error_code", V: code}}
	if code != CodeOK {
		f = append(f, simwire.KV{K: "error_msg", V: msg})
	}
	simwire.WriteJSON(w, status, f)
}

// SimServerError is 9999 (系统错误) with HTTP 500.
func (p *Provider) SimServerError(w http.ResponseWriter) {
	simReply(w, http.StatusInternalServerError, simSystem, "系统错误")
}

// SimServe is SimServeDesk over find alone (no reference matches).
func (p *Provider) SimServe(w http.ResponseWriter, r *http.Request, acct providers.Account, path string, find providers.SimLookup) bool {
	return p.SimServeDesk(w, r, acct, path, providers.LookupDesk(find))
}

// SimServeDesk answers POST /gateway/api/v1/payments/reference: match
// payment_reference (a UTR/RRN) to order payment_cl_id. It matches when
// the order is an SVC0031 order whose payer paid with that reference and
// the reference is not already another order's (SimDesk.Match); the order
// then succeeds. Submitting the matched reference again is 0000.
func (p *Provider) SimServeDesk(w http.ResponseWriter, r *http.Request, acct providers.Account, path string, desk providers.SimDesk) bool {
	if path != "/gateway/api/v1/payments/reference" {
		return false
	}
	if simwire.WrongMethod(w, r, http.MethodPost) {
		return true
	}
	body, ok := simwire.ReadBody(r)
	f, ok2 := simwire.DecodeFlat(body)
	if !ok || !ok2 {
		simReply(w, http.StatusOK, simBadParam, "参数错误")
		return true
	}
	str := func(k string) string { v, _ := f[k].(string); return v }
	platform, orderNo, ref, sign := str("platform_id"), str("payment_cl_id"), str("payment_reference"), str("sign")
	if platform == "" || orderNo == "" || ref == "" || sign == "" || len(ref) > 64 || len(orderNo) > 32 {
		simReply(w, http.StatusOK, simBadParam, "参数错误")
		return true
	}
	if platform != acct.Key("merchant_id") {
		simReply(w, http.StatusOK, simNoMerchant, "商户不存在")
		return true
	}
	params := map[string]string{"platform_id": platform, "payment_cl_id": orderNo, "payment_reference": ref}
	if !simwire.EqualFold(sign, Sign(params, acct.Key("secret"), acct.Key("sign_rule"))) || !simwire.ValidMD5(sign) {
		desk.BadSignature()
		simReply(w, http.StatusOK, CodeBadSignature, "验签错误!")
		return true
	}
	o, found := desk.Find(events.KindPayin, orderNo, "")
	if !found {
		simReply(w, http.StatusOK, simNoOrder, "订单不存在")
		return true
	}
	if o.PayType != SimService {
		simReply(w, http.StatusOK, simService, "该订单不支持UTR匹配")
		return true
	}
	switch desk.Match(o, ref) {
	case providers.SimMatched:
		simReply(w, http.StatusOK, CodeOK, "")
	case providers.SimReferenceUsed:
		simReply(w, http.StatusOK, simRefUsed, "流水号已被使用")
	default:
		simReply(w, http.StatusOK, simNoMatch, "流水号不匹配")
	}
	return true
}
