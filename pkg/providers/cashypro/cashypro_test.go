package cashypro_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/internal/vectorstest"
	"github.com/payhook/payhook/pkg/providers/providertest"
)

// Requests are built here with hand-written JSON and crypto/md5; the
// package's Sign is only compared against them, never used to build them.

const secret = "cashy-secret"

var (
	receivedAt = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	acct       = providers.Account{ID: "cp-in", Provider: "cashypro", Keys: providers.Keys{"merchant_id": "1002001", "secret": secret}, Currency: "IDR"}
)

// seedBody is the seed's notification example, byte for byte.
const seedBody = `{"amount":20000.00,"completionTime":"2024-12-02 12:07:06","fee":2500.0000,"mchOrderNo":"1386503284355244033","merchantId":"1002001","nonceStr":"1733116026894","orderNo":"PAYIN8551790545658687488","orderStatus":"SUCCESS","payCode":"OR.GPNQR..INOPROID_BS","payType":"41","payUrl":"https://payurl.com"}`

// testSign is an independent implementation of the assumed rule: decode
// with json.Number (which keeps a number's text), drop null and "", sort,
// join, append &key=, MD5.
func testSign(tb testing.TB, body, key string, upper bool) string {
	tb.Helper()
	s, ok := testSigningString(body, key, false)
	if !ok {
		tb.Fatalf("testSign: body is not a flat JSON object: %s", body)
	}
	sum := md5.Sum([]byte(s))
	h := hex.EncodeToString(sum[:])
	if upper {
		h = strings.ToUpper(h)
	}
	return h
}

// testSignRule is the test's own reading of each sign_rule in
// docs/config.md: the string, then the hex case.
func testSignRule(tb testing.TB, body, key, rule string) string {
	tb.Helper()
	var s string
	ok := true
	switch strings.TrimSuffix(strings.TrimSuffix(rule, "-upper"), "-lower") {
	case "", "default", "sorted":
		s, ok = testSigningString(body, key, false)
	case "sorted-empty":
		s, ok = testSigningString(body, key, true)
	case "body":
		s = body + key
	default:
		tb.Fatalf("testSignRule: no rule %q", rule)
	}
	if !ok {
		tb.Fatalf("testSignRule: body is not a flat JSON object: %s", body)
	}
	return hexMD5(s, !strings.HasSuffix(rule, "-lower"))
}

// testSigningString drops null always and "" unless keepEmpty.
func testSigningString(body, key string, keepEmpty bool) (string, bool) {
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return "", false
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		var v string
		switch x := m[k].(type) {
		case nil:
			continue
		case string:
			v = x
		case json.Number:
			v = string(x)
		case bool:
			v = fmt.Sprint(x)
		default:
			return "", false
		}
		if v == "" && !keepEmpty {
			continue
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(append(parts, "key="+key), "&"), true
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h[kv[i]] = append(h[kv[i]], kv[i+1]) // raw keys on purpose: no canonicalization
	}
	return h
}

func signed(tb testing.TB, body string) providers.Request {
	tb.Helper()
	return providers.Request{
		Kind:       events.KindPayin,
		Header:     hdr("MerchantId", "1002001", "Sign", testSign(tb, body, secret, true), "Content-Type", "application/json"),
		Body:       []byte(body),
		ReceivedAt: receivedAt,
	}
}

func seedFields() map[string]any {
	return map[string]any{
		"amount": "20000.00", "completionTime": "2024-12-02 12:07:06", "fee": "2500.0000",
		"mchOrderNo": "1386503284355244033", "merchantId": "1002001", "nonceStr": "1733116026894",
		"orderNo": "PAYIN8551790545658687488", "orderStatus": "SUCCESS", "payCode": "OR.GPNQR..INOPROID_BS",
		"payType": "41", "payUrl": "https://payurl.com",
	}
}

func seedEvent() events.Event {
	return events.Event{
		Provider: "cashypro", Account: "cp-in", Kind: events.KindPayin, Status: events.StatusSucceeded,
		MerchantOrderID: "1386503284355244033", ProviderOrderID: "PAYIN8551790545658687488",
		Amount:         events.Money{Value: "20000.00", Currency: "IDR"},
		OccurredAt:     time.Date(2024, 12, 2, 5, 7, 6, 0, time.UTC), // 12:07:06 WIB (UTC+7)
		SignedAt:       time.Date(2024, 12, 2, 5, 7, 6, 0, time.UTC), // completionTime is signed
		ReceivedAt:     receivedAt,
		Origin:         events.OriginCallback,
		ProviderFields: seedFields(),
	}
}

func validCases(t *testing.T) []providertest.Valid {
	lowerHeaders := signed(t, seedBody)
	lowerHeaders.Header = hdr("merchantid", "1002001", "sign", strings.ToLower(testSign(t, seedBody, secret, true)))

	failBody := `{"amount":150000,"channelOrderNo":"CH-9912","completionTime":null,"fee":0.0000,"mchOrderNo":"M-2","merchantId":1002001,"nonceStr":"n2","orderNo":"PAYIN2","orderStatus":"FAIL","payCode":"","payType":"43","payUrl":"https://m.dana.id/x"}`
	lowerRule := acct
	lowerRule = lowerRule.With("sign_rule", "sorted-lower")
	failReq := signed(t, failBody)
	failReq.Header = hdr("MERCHANTID", "1002001", "SIGN", testSign(t, failBody, secret, false))

	unicodeBody := `{"amount":"10000.5","completionTime":"","mchOrderNo":"订单-ünï-1","merchantId":"1002001","nonceStr":"n3","orderNo":"PAYIN3","orderStatus":"PAYING","payCode":"QRIS–Ünïcode 支付 \u00e9","payType":"41","realName":"Reza Wijaya Ñandú"}`

	return []providertest.Valid{
		{Name: "seed notification, canonical headers", Account: acct, Request: signed(t, seedBody), Want: seedEvent()},
		{Name: "raw lower-case header names, lower-case sign", Account: acct, Request: lowerHeaders, Want: seedEvent()},
		{
			Name: "upper-case header names, sorted-lower rule, FAIL, numeric merchantId", Account: lowerRule, Request: failReq,
			Want: events.Event{
				Provider: "cashypro", Account: "cp-in", Kind: events.KindPayin, Status: events.StatusFailed,
				MerchantOrderID: "M-2", ProviderOrderID: "PAYIN2", Reference: "CH-9912",
				Amount:     events.Money{Value: "150000", Currency: "IDR"},
				OccurredAt: receivedAt, ReceivedAt: receivedAt, Origin: events.OriginCallback,
				ProviderFields: map[string]any{"amount": "150000", "channelOrderNo": "CH-9912", "completionTime": nil,
					"fee": "0.0000", "mchOrderNo": "M-2", "merchantId": "1002001", "nonceStr": "n2", "orderNo": "PAYIN2",
					"orderStatus": "FAIL", "payCode": "", "payType": "43", "payUrl": "https://m.dana.id/x"},
			},
		},
		{
			Name: "unicode names, PAYING, string amount", Account: acct, Request: signed(t, unicodeBody),
			Want: events.Event{
				Provider: "cashypro", Account: "cp-in", Kind: events.KindPayin, Status: events.StatusPending,
				MerchantOrderID: "订单-ünï-1", ProviderOrderID: "PAYIN3",
				Amount:     events.Money{Value: "10000.5", Currency: "IDR"},
				OccurredAt: receivedAt, ReceivedAt: receivedAt, Origin: events.OriginCallback,
				ProviderFields: map[string]any{"amount": "10000.5", "completionTime": "", "mchOrderNo": "订单-ünï-1",
					"merchantId": "1002001", "nonceStr": "n3", "orderNo": "PAYIN3", "orderStatus": "PAYING",
					"payCode": "QRIS–Ünïcode 支付 é", "payType": "41", "realName": "Reza Wijaya Ñandú"},
			},
		},
	}
}

// tamperedCases changes one value of the seed body at a time and keeps the
// seed's signature: every change must break it, including a respelling of
// the same number (20000.00 → 20000.0), since the rule signs digits as written.
func tamperedCases(t *testing.T) []providertest.Invalid {
	sign := testSign(t, seedBody, secret, true)
	swaps := []struct{ name, from, to string }{
		{"amount", `20000.00`, `20000.01`},
		{"amount respelled", `20000.00`, `20000.0`},
		{"amount as exponent", `20000.00`, `2e4`},
		{"completionTime", `12:07:06`, `12:07:07`},
		{"fee", `2500.0000`, `2500.000`},
		{"mchOrderNo", `1386503284355244033`, `1386503284355244034`},
		{"nonceStr", `1733116026894`, `1733116026895`},
		{"orderNo", `PAYIN8551790545658687488`, `PAYIN8551790545658687489`},
		{"orderStatus", `"SUCCESS"`, `"FAIL"`},
		{"payCode", `INOPROID`, `INOPROIE`},
		{"payType", `"41"`, `"42"`},
		{"payUrl", `payurl.com`, `payur1.com`},
		{"field added", `"payUrl"`, `"channelOrderNo":"X","payUrl"`},
		{"field removed", `"payType":"41",`, ``},
	}
	var out []providertest.Invalid
	for _, s := range swaps {
		body := strings.Replace(seedBody, s.from, s.to, 1)
		if body == seedBody {
			t.Fatalf("swap %q does not apply", s.name)
		}
		r := signed(t, seedBody)
		r.Body = []byte(body)
		r.Header = hdr("MerchantId", "1002001", "Sign", sign)
		out = append(out, providertest.Invalid{Name: "tampered " + s.name, Account: acct, Request: r, Sentinel: providers.ErrSignature, Reason: "bad_signature"})
	}
	return out
}

func invalidCases(t *testing.T) []providertest.Invalid {
	with := func(body string, mod func(*providers.Request)) providers.Request {
		r := signed(t, body)
		if mod != nil {
			mod(&r)
		}
		return r
	}
	setHdr := func(kv ...string) func(*providers.Request) {
		return func(r *providers.Request) { r.Header = hdr(kv...) }
	}
	seedSign := testSign(t, seedBody, secret, true)
	repl := func(from, to string) string {
		b := strings.Replace(seedBody, from, to, 1)
		if b == seedBody {
			t.Fatalf("replace %q does not apply", from)
		}
		return b
	}
	other := acct
	other = other.With("merchant_id", "1002002")
	badRule := acct
	badRule = badRule.With("sign_rule", "sha256")
	huge := strings.Repeat("9", 400) + ".00"

	cases := []providertest.Invalid{
		{Name: "wrong key", Account: acct, Request: with(seedBody, setHdr("MerchantId", "1002001", "Sign", testSign(t, seedBody, "other-secret", true))), Sentinel: providers.ErrSignature, Reason: "bad_signature"},
		{Name: "sign missing", Account: acct, Request: with(seedBody, setHdr("MerchantId", "1002001")), Sentinel: providers.ErrSignature, Reason: "bad_signature"},
		{Name: "sign not hex", Account: acct, Request: with(seedBody, setHdr("MerchantId", "1002001", "Sign", strings.Repeat("Z", 32))), Reason: "bad_signature"},
		{Name: "sign truncated", Account: acct, Request: with(seedBody, setHdr("MerchantId", "1002001", "Sign", seedSign[:31])), Reason: "bad_signature"},
		{Name: "sign placeholder from the seed", Account: acct, Request: with(seedBody, setHdr("MerchantId", "1002001", "Sign", "A6FC73F7D22EC8B4A064C8FFCC592CBF")), Reason: "bad_signature"},
		{Name: "sign repeated", Account: acct, Request: with(seedBody, setHdr("MerchantId", "1002001", "Sign", seedSign, "sign", "00000000000000000000000000000000")), Reason: "malformed"},
		{Name: "merchant header missing", Account: acct, Request: with(seedBody, setHdr("Sign", seedSign)), Reason: "missing_field"},
		{Name: "merchant header mismatch", Account: acct, Request: with(seedBody, setHdr("MerchantId", "1002002", "Sign", seedSign)), Sentinel: providers.ErrAccount, Reason: "account_mismatch"},
		{Name: "account mismatch", Account: other, Request: with(seedBody, setHdr("MerchantId", "1002002", "Sign", seedSign)), Sentinel: providers.ErrAccount, Reason: "account_mismatch"},
		{Name: "body merchantId differs from header", Account: acct, Request: with(repl(`"merchantId":"1002001"`, `"merchantId":"1002002"`), nil), Sentinel: providers.ErrAccount, Reason: "account_mismatch"},
		{Name: "body merchantId missing", Account: acct, Request: with(repl(`"merchantId":"1002001",`, ``), nil), Reason: "missing_field"},
		{Name: "unknown sign rule", Account: badRule, Request: with(seedBody, nil), Reason: providers.ReasonBadConfig},
		{Name: "empty body", Account: acct, Request: with(seedBody, func(r *providers.Request) { r.Body = nil }), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "latin-1 bytes", Account: acct, Request: with(seedBody, func(r *providers.Request) { r.Body = []byte(strings.Replace(seedBody, "payurl", "pay\xfcrl", 1)) }), Reason: "malformed"},
		{Name: "form encoded", Account: acct, Request: with(seedBody, func(r *providers.Request) { r.Body = []byte("amount=20000.00&merchantId=1002001") }), Reason: "malformed"},
		{Name: "JSON array", Account: acct, Request: with(seedBody, func(r *providers.Request) { r.Body = []byte(`[` + seedBody + `]`) }), Reason: "malformed"},
		{Name: "data after the object", Account: acct, Request: with(seedBody, func(r *providers.Request) { r.Body = []byte(seedBody + `{}`) }), Reason: "malformed"},
		{Name: "duplicate keys", Account: acct, Request: with(seedBody, func(r *providers.Request) {
			r.Body = []byte(strings.Replace(seedBody, `"amount":20000.00,`, `"amount":20000.00,"amount":1.00,`, 1))
		}), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "body too large", Account: acct, Request: with(seedBody, func(r *providers.Request) {
			r.Body = []byte(`{"pad":"` + strings.Repeat("x", cashypro.MaxBody) + `"}`)
		}), Reason: "malformed"},
		{Name: "400-digit amount", Account: acct, Request: with(repl(`20000.00`, huge), nil), Sentinel: providers.ErrMalformed, Reason: "bad_amount"},
		{Name: "exponent amount", Account: acct, Request: with(repl(`20000.00`, `2e4`), nil), Reason: "bad_amount"},
		{Name: "negative amount", Account: acct, Request: with(repl(`20000.00`, `-20000.00`), nil), Reason: "bad_amount"},
		{Name: "amount with thousands separator", Account: acct, Request: with(repl(`20000.00`, `"20.000,00"`), nil), Reason: "bad_amount"},
		{Name: "amount null", Account: acct, Request: with(repl(`20000.00`, `null`), nil), Reason: "missing_field"},
		{Name: "amount object", Account: acct, Request: with(seedBody, func(r *providers.Request) {
			b := strings.Replace(seedBody, `20000.00`, `{"v":1}`, 1)
			r.Body = []byte(b)
			// Sign it by hand: the nested object is signed as its JSON text.
			s := "amount={\"v\":1}&completionTime=2024-12-02 12:07:06&fee=2500.0000&mchOrderNo=1386503284355244033&merchantId=1002001&nonceStr=1733116026894&orderNo=PAYIN8551790545658687488&orderStatus=SUCCESS&payCode=OR.GPNQR..INOPROID_BS&payType=41&payUrl=https://payurl.com&key=" + secret
			sum := md5.Sum([]byte(s))
			r.Header = hdr("MerchantId", "1002001", "Sign", hex.EncodeToString(sum[:]))
		}), Reason: "malformed"},
		{Name: "orderStatus unknown", Account: acct, Request: with(repl(`"SUCCESS"`, `"REFUNDED"`), nil), Reason: "bad_status"},
		{Name: "orderStatus lower case", Account: acct, Request: with(repl(`"SUCCESS"`, `"success"`), nil), Reason: "bad_status"},
		{Name: "orderStatus missing", Account: acct, Request: with(repl(`"orderStatus":"SUCCESS",`, ``), nil), Reason: "missing_field"},
		{Name: "mchOrderNo missing", Account: acct, Request: with(repl(`"mchOrderNo":"1386503284355244033",`, ``), nil), Reason: "missing_field"},
		{Name: "wrong kind", Account: acct, Request: with(seedBody, func(r *providers.Request) { r.Kind = events.KindPayout }), Sentinel: providers.ErrKind, Reason: "wrong_kind"},
	}
	return append(cases, tamperedCases(t)...)
}

func TestConformance(t *testing.T) {
	providertest.Run(t, cashypro.New(), validCases(t), invalidCases(t))
}

// TestEquivalentSpellings: the rule signs a value's text, so spellings
// with the same text sign alike and verify under the seed's signature: a
// string escaped differently, a number quoted, a string id unquoted. Each
// decodes to the same event as the seed; none changes a value.
func TestEquivalentSpellings(t *testing.T) {
	for _, c := range []struct{ name, from, to string }{
		{"escaped string", `"payType":"41"`, `"payType":"\u0034\u0031"`},
		{"amount quoted", `20000.00`, `"20000.00"`},
		{"merchantId unquoted", `"merchantId":"1002001"`, `"merchantId":1002001`},
		{"whitespace between tokens", `,"fee":`, ` , "fee" : `},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := signed(t, seedBody)
			r.Body = []byte(strings.Replace(seedBody, c.from, c.to, 1))
			got, err := cashypro.New().Parse(acct, r)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := seedEvent()
			if got.Amount != want.Amount || got.MerchantOrderID != want.MerchantOrderID || got.Status != want.Status ||
				got.ProviderFields["payType"] != "41" || got.ProviderFields["merchantId"] != "1002001" {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestSign(t *testing.T) {
	cases := []struct {
		name, body, rule, want string
	}{
		{"seed default", seedBody, "", testSign(t, seedBody, secret, true)},
		{"seed default named", seedBody, "default", testSign(t, seedBody, secret, true)},
		{"seed sorted-upper", seedBody, "sorted-upper", testSign(t, seedBody, secret, true)},
		{"seed sorted-lower", seedBody, "sorted-lower", testSign(t, seedBody, secret, false)},
		{"query request from the seed", `{"mchOrderNo":"1386556575370063873","nonceStr":"9459931608","orderNo":"PAYIN8551843837024997376"}`, "",
			hexMD5("mchOrderNo=1386556575370063873&nonceStr=9459931608&orderNo=PAYIN8551843837024997376&key="+secret, true)},
		{"nulls, empties and booleans", `{"b":null,"a":"","c":false,"d":"x","e":0}`, "", hexMD5("c=false&d=x&e=0&key="+secret, true)},
		{"keys sorted bytewise", `{"b":"1","B":"2","a":"3"}`, "", hexMD5("B=2&a=3&b=1&key="+secret, true)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := cashypro.Sign([]byte(c.body), secret, c.rule)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if got != c.want {
				t.Errorf("Sign = %s, want %s", got, c.want)
			}
		})
	}
	for _, bad := range []struct{ name, body, rule string }{
		{"unknown rule", seedBody, "md5"},
		{"duplicate keys", `{"a":"1","a":"2"}`, ""},
		{"not an object", `[1]`, ""},
		{"not UTF-8", "{\"a\":\"\xff\"}", ""},
	} {
		t.Run("error/"+bad.name, func(t *testing.T) {
			if _, err := cashypro.Sign([]byte(bad.body), secret, bad.rule); err == nil {
				t.Error("no error")
			}
		})
	}
	if !cashypro.ValidRule("") || !cashypro.ValidRule("sorted-lower") || cashypro.ValidRule("SORTED-LOWER") {
		t.Error("ValidRule")
	}
	if _, err := cashypro.Sign([]byte(seedBody), secret, "x"); !errors.Is(err, cashypro.ErrSignRule) {
		t.Errorf("unknown rule error %v does not wrap ErrSignRule", err)
	}
}

func hexMD5(s string, upper bool) string {
	sum := md5.Sum([]byte(s))
	h := hex.EncodeToString(sum[:])
	if upper {
		return strings.ToUpper(h)
	}
	return h
}

type vector struct {
	Name, Key, Body, Sign string
}

// TestVectors reproduces every cashypro vector (computed outside the project with Python).
func TestVectors(t *testing.T) {
	for _, v := range vectorstest.Local[vector](t, "cashypro") {
		t.Run(v.Name, func(t *testing.T) {
			if got := testSign(t, v.Body, v.Key, true); got != v.Sign {
				t.Fatalf("the test's own signer gives %s, vector says %s", got, v.Sign)
			}
			got, err := cashypro.Sign([]byte(v.Body), v.Key, "")
			if err != nil || got != v.Sign {
				t.Errorf("Sign = %s, %v; want %s", got, err, v.Sign)
			}
			a := acct
			a = a.With("secret", v.Key)
			r := providers.Request{Kind: events.KindPayin, Header: hdr("MerchantId", "1002001", "Sign", v.Sign), Body: []byte(v.Body), ReceivedAt: receivedAt}
			ev, err := cashypro.New().Parse(a, r)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ev.Amount.Value != "20000.00" || ev.ProviderFields["fee"] != "2500.0000" {
				t.Errorf("amount %s fee %v: digits not kept as written", ev.Amount.Value, ev.ProviderFields["fee"])
			}
		})
	}
}

func TestVectorsMatchShared(t *testing.T) {
	vectorstest.Shared[vector](t, "cashypro") // errors when testdata/vectors.json differs from it
}

// TestHeaderLookup: net/http canonical names and raw map keys both work.
func TestHeaderLookup(t *testing.T) {
	sign := testSign(t, seedBody, secret, true)
	canonical := http.Header{}
	canonical.Set("merchantid", "1002001") // stored as "Merchantid"
	canonical.Set("SIGN", sign)            // stored as "Sign"
	cases := map[string]http.Header{
		"canonicalized by net/http": canonical,
		"seed spelling, raw":        hdr("MerchantId", "1002001", "Sign", sign),
		"lower case, raw":           hdr("merchantid", "1002001", "sign", sign),
		"upper case, raw":           hdr("MERCHANTID", "1002001", "SIGN", sign),
		"padded values":             hdr("MerchantId", " 1002001 ", "Sign", " "+sign+" "),
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			r := signed(t, seedBody)
			r.Header = h
			if _, err := cashypro.New().Parse(acct, r); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}

func TestAck(t *testing.T) {
	r := cashypro.New().Ack(events.KindPayin)
	if r.Status != 200 || !bytes.Equal(r.Body, []byte("success")) {
		t.Errorf("Ack = %+v", r)
	}
}

func TestVerifyThenEvent(t *testing.T) {
	if _, err := (&cashypro.Callback{}).Event(); err == nil {
		t.Error("zero Callback decoded")
	}
	r := signed(t, seedBody)
	r.Header = hdr("MerchantId", "1002001", "Sign", strings.Repeat("0", 32))
	_, err := cashypro.New().Parse(acct, r)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, leak := range []string{secret, testSign(t, seedBody, secret, true), "payurl"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q leaks %q", err, leak)
		}
	}
}

// An unreadable completionTime does not refuse a verified payment: the
// event's occurred_at falls back to when it was received.
func TestUnreadableCompletionTimeFallsBackToReceived(t *testing.T) {
	p := cashypro.New()
	// An unreadable format, and a readable one whose UTC year (-1) no JSON
	// reader could parse back.
	for _, when := range []string{`2024-12-02T12:07:06Z`, `0000-01-01 00:00:00`} {
		req := signed(t, strings.Replace(seedBody, `2024-12-02 12:07:06`, when, 1))
		ev, err := p.Parse(acct, req)
		if err != nil {
			t.Fatalf("%s: Parse: %v", when, err)
		}
		if !ev.OccurredAt.Equal(req.ReceivedAt) {
			t.Errorf("%s: occurred_at %s, want received_at %s", when, ev.OccurredAt, req.ReceivedAt)
		}
		if _, err := ev.MarshalCloudEvent(); err != nil {
			t.Errorf("%s: %v", when, err)
		}
	}
}

// allRules is every sign_rule docs/config.md lists for cashypro.
var allRules = []string{"default", "sorted-upper", "sorted-lower", "sorted-empty-upper", "sorted-empty-lower", "body-upper", "body-lower"}

// ruleBody has a null (skipped by every sorted rule) and an empty payCode
// (skipped by sorted-*, signed by sorted-empty-*), so that each rule's
// string differs from the others'.
const ruleBody = `{"amount":20000.00,"channelOrderNo":null,"completionTime":"2024-12-02 12:07:06","fee":2500.0000,"mchOrderNo":"1386503284355244033","merchantId":"1002001","nonceStr":"1733116026894","orderNo":"PAYIN8551790545658687488","orderStatus":"SUCCESS","payCode":"","payType":"41","payUrl":"https://payurl.com"}`

// ruleStrings are the strings each rule family hashes for ruleBody,
// written out by hand.
var ruleStrings = map[string]string{
	"sorted":       "amount=20000.00&completionTime=2024-12-02 12:07:06&fee=2500.0000&mchOrderNo=1386503284355244033&merchantId=1002001&nonceStr=1733116026894&orderNo=PAYIN8551790545658687488&orderStatus=SUCCESS&payType=41&payUrl=https://payurl.com&key=" + secret,
	"sorted-empty": "amount=20000.00&completionTime=2024-12-02 12:07:06&fee=2500.0000&mchOrderNo=1386503284355244033&merchantId=1002001&nonceStr=1733116026894&orderNo=PAYIN8551790545658687488&orderStatus=SUCCESS&payCode=&payType=41&payUrl=https://payurl.com&key=" + secret,
	"body":         ruleBody + secret,
}

// family is the string part of a rule name; upper its hex case.
func family(rule string) (string, bool) {
	if rule == "default" {
		return "sorted", true
	}
	return strings.TrimSuffix(strings.TrimSuffix(rule, "-upper"), "-lower"), strings.HasSuffix(rule, "-upper")
}

func TestSignRules(t *testing.T) {
	if !slices.Equal(cashypro.Rules, allRules) {
		t.Fatalf("cashypro.Rules = %v, docs/config.md lists %v", cashypro.Rules, allRules)
	}
	for _, rule := range allRules {
		t.Run("Sign/"+rule, func(t *testing.T) {
			fam, upper := family(rule)
			want := hexMD5(ruleStrings[fam], upper)
			got, err := cashypro.Sign([]byte(ruleBody), secret, rule)
			if err != nil || got != want {
				t.Fatalf("Sign = %s %v, want %s (MD5 of %q)", got, err, want, ruleStrings[fam])
			}
			if want != testSignRule(t, ruleBody, secret, rule) {
				t.Fatal("the test's two readings of the rule disagree")
			}
		})
	}
	// The three strings differ, so no rule's signature passes another's check.
	if ruleStrings["sorted"] == ruleStrings["sorted-empty"] {
		t.Fatal("ruleBody does not tell sorted from sorted-empty")
	}
	p := cashypro.New()
	req := func(sign string) providers.Request {
		return providers.Request{Kind: events.KindPayin, Header: hdr("MerchantId", "1002001", "Sign", sign), Body: []byte(ruleBody), ReceivedAt: receivedAt}
	}
	for _, rule := range allRules {
		a := acct
		a = a.With("sign_rule", rule)
		fam, _ := family(rule)
		t.Run("Verify/"+rule, func(t *testing.T) {
			for _, sent := range allRules {
				sentFam, upper := family(sent)
				sign := hexMD5(ruleStrings[sentFam], upper)
				_, err := p.Parse(a, req(sign))
				switch {
				case sentFam == fam && err != nil:
					t.Errorf("signed under %s: refused: %v", sent, err)
				case sentFam != fam && (providers.ReasonOf(err) != "bad_signature" || !errors.Is(err, providers.ErrSignature)):
					t.Errorf("signed under %s: %v, want bad_signature", sent, err)
				}
			}
			// One value changed under the rule's own signature: refused.
			r := req(hexMD5(ruleStrings[fam], true))
			r.Body = []byte(strings.Replace(ruleBody, `"payCode":""`, `"payCode":"X"`, 1))
			if _, err := p.Parse(a, r); providers.ReasonOf(err) != "bad_signature" {
				t.Errorf("tampered payCode: %v, want bad_signature", err)
			}
		})
	}
	// Only the body rule signs the bytes: a respelling that the sorted
	// rules accept (TestEquivalentSpellings) breaks it.
	respelled := strings.Replace(ruleBody, `,"fee":`, ` , "fee" : `, 1)
	for _, rule := range []string{"body-upper", "body-lower"} {
		a := acct
		a = a.With("sign_rule", rule)
		r := req(hexMD5(ruleBody+secret, true))
		r.Body = []byte(respelled)
		if _, err := p.Parse(a, r); providers.ReasonOf(err) != "bad_signature" {
			t.Errorf("%s, respelled body: %v, want bad_signature", rule, err)
		}
		r.Header = hdr("MerchantId", "1002001", "Sign", hexMD5(respelled+secret, false))
		if _, err := p.Parse(a, r); err != nil {
			t.Errorf("%s, respelled body signed as sent: %v", rule, err)
		}
	}
}
