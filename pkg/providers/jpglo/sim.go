package jpglo

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
	"github.com/payhook/payhook/pkg/providers/internal/simwire"
)

// jpglo's side of the wire, for the provider simulator, devstack and the
// test suites (providers.Simulated): its callbacks, and its merchant API
// (query, appeal, replenish), where appeals and replenishments are handled
// by jpglo's staff after a delay (providers.SimDesk.Open).

var (
	_ providers.Simulated      = (*Provider)(nil)
	_ providers.SimServerError = (*Provider)(nil)
	_ providers.SimSelective   = (*Provider)(nil)
	_ providers.SimDrawer      = (*Provider)(nil)
	_ providers.SimKeyed       = (*Provider)(nil)
	_ providers.SimDeskServer  = (*Provider)(nil)
)

// SimRetrySchedule is an ASSUMPTION: seed 004 gives the reply
// {"status":0,"msg":"处理成功"} but no retry policy. We assume a short
// back-off of 1, 3, 10, 30 min, 1, 2 and 6 h — 7 retries, the last
// 9 h 44 min after the first.
var SimRetrySchedule = []time.Duration{
	time.Minute, 3 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 6 * time.Hour,
}

// SimAccount is DemoAccount's keys under id.
func (p *Provider) SimAccount(id string) providers.Account {
	a := p.DemoAccount()
	a.ID = id
	return a
}

// SimKinds: pay-ins and appeals about them.
func (p *Provider) SimKinds() []events.Kind { return p.Kinds() }

// SimExponent: amounts travel as integer 分 (two fraction digits).
func (p *Provider) SimExponent(events.Kind, string) int { return 2 }

// SimAmount leaves amounts to the simulator.
func (p *Provider) SimAmount(events.Kind, string, func(int) int) string { return "" }

// simPayTypes are pay_type values of the seed's examples.
var simPayTypes = []string{"upi", "upi_gpay", "upi_paytm", "upi_phonepe", "bankcard"}

// SimPayType draws one of the seed's pay types.
func (p *Provider) SimPayType(_ events.Kind, intn func(int) int) string {
	return simPayTypes[intn(len(simPayTypes))]
}

// SimIDs: mch_order_no "111123456789" (12 digits), order_no
// "2202171238501159" (the time and four digits); an appeal's
// mch_inquiry_no "111234567890" and its inquiry_order_no, the reference.
func (p *Provider) SimIDs(o *providers.SimOrder, digits func(n int) string) {
	if o.MerchantOrderID == "" {
		o.MerchantOrderID = digits(12)
	}
	o.ProviderOrderID = time.Now().UTC().Format("060102150405") + digits(4)
	if o.Kind == events.KindAppeal {
		if o.AppealNo == "" {
			o.AppealNo = digits(12)
		}
		o.Reference = time.Now().UTC().Format("060102150405") + digits(4)
	}
}

// SimCallsBack: jpglo "通常只回调成功订单" (usually calls back only
// successes), so a failed pay-in is called back only when failures are
// asked for; appeals are called back whatever the decision.
func (p *Provider) SimCallsBack(o providers.SimOrder, failures bool) bool {
	return o.Status == events.StatusSucceeded || o.Kind == events.KindAppeal || failures
}

// SimIdempotencyKey: an appeal's events are keyed by its mch_inquiry_no.
func (p *Provider) SimIdempotencyKey(o providers.SimOrder) string {
	if o.Kind == events.KindAppeal {
		return o.AppealNo
	}
	return ""
}

// SimCallback renders seed 004 "支付回调" / "申诉回调": a JSON object signed
// with Sign (sorted non-null fields, &key=, MD5 upper). Amounts are integer
// 分; real_amount is null unless the order succeeded, like the query.
func (p *Provider) SimCallback(acct providers.Account, o providers.SimOrder, at time.Time, corrupt bool) (http.Header, []byte, error) {
	st := "success"
	if o.Status == events.StatusFailed {
		st = "fail"
	}
	c := callback{Kind: o.Kind, MchOrderNo: o.MerchantOrderID, OrderNo: o.ProviderOrderID, Status: st,
		Timestamp: strconv.FormatInt(at.Unix(), 10)}
	if o.Kind == events.KindAppeal {
		c.InquiryNo, c.InquiryOrderNo = o.AppealNo, o.Reference
		c.Amount = string(simwire.Minor(o.Paid, 2))
		c.UserRemark, c.Reason = "I've paid!", "已完成充值"
		if o.Status == events.StatusFailed {
			c.Reason = "未查到付款"
		}
	} else {
		c.Amount = string(simwire.Minor(o.Amount, 2))
		if o.Status == events.StatusSucceeded {
			c.RealAmount = string(simwire.Minor(o.Paid, 2))
		}
		c.PayType, c.UserExt = o.PayType, `{"user_id":"sim-user"}`
	}
	obj := c.obj()
	sign, err := objSign(obj, acct.Key("secret"))
	if err != nil {
		return nil, nil, err
	}
	if corrupt {
		sign = simwire.CorruptHex(sign)
	}
	return hostile.JSONHeader(), obj.Set("sign", hostile.Str(sign)).Bytes(), nil
}

// SimSign cannot sign a mutated body beside it: jpglo's sign is a field of
// the JSON body.
func (p *Provider) SimSign(providers.Account, events.Kind, []byte, time.Time) (http.Header, error) {
	return nil, fmt.Errorf("%w: jpglo's sign is a field of the body", providers.ErrUnsupported)
}

// SimAcked: a 2xx whose JSON body has "status": 0 (a number).
func (p *Provider) SimAcked(status int, body []byte) bool {
	if status < 200 || status > 299 {
		return false
	}
	r, ok := simwire.DecodeFlat(body)
	if !ok {
		return false
	}
	n, ok := r["status"].(json.Number)
	return ok && n == "0"
}

// SimRetries is SimRetrySchedule.
func (p *Provider) SimRetries() []time.Duration { return SimRetrySchedule }

// simReply is jpglo's answer envelope. Assumption: the seed's error table
// has no "bad signature" status, so a bad sign is status 1 (参数错误) with
// msg 签名错误.
func simReply(w http.ResponseWriter, httpStatus, status int, msg string, data json.RawMessage) {
	f := []simwire.KV{{K: "status", V: status}, {K: "msg", V: msg}, {K: "timestamp", V: time.Now().Format("2006-01-02 15:04:05")}}
	if data != nil {
		f = append(f, simwire.KV{K: "data", V: data})
	}
	simwire.WriteJSON(w, httpStatus, f)
}

// SimServerError is status -1 (内部错误) with HTTP 500.
func (p *Provider) SimServerError(w http.ResponseWriter) {
	simReply(w, http.StatusInternalServerError, -1, "内部错误,请联系管理员", nil)
}

// SimServe is SimServeDesk over find alone (appeals and replenishments
// are refused as if the order existed).
func (p *Provider) SimServe(w http.ResponseWriter, r *http.Request, acct providers.Account, path string, find providers.SimLookup) bool {
	return p.SimServeDesk(w, r, acct, path, providers.LookupDesk(find))
}

// SimServeDesk answers seed 004 "订单查询" (GET
// /api/order/query/{mch_order_no}/), "代收申訴接口" (POST
// /api/order/inquiry/) and "代收补单接口" (POST /api/order/replenish/).
func (p *Provider) SimServeDesk(w http.ResponseWriter, r *http.Request, acct providers.Account, path string, desk providers.SimDesk) bool {
	var serve func(http.ResponseWriter, *http.Request, providers.Account, string, providers.SimDesk)
	method := http.MethodPost
	switch {
	case strings.HasPrefix(path, "/api/order/query/") && strings.HasSuffix(path, "/"):
		serve, method = p.simQuery, http.MethodGet
	case path == "/api/order/inquiry/":
		serve = p.simInquiry
	case path == "/api/order/replenish/":
		serve = p.simReplenish
	default:
		return false
	}
	if simwire.WrongMethod(w, r, method) {
		return true
	}
	serve(w, r, acct, path, desk)
	return true
}

// simQuery answers GET /api/order/query/{mch_order_no}/?mch_id=&timestamp=&sign=,
// the sign over mch_id and timestamp only.
func (p *Provider) simQuery(w http.ResponseWriter, r *http.Request, acct providers.Account, path string, desk providers.SimDesk) {
	no := strings.TrimSuffix(strings.TrimPrefix(path, "/api/order/query/"), "/")
	q := r.URL.Query()
	mch, ts, sign := q.Get("mch_id"), q.Get("timestamp"), q.Get("sign")
	if no == "" || strings.Contains(no, "/") || mch == "" || ts == "" || sign == "" {
		simReply(w, http.StatusOK, 1, "参数错误", nil)
		return
	}
	if mch != acct.Key("merchant_id") {
		simReply(w, http.StatusOK, 2001, "商户不存在", nil)
		return
	}
	want := Sign(map[string]any{"mch_id": json.Number(mch), "timestamp": json.Number(ts)}, acct.Key("secret"))
	if subtle.ConstantTimeCompare([]byte(sign), []byte(want)) != 1 {
		desk.BadSignature()
		simReply(w, http.StatusOK, 1, "签名错误", nil)
		return
	}
	o, found := desk.Find(events.KindPayin, no, "")
	if !found {
		simReply(w, http.StatusOK, 5001, "订单不存在", nil)
		return
	}
	status := map[events.Status]string{events.StatusPending: "commit", events.StatusSucceeded: "success", events.StatusFailed: "fail"}[o.Status]
	var real any
	if o.Status == events.StatusSucceeded {
		real = simwire.Minor(o.Paid, 2)
	}
	var mchID any = json.Number(acct.Key("merchant_id"))
	if !simwire.IsDigits(acct.Key("merchant_id")) {
		mchID = acct.Key("merchant_id")
	}
	simReply(w, http.StatusOK, 0, "OK", simwire.MustOrdered([]simwire.KV{
		{K: "mch_id", V: mchID},
		{K: "mch_order_no", V: o.MerchantOrderID},
		{K: "order_no", V: o.ProviderOrderID},
		{K: "status", V: status},
		{K: "pay_type", V: o.PayType},
		{K: "sub_pay_type", V: nil},
		{K: "apply_amount", V: simwire.Minor(o.Amount, 2)},
		{K: "real_amount", V: real},
		{K: "remark", V: nil},
		{K: "user_ext", V: `{"user_id":"sim-user"}`},
	}))
}

// simSigned reads and checks a signed JSON request: merchant, then sign,
// then the required fields. It answers the refusal itself and returns nil
// then.
func (p *Provider) simSigned(w http.ResponseWriter, r *http.Request, acct providers.Account, desk providers.SimDesk, required ...string) map[string]any {
	body, ok := simwire.ReadBody(r)
	f, ok2 := simwire.DecodeFlat(body)
	if !ok || !ok2 {
		simReply(w, http.StatusOK, 1, "参数错误", nil)
		return nil
	}
	if PyStr(f["mch_id"]) != acct.Key("merchant_id") {
		simReply(w, http.StatusOK, 2001, "商户不存在", nil)
		return nil
	}
	sign, _ := f["sign"].(string)
	if subtle.ConstantTimeCompare([]byte(sign), []byte(Sign(f, acct.Key("secret")))) != 1 {
		desk.BadSignature()
		simReply(w, http.StatusOK, 1, "签名错误", nil)
		return nil
	}
	for _, k := range required {
		if v, ok := f[k]; !ok || v == nil || v == "" {
			simReply(w, http.StatusOK, 1, "参数错误", nil)
			return nil
		}
	}
	return f
}

// simMinorAmount reads an integer count of 分 as major units.
func (p *Provider) simMinorAmount(v any, acct providers.Account) (string, bool) {
	cur := acct.Currency
	if cur == "" {
		cur = p.DemoAccount().Currency
	}
	n, ok := v.(json.Number)
	if !ok || !simwire.IsDigits(string(n)) {
		return "", false
	}
	m, err := events.MoneyFromMinor(string(n), 2, cur)
	if err != nil || m.Value == "0.00" {
		return "", false
	}
	return m.Value, true
}

// simInquiry answers POST /api/order/inquiry/: an appeal about pay-in
// order_no. Unknown order 5001; an appeal already made for it (or the same
// mch_inquiry_no) 5100. The staff decide it later (SimDesk.Open), and its
// callback goes to notify_url.
func (p *Provider) simInquiry(w http.ResponseWriter, r *http.Request, acct providers.Account, _ string, desk providers.SimDesk) {
	f := p.simSigned(w, r, acct, desk, "order_no", "mch_inquiry_no", "inquiry_amount", "user_id", "user_real_name", "notify_url", "receipt", "timestamp")
	if f == nil {
		return
	}
	orderNo, _ := f["order_no"].(string)
	inquiryNo, _ := f["mch_inquiry_no"].(string)
	notify, _ := f["notify_url"].(string)
	amount, ok := p.simMinorAmount(f["inquiry_amount"], acct)
	if !ok || orderNo == "" || inquiryNo == "" {
		simReply(w, http.StatusOK, 1, "参数错误", nil)
		return
	}
	o, err := desk.Open(providers.SimOpen{Kind: events.KindAppeal, ProviderOrderID: orderNo, AppealNo: inquiryNo, Amount: amount, NotifyURL: notify})
	switch {
	case errors.Is(err, providers.ErrNotFound):
		simReply(w, http.StatusOK, 5001, "订单不存在", nil)
		return
	case err != nil:
		simReply(w, http.StatusOK, 5100, "申诉订单已存在", nil)
		return
	}
	var remark any
	if v, ok := f["user_remark"].(string); ok {
		remark = v
	}
	simReply(w, http.StatusOK, 0, "OK", simwire.MustOrdered([]simwire.KV{
		{K: "mch_order_no", V: o.MerchantOrderID},
		{K: "order_no", V: o.ProviderOrderID},
		{K: "mch_inquiry_no", V: inquiryNo},
		{K: "inquiry_order_no", V: o.Reference},
		{K: "status", V: "new"},
		{K: "inquiry_amount", V: f["inquiry_amount"]},
		{K: "user_remark", V: remark},
		{K: "reason", V: nil},
	}))
}

// simReplenish answers POST /api/order/replenish/: a new pay-in order
// (mch_order_no must not exist: 5013 商户订单号重复) that the staff
// complete later (SimDesk.Open), ending in a normal payment callback.
func (p *Provider) simReplenish(w http.ResponseWriter, r *http.Request, acct providers.Account, _ string, desk providers.SimDesk) {
	f := p.simSigned(w, r, acct, desk, "mch_order_no", "apply_amount", "user_id", "timestamp")
	if f == nil {
		return
	}
	no, _ := f["mch_order_no"].(string)
	amount, ok := p.simMinorAmount(f["apply_amount"], acct)
	if !ok || no == "" {
		simReply(w, http.StatusOK, 1, "参数错误", nil)
		return
	}
	payType, _ := f["pay_type"].(string)
	o, err := desk.Open(providers.SimOpen{Kind: events.KindPayin, MerchantOrderID: no, Amount: amount, PayType: payType})
	if err != nil {
		simReply(w, http.StatusOK, 5013, "商户订单号重复", nil)
		return
	}
	var pt, spt any
	if payType != "" {
		pt = payType
	}
	if v, ok := f["sub_pay_type"].(string); ok {
		spt = v
	}
	simReply(w, http.StatusOK, 0, "OK", simwire.MustOrdered([]simwire.KV{
		{K: "order_no", V: o.ProviderOrderID},
		{K: "mch_order_no", V: no},
		{K: "status", V: "new"},
		{K: "pay_type", V: pt},
		{K: "sub_pay_type", V: spt},
		{K: "apply_amount", V: f["apply_amount"]},
		{K: "real_amount", V: nil},
		{K: "remark", V: nil},
	}))
}
