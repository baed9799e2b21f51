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
