package providersim

import (
	"bytes"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/fantian"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

// maxRequest bounds a merchant API request body.
const maxRequest = 64 << 10

// Handler serves every account's merchant API under /{provider}/{account}/
// (see the package doc for the routing scheme and the endpoints).
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	if len(parts) < 3 {
		http.NotFound(w, r)
		return
	}
	acct, ok := s.accounts[parts[0]+"/"+parts[1]]
	if !ok {
		http.NotFound(w, r)
		return
	}
	path := "/" + parts[2]
	if sp, ok := simulated[acct.Provider]; ok {
		if s.serveSimulated(sp, w, r, acct, path) {
			s.count(acct.Provider, func(st *ProviderStats) { st.Requests++ })
			return
		}
		http.NotFound(w, r)
		return
	}
	var h func(http.ResponseWriter, *http.Request, providers.Account, string)
	method := http.MethodPost
	switch {
	case acct.Provider == jpglo.Name && strings.HasPrefix(path, "/api/order/query/") && strings.HasSuffix(path, "/"):
		h, method = s.jpgloQuery, http.MethodGet
	case acct.Provider == jpglo.Name && path == "/api/order/inquiry/":
		h = s.jpgloInquiry
	case acct.Provider == jpglo.Name && path == "/api/order/replenish/":
		h = s.jpgloReplenish
	case acct.Provider == fantian.Name && path == "/gateway/api/v1/payments/reference":
		h = s.fantianReference
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.count(acct.Provider, func(st *ProviderStats) { st.Requests++ })
	h(w, r, acct, path)
}

func (s *Sim) count(provider string, f func(*ProviderStats)) {
	s.mu.Lock()
	f(s.stats[provider])
	s.mu.Unlock()
}

func (s *Sim) badSignature(provider string) {
	s.count(provider, func(st *ProviderStats) { st.BadSignatures++ })
}

func writeJSON(w http.ResponseWriter, status int, f []kv) {
	b, err := marshalOrdered(f)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// queryFaults applies ord's query faults before an answer: QueryTimeout
// hangs until the client or the simulator gives up, QueryFails answers with
// fail. It reports whether the caller should answer normally (and then
// counts the query).
func (s *Sim) queryFaults(w http.ResponseWriter, r *http.Request, ord *order, fail func()) bool {
	s.mu.Lock()
	f := ord.o.Faults
	s.mu.Unlock()
	if f.QueryTimeout {
		// Hang until the client gives up or the simulator closes; never answer.
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
		}
		return false
	}
	if f.QueryFails {
		fail()
		return false
	}
	s.mu.Lock()
	ord.o.Queries++
	s.mu.Unlock()
	return true
}

func (s *Sim) find(id string) *order {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orders[id]
}

func (s *Sim) findByProviderOrder(provider, account, no string) *order {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orders[s.byProviderOrder[providerOrderKey(provider, account, no)]]
}

func readBody(r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxRequest+1))
	return b, err == nil && len(b) <= maxRequest
}

// decodeFlat decodes a JSON object keeping numbers exact.
func decodeFlat(b []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

func equalFold(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(a)), []byte(strings.ToLower(b))) == 1
}

func validHex(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 16
}

// goResend sends ord's final callback again in the background (SimDesk.Resend).
func (s *Sim) goResend(ord *order) {
	s.spawn(func() { s.sendFinal(ord, CauseRetrigger, true) })
}

// ---- jpglo (seed 004 "订单查询", "代收申訴接口", "代收补单接口") ----

// jpglo answers. Assumption: the seed's error table has no "bad signature"
// status, so a bad sign is status 1 (参数错误) with msg 签名错误.
func jpgloReply(w http.ResponseWriter, status int, msg string, data any) {
	f := []kv{{"status", status}, {"msg", msg}, {"timestamp", time.Now().Format("2006-01-02 15:04:05")}}
	if data != nil {
		f = append(f, kv{"data", data})
	}
	writeJSON(w, http.StatusOK, f)
}

func jpgloFail(w http.ResponseWriter) func() {
	return func() {
		writeJSON(w, http.StatusInternalServerError, []kv{{"status", -1}, {"msg", "内部错误,请联系管理员"}, {"timestamp", time.Now().Format("2006-01-02 15:04:05")}})
	}
}

// jpgloQuery answers GET /api/order/query/{mch_order_no}/?mch_id=&timestamp=&sign=,
// the sign over mch_id and timestamp only.
func (s *Sim) jpgloQuery(w http.ResponseWriter, r *http.Request, acct providers.Account, path string) {
	no := strings.TrimSuffix(strings.TrimPrefix(path, "/api/order/query/"), "/")
	q := r.URL.Query()
	mch, ts, sign := q.Get("mch_id"), q.Get("timestamp"), q.Get("sign")
	if no == "" || strings.Contains(no, "/") || mch == "" || ts == "" || sign == "" {
		jpgloReply(w, 1, "参数错误", nil)
		return
	}
	if mch != acct.Key("merchant_id") {
		jpgloReply(w, 2001, "商户不存在", nil)
		return
	}
	want := jpglo.Sign(map[string]any{"mch_id": json.Number(mch), "timestamp": json.Number(ts)}, acct.Key("secret"))
	if subtle.ConstantTimeCompare([]byte(sign), []byte(want)) != 1 {
		s.badSignature(acct.Provider)
		jpgloReply(w, 1, "签名错误", nil)
		return
	}
	ord := s.find(OrderID(acct.Provider, acct.ID, events.KindPayin, no))
	if ord == nil {
		jpgloReply(w, 5001, "订单不存在", nil)
		return
	}
	if !s.queryFaults(w, r, ord, jpgloFail(w)) {
		return
	}
	s.mu.Lock()
	status := map[Outcome]string{Pending: "commit", Succeeded: "success", Failed: "fail"}[ord.o.Status]
	var real any
	if ord.o.Status == Succeeded {
		real = minor(ord.paid, 2)
	}
	data := []kv{
		{"mch_id", json.Number(acct.Key("merchant_id"))},
		{"mch_order_no", ord.o.MerchantOrderID},
		{"order_no", ord.o.ProviderOrderID},
		{"status", status},
		{"pay_type", ord.payType},
		{"sub_pay_type", nil},
		{"apply_amount", minor(ord.amount, 2)},
		{"real_amount", real},
		{"remark", nil},
		{"user_ext", `{"user_id":"sim-user"}`},
	}
	s.mu.Unlock()
	if !isDigits(acct.Key("merchant_id")) {
		data[0].v = acct.Key("merchant_id")
	}
	d, _ := marshalOrdered(data)
	jpgloReply(w, 0, "OK", json.RawMessage(d))
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// jpgloSigned reads and checks a signed JSON request: merchant, then sign.
// It answers the refusal itself and returns nil then.
func (s *Sim) jpgloSigned(w http.ResponseWriter, r *http.Request, acct providers.Account, required ...string) map[string]any {
	body, ok := readBody(r)
	f, ok2 := decodeFlat(body)
	if !ok || !ok2 {
		jpgloReply(w, 1, "参数错误", nil)
		return nil
	}
	if jpglo.PyStr(f["mch_id"]) != acct.Key("merchant_id") {
		jpgloReply(w, 2001, "商户不存在", nil)
		return nil
	}
	sign, _ := f["sign"].(string)
	if subtle.ConstantTimeCompare([]byte(sign), []byte(jpglo.Sign(f, acct.Key("secret")))) != 1 {
		s.badSignature(acct.Provider)
		jpgloReply(w, 1, "签名错误", nil)
		return nil
	}
	for _, k := range required {
		if v, ok := f[k]; !ok || v == nil || v == "" {
			jpgloReply(w, 1, "参数错误", nil)
			return nil
		}
	}
	return f
}

// minorAmount reads an integer count of 分 as major units.
func minorAmount(v any, cur string) (string, bool) {
	n, ok := v.(json.Number)
	if !ok || !isDigits(string(n)) {
		return "", false
	}
	m, err := events.MoneyFromMinor(string(n), 2, cur)
	if err != nil || m.Value == "0.00" {
		return "", false
	}
	return m.Value, true
}

// jpgloInquiry answers POST /api/order/inquiry/: an appeal about pay-in
// order_no. Unknown order 5001; an appeal already made for it (or the same
// mch_inquiry_no) 5100. The appeal is decided after Config.AppealDelay
// (scaled) with Config.AppealOutcome, and its callback goes to notify_url.
func (s *Sim) jpgloInquiry(w http.ResponseWriter, r *http.Request, acct providers.Account, _ string) {
	f := s.jpgloSigned(w, r, acct, "order_no", "mch_inquiry_no", "inquiry_amount", "user_id", "user_real_name", "notify_url", "receipt", "timestamp")
	if f == nil {
		return
	}
	orderNo, _ := f["order_no"].(string)
	inquiryNo, _ := f["mch_inquiry_no"].(string)
	notify, _ := f["notify_url"].(string)
	cur := acct.Currency
	if cur == "" {
		cur = defaultCurrency[acct.Provider]
	}
	amount, ok := minorAmount(f["inquiry_amount"], cur)
	if !ok || orderNo == "" || inquiryNo == "" {
		jpgloReply(w, 1, "参数错误", nil)
		return
	}
	pay := s.findByProviderOrder(acct.Provider, acct.ID, orderNo)
	if pay == nil || pay.o.Kind != events.KindPayin {
		jpgloReply(w, 5001, "订单不存在", nil)
		return
	}
	o, err := s.create(OrderSpec{
		Provider:        acct.Provider,
		Account:         acct.ID,
		Kind:            events.KindAppeal,
		MerchantOrderID: pay.o.MerchantOrderID,
		Amount:          amount,
		Outcome:         s.cfg.AppealOutcome,
		AppealNo:        inquiryNo,
		NotifyURL:       notify,
		Faults:          Faults{Delay: scale(s.cfg.AppealDelay, s.cfg.TimeScale)},
	}, createOpts{cause: CauseAppeal, check: func() error {
		if pay.appealed {
			return ErrDuplicateOrder
		}
		pay.appealed = true
		return nil
	}})
	if err != nil {
		jpgloReply(w, 5100, "申诉订单已存在", nil)
		return
	}
	var remark any
	if v, ok := f["user_remark"].(string); ok {
		remark = v
	}
	d, _ := marshalOrdered([]kv{
		{"mch_order_no", pay.o.MerchantOrderID},
		{"order_no", pay.o.ProviderOrderID},
		{"mch_inquiry_no", inquiryNo},
		{"inquiry_order_no", o.Reference},
		{"status", "new"},
		{"inquiry_amount", f["inquiry_amount"]},
		{"user_remark", remark},
		{"reason", nil},
	})
	jpgloReply(w, 0, "OK", json.RawMessage(d))
}

// jpgloReplenish answers POST /api/order/replenish/: a new pay-in order
// (mch_order_no must not exist: 5013 商户订单号重复) that jpglo's staff
// complete after Config.ReplenishDelay (scaled), ending in a normal payment
// callback.
func (s *Sim) jpgloReplenish(w http.ResponseWriter, r *http.Request, acct providers.Account, _ string) {
	f := s.jpgloSigned(w, r, acct, "mch_order_no", "apply_amount", "user_id", "timestamp")
	if f == nil {
		return
	}
	no, _ := f["mch_order_no"].(string)
	cur := acct.Currency
	if cur == "" {
		cur = defaultCurrency[acct.Provider]
	}
	amount, ok := minorAmount(f["apply_amount"], cur)
	if !ok || no == "" {
		jpgloReply(w, 1, "参数错误", nil)
		return
	}
	payType, _ := f["pay_type"].(string)
	o, err := s.create(OrderSpec{
		Provider:        acct.Provider,
		Account:         acct.ID,
		Kind:            events.KindPayin,
		MerchantOrderID: no,
		Amount:          amount,
		Outcome:         Succeeded,
		Faults:          Faults{Delay: scale(s.cfg.ReplenishDelay, s.cfg.TimeScale)},
	}, createOpts{cause: CauseReplenish, payType: payType})
	if err != nil {
		jpgloReply(w, 5013, "商户订单号重复", nil)
		return
	}
	var pt, spt any
	if payType != "" {
		pt = payType
	}
	if v, ok := f["sub_pay_type"].(string); ok {
		spt = v
	}
	d, _ := marshalOrdered([]kv{
		{"order_no", o.ProviderOrderID},
		{"mch_order_no", no},
		{"status", "new"},
		{"pay_type", pt},
		{"sub_pay_type", spt},
		{"apply_amount", f["apply_amount"]},
		{"real_amount", nil},
		{"remark", nil},
	})
	jpgloReply(w, 0, "OK", json.RawMessage(d))
}

// ---- fantian (seed 000 "UTR匹配订单") ----

// fantian error codes. Only 0000 and 0004 are in the seed; the others are
// ASSUMPTIONS in the same style.
const (
	fantianOK         = fantian.CodeOK
	fantianBadParam   = "0001"                   // 参数错误
	fantianNoMerchant = "0002"                   // 商户不存在
	fantianBadSign    = fantian.CodeBadSignature // 验签错误! (seed)
	fantianNoOrder    = "0005"                   // 订单不存在
	fantianService    = "0006"                   // not an SVC0031 order
	fantianRefUsed    = "0007"                   // the reference was already matched to another order
	fantianNoMatch    = "0008"                   // no payment with this reference for the order
	fantianSystem     = "9999"                   // 系统错误 (Faults.QueryFails)
)

func fantianReply(w http.ResponseWriter, status int, code, msg string) {
	f := []kv{{"error_code", code}}
	if code != fantianOK {
		f = append(f, kv{"error_msg", msg})
	}
	writeJSON(w, status, f)
}

// fantianReference answers POST /gateway/api/v1/payments/reference: match
// payment_reference (a UTR/RRN) to order payment_cl_id. It matches when the
// order is an SVC0031 order whose payer really paid (Outcome succeeded)
// with that reference, and the reference is not already another order's;
// the order then succeeds. Submitting the matched reference again is 0000.
func (s *Sim) fantianReference(w http.ResponseWriter, r *http.Request, acct providers.Account, _ string) {
	body, ok := readBody(r)
	f, ok2 := decodeFlat(body)
	if !ok || !ok2 {
		fantianReply(w, http.StatusOK, fantianBadParam, "参数错误")
		return
	}
	str := func(k string) string { v, _ := f[k].(string); return v }
	platform, orderNo, ref, sign := str("platform_id"), str("payment_cl_id"), str("payment_reference"), str("sign")
	if platform == "" || orderNo == "" || ref == "" || sign == "" || len(ref) > 64 || len(orderNo) > 32 {
		fantianReply(w, http.StatusOK, fantianBadParam, "参数错误")
		return
	}
	if platform != acct.Key("merchant_id") {
		fantianReply(w, http.StatusOK, fantianNoMerchant, "商户不存在")
		return
	}
	params := map[string]string{"platform_id": platform, "payment_cl_id": orderNo, "payment_reference": ref}
	if !equalFold(sign, fantian.Sign(params, acct.Key("secret"), acct.Key("sign_rule"))) || !validHex(sign) {
		s.badSignature(acct.Provider)
		fantianReply(w, http.StatusOK, fantianBadSign, "验签错误!")
		return
	}
	ord := s.find(OrderID(acct.Provider, acct.ID, events.KindPayin, orderNo))
	if ord == nil {
		fantianReply(w, http.StatusOK, fantianNoOrder, "订单不存在")
		return
	}
	if !s.queryFaults(w, r, ord, func() { fantianReply(w, http.StatusInternalServerError, fantianSystem, "系统错误") }) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case ord.payType != "SVC0031":
		fantianReply(w, http.StatusOK, fantianService, "该订单不支持UTR匹配")
	case s.byRef[ref] != "" && s.byRef[ref] != ord.o.ID:
		fantianReply(w, http.StatusOK, fantianRefUsed, "流水号已被使用")
	case ord.o.Matched == ref:
		fantianReply(w, http.StatusOK, fantianOK, "")
	case ord.o.Matched != "" || ord.o.Outcome != Succeeded || ord.o.Reference != ref:
		fantianReply(w, http.StatusOK, fantianNoMatch, "流水号不匹配")
	default:
		ord.o.Matched = ref
		ord.o.Status = Succeeded
		ord.providerStamp = time.Now()
		s.byRef[ref] = ord.o.ID
		fantianReply(w, http.StatusOK, fantianOK, "")
	}
}
