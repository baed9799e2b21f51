package cashypro

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/simwire"
)

// CashyPro's side of the wire, for the provider simulator, devstack and
// the test suites (providers.Simulated).

var (
	_ providers.Simulated       = (*Provider)(nil)
	_ providers.SimServerError  = (*Provider)(nil)
	_ providers.SimIntermediate = (*Provider)(nil)
	_ providers.SimDrawer       = (*Provider)(nil)
	_ providers.SimDeskServer   = (*Provider)(nil)
)

// SimRetrySchedule: seed 002 "回调失败后会在1,2,4,8,16,32,64,128,256,512分钟
// 重试,一共重试回调10次" — 10 retries, doubling from 1 min; the last one
// 1+2+…+512 = 1023 min (about 17 h 3 min) after the first.
var SimRetrySchedule = []time.Duration{
	1 * time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute,
	32 * time.Minute, 64 * time.Minute, 128 * time.Minute, 256 * time.Minute, 512 * time.Minute,
}

// SimAccount is DemoAccount's keys under id.
func (p *Provider) SimAccount(id string) providers.Account {
	a := p.DemoAccount()
	a.ID = id
	return a
}

// SimKinds: pay-ins ("代收").
func (p *Provider) SimKinds() []events.Kind { return p.Kinds() }

// SimExponent: IDR amounts are whole rupiah (decimal(20,0)).
func (p *Provider) SimExponent(events.Kind, string) int { return 0 }

// SimIntermediate: a pay-in can be notified PAYING before its final status.
func (p *Provider) SimIntermediate(kind events.Kind) bool { return kind == events.KindPayin }

// SimAmount: 10 000 to 999 000 rupiah in thousands (the minimum pay-in is
// 10 000), written with two decimals as the callback writes it.
func (p *Provider) SimAmount(_ events.Kind, _ string, intn func(int) int) string {
	return fmt.Sprintf("%d.00", (10+intn(990))*1000)
}

// SimPayType: the seed's payType codes 41 and 43.
func (p *Provider) SimPayType(_ events.Kind, intn func(int) int) string {
	return []string{"41", "43"}[intn(2)]
}

// SimIDs: mchOrderNo "1386503284355244033" (19 digits), orderNo
// "PAYIN8551790545658687488" and a channelOrderNo as the reference.
func (p *Provider) SimIDs(o *providers.SimOrder, digits func(n int) string) {
	if o.MerchantOrderID == "" {
		o.MerchantOrderID = "1" + digits(18)
	}
	o.ProviderOrderID = "PAYIN" + digits(19)
	if o.Reference == "" {
		o.Reference = "CH" + digits(16)
	}
}

// simStatus is orderStatus for a status.
func simStatus(s events.Status) string {
	switch s {
	case events.StatusSucceeded:
		return "SUCCESS"
	case events.StatusFailed:
		return "FAIL"
	}
	return "PAYING"
}

// SimCallback renders seed 002 "代收订单结果通知": JSON with amount and fee
// as numbers written with 2 and 4 decimals (20000.00, 2500.0000), keys in
// the seed example's (alphabetical) order, headers MerchantId and Sign
// (Sign under the account's rule). PAYING has a null completionTime.
func (p *Provider) SimCallback(acct providers.Account, o providers.SimOrder, at time.Time, corrupt bool) (http.Header, []byte, error) {
	var completion string
	if o.Status != events.StatusPending {
		completion = at.In(wib).Format(completionLayout)
	}
	body := callback{
		Amount: simwire.Fixed(o.Paid, 2), Fee: simFee(o.Paid) + ".0000", CompletionTime: completion,
		ChannelOrderNo: o.Reference, MchOrderNo: o.MerchantOrderID, MerchantID: acct.Key("merchant_id"),
		NonceStr: strconv.FormatInt(time.Now().UnixMilli(), 10), OrderNo: o.ProviderOrderID,
		OrderStatus: simStatus(o.Status), PayCode: "OR.GPNQR..SIM", PayType: o.PayType,
		PayURL: "https://pay.example/" + o.ProviderOrderID,
	}.obj().Bytes()
	h, err := p.SimSign(acct, o.Kind, body, at)
	if err != nil {
		return nil, nil, err
	}
	if corrupt {
		h.Set(HeaderSign, simwire.CorruptHex(h.Get(HeaderSign)))
	}
	return h, body, nil
}

// simFee is a plausible fee: 8.5 % of the amount, whole rupiah.
func simFee(amount events.Money) string {
	n, err := amount.Minor(0)
	if err != nil {
		return "0"
	}
	n.Mul(n, big.NewInt(85))
	n.Quo(n, big.NewInt(1000))
	return n.String()
}

// SimSign is the headers CashyPro sends body with: MerchantId and Sign
// (over the body's fields, under the account's sign_rule).
func (p *Provider) SimSign(acct providers.Account, _ events.Kind, body []byte, _ time.Time) (http.Header, error) {
	return signHeaders(acct, body)
}

// SimAcked: HTTP 200, 301 or 302, whatever the body (seed 002: "返回http
// 状态码 200/301/302 即视为接收成功").
func (p *Provider) SimAcked(status int, _ []byte) bool {
	return status == 200 || status == 301 || status == 302
}

// SimRetries is SimRetrySchedule.
func (p *Provider) SimRetries() []time.Duration { return SimRetrySchedule }

// SimServerError is the query's envelope for a failure on CashyPro's side:
// HTTP 500 with {"msg":"System_Error","code":500}.
func (p *Provider) SimServerError(w http.ResponseWriter) {
	simwire.WriteJSON(w, http.StatusInternalServerError, []simwire.KV{{K: "msg", V: "System_Error"}, {K: "code", V: 500}})
}

// SimServe is SimServeDesk over find alone.
func (p *Provider) SimServe(w http.ResponseWriter, r *http.Request, acct providers.Account, path string, find providers.SimLookup) bool {
	return p.SimServeDesk(w, r, acct, path, providers.LookupDesk(find))
}

// SimServeDesk answers POST /api/payInQuery (seed 002 "查询代收订单").
// Assumptions: the seed shows only {"code":500,"msg":"Payin_Order_Error"}
// as an error, so every refusal uses that envelope: Merchant_Error for a
// MerchantId header that is not the account's, Sign_Error for a bad Sign,
// Param_Error for a body without nonceStr or any order number,
// Payin_Order_Error for an unknown order (or two numbers naming different
// orders).
func (p *Provider) SimServeDesk(w http.ResponseWriter, r *http.Request, acct providers.Account, path string, desk providers.SimDesk) bool {
	if path != "/api/payInQuery" {
		return false
	}
	if simwire.WrongMethod(w, r, http.MethodPost) {
		return true
	}
	fail := func(msg string) {
		simwire.WriteJSON(w, http.StatusOK, []simwire.KV{{K: "msg", V: msg}, {K: "code", V: 500}})
	}
	body, ok := simwire.ReadBody(r)
	if !ok {
		fail("Param_Error")
		return true
	}
	if r.Header.Get(HeaderMerchantID) != acct.Key("merchant_id") {
		fail("Merchant_Error")
		return true
	}
	want, err := Sign(body, acct.Key("secret"), acct.Key("sign_rule"))
	got := r.Header.Get(HeaderSign)
	if err != nil || !simwire.ValidMD5(got) || !simwire.EqualFold(got, want) {
		desk.BadSignature()
		fail("Sign_Error")
		return true
	}
	var q struct {
		MchOrderNo string `json:"mchOrderNo"`
		OrderNo    string `json:"orderNo"`
		NonceStr   string `json:"nonceStr"`
	}
	if json.Unmarshal(body, &q) != nil || q.NonceStr == "" || (q.MchOrderNo == "" && q.OrderNo == "") {
		fail("Param_Error")
		return true
	}
	o, found := desk.Find(events.KindPayin, q.MchOrderNo, q.OrderNo)
	if !found {
		fail("Payin_Order_Error")
		return true
	}
	var completion any
	if o.Status != events.StatusPending {
		completion = o.CompletedAt.In(wib).Format(completionLayout)
	}
	data := simwire.MustOrdered([]simwire.KV{
		{K: "merchantId", V: acct.Key("merchant_id")},
		{K: "mchOrderNo", V: o.MerchantOrderID},
		{K: "orderNo", V: o.ProviderOrderID},
		{K: "channelOrderNo", V: o.Reference},
		{K: "payType", V: o.PayType},
		{K: "payCode", V: ""},
		{K: "payUrl", V: "https://pay.example/" + o.ProviderOrderID},
		{K: "payDeskUrl", V: "https://paydesk.example/views/pay.html?" + o.ProviderOrderID},
		{K: "amount", V: simwire.Fixed(o.Paid, 0)},
		{K: "fee", V: simFee(o.Paid)},
		{K: "orderStatus", V: simStatus(o.Status)},
		{K: "completionTime", V: completion},
		{K: "nonceStr", V: nil},
	})
	simwire.WriteJSON(w, http.StatusOK, []simwire.KV{{K: "msg", V: "SUCCESS"}, {K: "code", V: 200}, {K: "data", V: data}})
	return true
}
