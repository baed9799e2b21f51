package jpglo_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/providertest"
)

// seedKey is the merchant key the seed publishes with its examples.
const seedKey = "9ce23be4-a31b-498f-b951-ad7e771c3d73"

var (
	acct = providers.Account{
		ID: "glo-in", Provider: "jpglo", Keys: providers.Keys{"merchant_id": "1", "secret": seedKey},
		BaseURL: "http://jpglo.invalid", Currency: "BRL",
	}
	received = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
)

// The seed's payment callback ("支付回调"), byte for byte as the seed prints it.
const seedPayment = `{
    "order_no": "2202171238501159",
    "mch_order_no": "111123456789",
    "status": "success",
    "apply_amount": 10000000,
    "real_amount": 10000000,
    "pay_type": "pix",
    "sub_pay_type": null,
    "remark": null,
    "timestamp": 1656945134,
    "sign": "DCB154D0C14F1B8803B1224A8DCC82D1"
}`

// The seed's appeal callback ("申诉回调").
const seedAppeal = `{
    "mch_order_no": "1234567890",
    "order_no": "2203240014034824",
    "mch_inquiry_no": "111234567890",
    "inquiry_order_no": "2205041133420031",
    "status": "success",
    "inquiry_amount": 1000000,
    "user_remark": "I've paid!",
    "reason": "已完成充值",
    "timestamp": 1651648963,
    "sign": "FE4117A73E8EA77784DE4FFF1FDAD64B"
}`

// md5Upper is the test's own implementation of the seed's last step.
func md5Upper(s string) string {
	sum := md5.Sum([]byte(s))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// signed fills the one %s in body with the MD5 of the hand-written signing
// string plain+"&key="+key.
func signed(body, plain, key string) []byte {
	return []byte(fmt.Sprintf(body, md5Upper(plain+"&key="+key)))
}

func req(kind events.Kind, body []byte) providers.Request {
	return providers.Request{Kind: kind, Body: body, ReceivedAt: received, RemoteAddr: "203.0.113.7:5000"}
}

func money(v string) events.Money { return events.MustMoney(v, "BRL") }
func pmoney(v string) *events.Money {
	m := money(v)
	return &m
}

// Hand-written payment callback where the user paid less than asked.
const (
	shortBody  = `{"order_no":"2202171238501160","mch_order_no":"M-2","status":"success","apply_amount":10000000,"real_amount":9999900,"pay_type":"pix","remark":"","user_ext":"{\"user_id\":\"123456\"}","timestamp":1656945200,"sign":"%s"}`
	shortPlain = `apply_amount=10000000&mch_order_no=M-2&order_no=2202171238501160&pay_type=pix&real_amount=9999900&remark=&status=success&timestamp=1656945200&user_ext={"user_id":"123456"}`
)

func TestConformance(t *testing.T) {
	p := jpglo.New()
	valid := []providertest.Valid{
		{
			Name:    "seed payment callback",
			Account: acct,
			Request: req(events.KindPayin, []byte(seedPayment)),
			Want: events.Event{
				Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusSucceeded,
				MerchantOrderID: "111123456789", ProviderOrderID: "2202171238501159",
				Amount: money("100000.00"), RequestedAmount: pmoney("100000.00"),
				OccurredAt: time.Unix(1656945134, 0).UTC(), SignedAt: time.Unix(1656945134, 0).UTC(), ReceivedAt: received, Origin: events.OriginCallback,
				ProviderFields: map[string]any{
					"order_no": "2202171238501159", "mch_order_no": "111123456789", "status": "success",
					"apply_amount": json.Number("10000000"), "real_amount": json.Number("10000000"),
					"pay_type": "pix", "sub_pay_type": nil, "remark": nil, "timestamp": json.Number("1656945134"),
				},
			},
		},
		{
			Name:    "seed appeal callback",
			Account: acct,
			Request: req(events.KindAppeal, []byte(seedAppeal)),
			Want: events.Event{
				Provider: "jpglo", Account: "glo-in", Kind: events.KindAppeal, Status: events.StatusSucceeded,
				MerchantOrderID: "1234567890", ProviderOrderID: "2203240014034824", IdempotencyKey: "111234567890",
				Reference: "2205041133420031", Amount: money("10000.00"),
				OccurredAt: time.Unix(1651648963, 0).UTC(), SignedAt: time.Unix(1651648963, 0).UTC(), ReceivedAt: received, Origin: events.OriginCallback,
				ProviderFields: map[string]any{
					"mch_order_no": "1234567890", "order_no": "2203240014034824", "mch_inquiry_no": "111234567890",
					"inquiry_order_no": "2205041133420031", "status": "success", "inquiry_amount": json.Number("1000000"),
					"user_remark": "I've paid!", "reason": "已完成充值", "timestamp": json.Number("1651648963"),
				},
			},
		},
		{
			Name:    "paid less than asked",
			Account: acct,
			Request: req(events.KindPayin, signed(shortBody, shortPlain, seedKey)),
			Want: events.Event{
				Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusSucceeded,
				MerchantOrderID: "M-2", ProviderOrderID: "2202171238501160",
				Amount: money("99999.00"), RequestedAmount: pmoney("100000.00"), AmountMismatch: true,
				OccurredAt: time.Unix(1656945200, 0).UTC(), SignedAt: time.Unix(1656945200, 0).UTC(), ReceivedAt: received, Origin: events.OriginCallback,
				ProviderFields: map[string]any{
					"order_no": "2202171238501160", "mch_order_no": "M-2", "status": "success",
					"apply_amount": json.Number("10000000"), "real_amount": json.Number("9999900"), "pay_type": "pix",
					"remark": "", "user_ext": `{"user_id":"123456"}`, "timestamp": json.Number("1656945200"),
				},
			},
		},
		{
			Name:    "failed, real_amount null, mch_id present",
			Account: acct,
			Request: req(events.KindPayin, signed(
				`{"mch_id":1,"order_no":"O-3","mch_order_no":"M-3","status":"fail","apply_amount":500,"real_amount":null,"timestamp":1656945300,"sign":"%s"}`,
				`apply_amount=500&mch_id=1&mch_order_no=M-3&order_no=O-3&status=fail&timestamp=1656945300`, seedKey)),
			Want: events.Event{
				Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusFailed,
				MerchantOrderID: "M-3", ProviderOrderID: "O-3", Amount: money("5.00"), RequestedAmount: pmoney("5.00"),
				OccurredAt: time.Unix(1656945300, 0).UTC(), SignedAt: time.Unix(1656945300, 0).UTC(), ReceivedAt: received, Origin: events.OriginCallback,
				ProviderFields: map[string]any{
					"mch_id": json.Number("1"), "order_no": "O-3", "mch_order_no": "M-3", "status": "fail",
					"apply_amount": json.Number("500"), "real_amount": nil, "timestamp": json.Number("1656945300"),
				},
			},
		},
		{
			// Non-ASCII both raw and as a JSON escape: the signature is over the decoded text.
			Name:    "unicode names",
			Account: acct,
			Request: req(events.KindAppeal, signed(
				`{"mch_order_no":"M-4","order_no":"O-4","mch_inquiry_no":"Q-4","inquiry_order_no":"IQ-4","status":"fail","inquiry_amount":1,"user_remark":"Jos\u00e9 Müller 测试 😀","reason":"未收到款项","timestamp":1651648999,"sign":"%s"}`,
				`inquiry_amount=1&inquiry_order_no=IQ-4&mch_inquiry_no=Q-4&mch_order_no=M-4&order_no=O-4&reason=未收到款项&status=fail&timestamp=1651648999&user_remark=José Müller 测试 😀`, seedKey)),
			Want: events.Event{
				Provider: "jpglo", Account: "glo-in", Kind: events.KindAppeal, Status: events.StatusFailed,
				MerchantOrderID: "M-4", ProviderOrderID: "O-4", IdempotencyKey: "Q-4", Reference: "IQ-4", Amount: money("0.01"),
				OccurredAt: time.Unix(1651648999, 0).UTC(), SignedAt: time.Unix(1651648999, 0).UTC(), ReceivedAt: received, Origin: events.OriginCallback,
				ProviderFields: map[string]any{
					"mch_order_no": "M-4", "order_no": "O-4", "mch_inquiry_no": "Q-4", "inquiry_order_no": "IQ-4",
					"status": "fail", "inquiry_amount": json.Number("1"), "user_remark": "José Müller 测试 😀",
					"reason": "未收到款项", "timestamp": json.Number("1651648999"),
				},
			},
		},
	}

	// Payment callback template: every field but sign is fixed; the sign is
	// the seed's, so any change to a signed value must break it.
	tamper := func(old, new string) []byte {
		if !strings.Contains(seedPayment, old) {
			t.Fatalf("seed body lacks %q", old)
		}
		return []byte(strings.Replace(seedPayment, old, new, 1))
	}
	invalid := []providertest.Invalid{
		{Name: "wrong signature", Account: acct, Request: req(events.KindPayin, tamper(`"DCB154D0C14F1B8803B1224A8DCC82D1"`, `"DCB154D0C14F1B8803B1224A8DCC82D2"`)), Sentinel: providers.ErrSignature, Reason: "bad_signature"},
		{Name: "lower-case sign", Account: acct, Request: req(events.KindPayin, tamper(`"DCB154D0C14F1B8803B1224A8DCC82D1"`, `"dcb154d0c14f1b8803b1224a8dcc82d1"`)), Sentinel: providers.ErrSignature, Reason: "bad_signature"},
		{Name: "tampered order_no", Account: acct, Request: req(events.KindPayin, tamper(`"2202171238501159"`, `"2202171238501158"`)), Reason: "bad_signature"},
		{Name: "tampered mch_order_no", Account: acct, Request: req(events.KindPayin, tamper(`"111123456789"`, `"111123456788"`)), Reason: "bad_signature"},
		{Name: "tampered status", Account: acct, Request: req(events.KindPayin, tamper(`"success"`, `"fail"`)), Reason: "bad_signature"},
		{Name: "tampered apply_amount", Account: acct, Request: req(events.KindPayin, tamper(`"apply_amount": 10000000`, `"apply_amount": 10000001`)), Reason: "bad_signature"},
		{Name: "tampered real_amount", Account: acct, Request: req(events.KindPayin, tamper(`"real_amount": 10000000`, `"real_amount": 90000000`)), Reason: "bad_signature"},
		{Name: "amount as float", Account: acct, Request: req(events.KindPayin, tamper(`"real_amount": 10000000`, `"real_amount": 10000000.0`)), Reason: "bad_signature"},
		{Name: "tampered pay_type", Account: acct, Request: req(events.KindPayin, tamper(`"pix"`, `"upi"`)), Reason: "bad_signature"},
		{Name: "tampered timestamp", Account: acct, Request: req(events.KindPayin, tamper(`1656945134`, `1656945135`)), Reason: "bad_signature"},
		{Name: "null field given a value", Account: acct, Request: req(events.KindPayin, tamper(`"remark": null`, `"remark": ""`)), Reason: "bad_signature"},
		{Name: "signed field dropped", Account: acct, Request: req(events.KindPayin, tamper(`"pay_type": "pix",`, ``)), Reason: "bad_signature"},
		{Name: "field added", Account: acct, Request: req(events.KindPayin, tamper(`"remark": null,`, `"remark": null, "extra": 1,`)), Reason: "bad_signature"},
		{Name: "wrong key", Account: providers.Account{ID: "glo-in", Keys: providers.Keys{"merchant_id": "1", "secret": "9ce23be4-a31b-498f-b951-ad7e771c3d74"}, Currency: "BRL"}, Request: req(events.KindPayin, []byte(seedPayment)), Sentinel: providers.ErrSignature, Reason: "bad_signature"},
		{Name: "account without key", Account: providers.Account{ID: "glo-in", Keys: providers.Keys{"merchant_id": "1"}, Currency: "BRL"}, Request: req(events.KindPayin, []byte(seedPayment)), Sentinel: providers.ErrSignature, Reason: "no_key"},
		{Name: "truncated", Account: acct, Request: req(events.KindPayin, []byte(seedPayment[:len(seedPayment)-2])), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "empty body", Account: acct, Request: req(events.KindPayin, nil), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "whitespace body", Account: acct, Request: req(events.KindPayin, []byte(" \n")), Reason: "malformed"},
		{Name: "not JSON", Account: acct, Request: req(events.KindPayin, []byte(`mch_order_no=1&sign=X`)), Reason: "malformed"},
		{Name: "JSON array", Account: acct, Request: req(events.KindPayin, []byte("["+seedPayment+"]")), Reason: "malformed"},
		{Name: "JSON string", Account: acct, Request: req(events.KindPayin, []byte(`"x"`)), Reason: "malformed"},
		{Name: "JSON null", Account: acct, Request: req(events.KindPayin, []byte(`null`)), Reason: "malformed"},
		{Name: "trailing object", Account: acct, Request: req(events.KindPayin, []byte(seedPayment+"{}")), Reason: "malformed"},
		{Name: "trailing comma", Account: acct, Request: req(events.KindPayin, tamper(`"DCB154D0C14F1B8803B1224A8DCC82D1"`, `"DCB154D0C14F1B8803B1224A8DCC82D1",`)), Reason: "malformed"},
		{Name: "invalid UTF-8", Account: acct, Request: req(events.KindPayin, tamper(`"pix"`, "\"p\xffx\"")), Reason: "malformed"},
		{Name: "duplicate key, second differs", Account: acct, Request: req(events.KindPayin, tamper(`"status": "success",`, `"status": "success", "status": "fail",`)), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "duplicate key, same value", Account: acct, Request: req(events.KindPayin, tamper(`"status": "success",`, `"status": "success", "status": "success",`)), Reason: "malformed"},
		{Name: "duplicate sign", Account: acct, Request: req(events.KindPayin, tamper(`"timestamp": 1656945134,`, `"timestamp": 1656945134, "sign": "X",`)), Reason: "malformed"},
		{Name: "missing sign", Account: acct, Request: req(events.KindPayin, tamper(`,
    "sign": "DCB154D0C14F1B8803B1224A8DCC82D1"`, ``)), Sentinel: providers.ErrSignature, Reason: "missing_field"},
		{Name: "null sign", Account: acct, Request: req(events.KindPayin, tamper(`"DCB154D0C14F1B8803B1224A8DCC82D1"`, `null`)), Reason: "missing_field"},
		{Name: "numeric sign", Account: acct, Request: req(events.KindPayin, tamper(`"DCB154D0C14F1B8803B1224A8DCC82D1"`, `1`)), Reason: "malformed"},
		{Name: "wrong kind payout", Account: acct, Request: req(events.KindPayout, []byte(seedPayment)), Sentinel: providers.ErrKind, Reason: "wrong_kind"},
		{Name: "unknown kind", Account: acct, Request: req(events.Kind("refund"), []byte(seedPayment)), Sentinel: providers.ErrKind, Reason: "wrong_kind"},
		{Name: "appeal callback posted as payin", Account: acct, Request: req(events.KindPayin, []byte(seedAppeal)), Sentinel: providers.ErrKind, Reason: "wrong_kind"},
		{Name: "payment callback posted as appeal", Account: acct, Request: req(events.KindAppeal, []byte(seedPayment)), Reason: "missing_field"},
		{Name: "huge amount", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"O-5","mch_order_no":"M-5","status":"success","apply_amount":`+strings.Repeat("9", 400)+`,"timestamp":1656945134,"sign":"%s"}`,
			`apply_amount=`+strings.Repeat("9", 400)+`&mch_order_no=M-5&order_no=O-5&status=success&timestamp=1656945134`, seedKey)),
			Sentinel: events.ErrAmount, Reason: "bad_amount"},
		{Name: "huge real_amount", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"O-5","mch_order_no":"M-5","status":"success","apply_amount":1,"real_amount":1`+strings.Repeat("0", 399)+`,"timestamp":1656945134,"sign":"%s"}`,
			`apply_amount=1&mch_order_no=M-5&order_no=O-5&real_amount=1`+strings.Repeat("0", 399)+`&status=success&timestamp=1656945134`, seedKey)),
			Reason: "bad_amount"},
		{Name: "fractional amount", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"O-5","mch_order_no":"M-5","status":"success","apply_amount":100.5,"timestamp":1656945134,"sign":"%s"}`,
			`apply_amount=100.5&mch_order_no=M-5&order_no=O-5&status=success&timestamp=1656945134`, seedKey)),
			Reason: "bad_amount"},
		{Name: "negative amount", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"O-5","mch_order_no":"M-5","status":"success","apply_amount":-100,"timestamp":1656945134,"sign":"%s"}`,
			`apply_amount=-100&mch_order_no=M-5&order_no=O-5&status=success&timestamp=1656945134`, seedKey)),
			Reason: "bad_amount"},
		{Name: "amount as string", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"O-5","mch_order_no":"M-5","status":"success","apply_amount":"100","timestamp":1656945134,"sign":"%s"}`,
			`apply_amount=100&mch_order_no=M-5&order_no=O-5&status=success&timestamp=1656945134`, seedKey)),
			Reason: "bad_amount"},
		{Name: "huge appeal amount", Account: acct, Request: req(events.KindAppeal, signed(
			`{"mch_order_no":"M","order_no":"O","mch_inquiry_no":"Q","inquiry_order_no":"I","status":"success","inquiry_amount":`+strings.Repeat("1", 41)+`,"timestamp":1651648963,"sign":"%s"}`,
			`inquiry_amount=`+strings.Repeat("1", 41)+`&inquiry_order_no=I&mch_inquiry_no=Q&mch_order_no=M&order_no=O&status=success&timestamp=1651648963`, seedKey)),
			Reason: "bad_amount"},
		{Name: "huge timestamp", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"O-5","mch_order_no":"M-5","status":"success","apply_amount":1,"timestamp":1`+strings.Repeat("0", 300)+`,"sign":"%s"}`,
			`apply_amount=1&mch_order_no=M-5&order_no=O-5&status=success&timestamp=1`+strings.Repeat("0", 300), seedKey)),
			Reason: "malformed"},
		{Name: "status pending", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"O-5","mch_order_no":"M-5","status":"commit","apply_amount":1,"timestamp":1656945134,"sign":"%s"}`,
			`apply_amount=1&mch_order_no=M-5&order_no=O-5&status=commit&timestamp=1656945134`, seedKey)),
			Reason: "bad_status"},
		{Name: "missing mch_order_no", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"O-5","status":"success","apply_amount":1,"timestamp":1656945134,"sign":"%s"}`,
			`apply_amount=1&order_no=O-5&status=success&timestamp=1656945134`, seedKey)),
			Reason: "missing_field"},
		{Name: "empty order_no", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"","mch_order_no":"M-5","status":"success","apply_amount":1,"timestamp":1656945134,"sign":"%s"}`,
			`apply_amount=1&mch_order_no=M-5&order_no=&status=success&timestamp=1656945134`, seedKey)),
			Reason: "missing_field"},
		{Name: "numeric order id", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":5,"mch_order_no":"M-5","status":"success","apply_amount":1,"timestamp":1656945134,"sign":"%s"}`,
			`apply_amount=1&mch_order_no=M-5&order_no=5&status=success&timestamp=1656945134`, seedKey)),
			Reason: "malformed"},
		{Name: "missing status", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"O-5","mch_order_no":"M-5","apply_amount":1,"timestamp":1656945134,"sign":"%s"}`,
			`apply_amount=1&mch_order_no=M-5&order_no=O-5&timestamp=1656945134`, seedKey)),
			Reason: "missing_field"},
		{Name: "missing apply_amount", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"O-5","mch_order_no":"M-5","status":"success","real_amount":1,"timestamp":1656945134,"sign":"%s"}`,
			`mch_order_no=M-5&order_no=O-5&real_amount=1&status=success&timestamp=1656945134`, seedKey)),
			Reason: "missing_field"},
		{Name: "missing timestamp", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"O-5","mch_order_no":"M-5","status":"success","apply_amount":1,"sign":"%s"}`,
			`apply_amount=1&mch_order_no=M-5&order_no=O-5&status=success`, seedKey)),
			Reason: "missing_field"},
		{Name: "missing inquiry_order_no", Account: acct, Request: req(events.KindAppeal, signed(
			`{"mch_order_no":"M","order_no":"O","mch_inquiry_no":"Q","status":"success","inquiry_amount":1,"timestamp":1651648963,"sign":"%s"}`,
			`inquiry_amount=1&mch_inquiry_no=Q&mch_order_no=M&order_no=O&status=success&timestamp=1651648963`, seedKey)),
			Reason: "missing_field"},
		{Name: "other merchant", Account: acct, Request: req(events.KindPayin, signed(
			`{"mch_id":2,"order_no":"O-5","mch_order_no":"M-5","status":"success","apply_amount":1,"timestamp":1656945134,"sign":"%s"}`,
			`apply_amount=1&mch_id=2&mch_order_no=M-5&order_no=O-5&status=success&timestamp=1656945134`, seedKey)),
			Sentinel: providers.ErrAccount, Reason: "account_mismatch"},
		{Name: "nested object", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"O-5","mch_order_no":"M-5","status":"success","apply_amount":1,"user_ext":{"a":1},"timestamp":1656945134,"sign":"%s"}`,
			`apply_amount=1&mch_order_no=M-5&order_no=O-5&status=success&timestamp=1656945134&user_ext={'a': 1}`, seedKey)),
			Reason: "malformed"},
		{Name: "field name with separator", Account: acct, Request: req(events.KindPayin, signed(
			`{"order_no":"O-5","mch_order_no":"M-5","status":"success","apply_amount":1,"a=b":"c","timestamp":1656945134,"sign":"%s"}`,
			`a=b=c&apply_amount=1&mch_order_no=M-5&order_no=O-5&status=success&timestamp=1656945134`, seedKey)),
			Reason: "malformed"},
		{
			// Same signing string as the genuine "paid less" callback with
			// real_amount folded into pay_type: the sign verifies, and
			// without the guard the event would credit apply_amount.
			Name: "real_amount folded into pay_type", Account: acct,
			Request: req(events.KindPayin, signed(
				`{"order_no":"2202171238501160","mch_order_no":"M-2","status":"success","apply_amount":10000000,"pay_type":"pix&real_amount=9999900","remark":"","user_ext":"{\"user_id\":\"123456\"}","timestamp":1656945200,"sign":"%s"}`,
				shortPlain, seedKey)),
			Sentinel: providers.ErrMalformed, Reason: "malformed",
		},
	}
	providertest.Run(t, p, valid, invalid)
}

func TestAck(t *testing.T) {
	p := jpglo.New()
	for _, k := range []events.Kind{events.KindPayin, events.KindAppeal} {
		r := p.Ack(k)
		if r.Status != 200 || r.ContentType != "application/json" || string(r.Body) != `{"status":0,"msg":"处理成功"}` {
			t.Errorf("Ack(%s) = %d %q %s", k, r.Status, r.ContentType, r.Body)
		}
	}
	if p.Name() != "jpglo" {
		t.Errorf("Name = %q", p.Name())
	}
}

// TestUnverifiedCannotDecode: a Callback not made by Verify decodes to nothing.
func TestUnverifiedCannotDecode(t *testing.T) {
	var nilCB *jpglo.Callback
	for name, cb := range map[string]*jpglo.Callback{"zero": {}, "nil": nilCB} {
		t.Run(name, func(t *testing.T) {
			if _, err := cb.Event(); err == nil || providers.ReasonOf(err) != "malformed" {
				t.Errorf("Event() error = %v, want a malformed rejection", err)
			}
		})
	}
	cb, err := jpglo.New().Verify(acct, req(events.KindAppeal, []byte(seedAppeal)))
	if err != nil {
		t.Fatal(err)
	}
	if cb.Kind() != events.KindAppeal {
		t.Errorf("Kind = %s", cb.Kind())
	}
	ev, err := cb.Event()
	if err != nil {
		t.Fatal(err)
	}
	if ev.OrderKey() != "111234567890" {
		t.Errorf("appeal order key = %q, want mch_inquiry_no", ev.OrderKey())
	}
}

// TestErrorsCarryNoPayload: rejections name fields, never values or the key.
func TestErrorsCarryNoPayload(t *testing.T) {
	body := signed(
		`{"order_no":"SECRET-ORDER","mch_order_no":"M-5","status":"success","apply_amount":`+strings.Repeat("7", 50)+`,"timestamp":1656945134,"sign":"%s"}`,
		`apply_amount=`+strings.Repeat("7", 50)+`&mch_order_no=M-5&order_no=SECRET-ORDER&status=success&timestamp=1656945134`, seedKey)
	for name, b := range map[string][]byte{
		"bad amount":    body,
		"bad signature": []byte(strings.Replace(string(body), "SECRET-ORDER", "SECRET-ORDEX", 1)),
	} {
		_, err := jpglo.New().Parse(acct, req(events.KindPayin, b))
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		for _, leak := range []string{"SECRET-ORDE", "7777777", seedKey, md5Upper("x")[:0] + "sign="} {
			if leak != "" && strings.Contains(err.Error(), leak) {
				t.Errorf("%s: error %q leaks %q", name, err, leak)
			}
		}
		var re *providers.RejectError
		if !errors.As(err, &re) {
			t.Errorf("%s: not a RejectError", name)
		}
	}
}

// Appeal callback built here: the fields of the seed's "申诉回调" with the
// sign computed by the test from its own signing string (sorted names,
// every non-null value, &key=), which must equal the seed's printed sign.
const (
	appealBody  = `{"mch_order_no":"1234567890","order_no":"2203240014034824","mch_inquiry_no":"111234567890","inquiry_order_no":"2205041133420031","status":"success","inquiry_amount":1000000,"user_remark":"I've paid!","reason":"已完成充值","remark":null,"timestamp":1651648963,"sign":"%s"}`
	appealPlain = `inquiry_amount=1000000&inquiry_order_no=2205041133420031&mch_inquiry_no=111234567890&mch_order_no=1234567890&order_no=2203240014034824&reason=已完成充值&status=success&timestamp=1651648963&user_remark=I've paid!`
)

// TestAppealTampered changes one signed field of a valid appeal callback at
// a time, keeping its sign: each change must be bad_signature, like the
// payment callback's cases in TestConformance.
func TestAppealTampered(t *testing.T) {
	sign := md5Upper(appealPlain + "&key=" + seedKey)
	if sign != "FE4117A73E8EA77784DE4FFF1FDAD64B" {
		t.Fatalf("the test's signing string gives %s, not the seed's sign", sign)
	}
	body := fmt.Sprintf(appealBody, sign)
	p := jpglo.New()
	if ev, err := p.Parse(acct, req(events.KindAppeal, []byte(body))); err != nil || ev.IdempotencyKey != "111234567890" || ev.Status != events.StatusSucceeded {
		t.Fatalf("untampered appeal: %+v %v", ev, err)
	}
	swaps := []struct{ name, from, to string }{
		{"mch_order_no", `"mch_order_no":"1234567890"`, `"mch_order_no":"1234567891"`},
		{"order_no", `"order_no":"2203240014034824"`, `"order_no":"2203240014034825"`},
		{"mch_inquiry_no", `"mch_inquiry_no":"111234567890"`, `"mch_inquiry_no":"111234567891"`},
		{"inquiry_order_no", `"inquiry_order_no":"2205041133420031"`, `"inquiry_order_no":"2205041133420032"`},
		{"status success to fail", `"status":"success"`, `"status":"fail"`},
		{"inquiry_amount", `"inquiry_amount":1000000`, `"inquiry_amount":9000000`},
		{"inquiry_amount one minor unit", `"inquiry_amount":1000000`, `"inquiry_amount":1000001`},
		{"inquiry_amount as float", `"inquiry_amount":1000000`, `"inquiry_amount":1000000.0`},
		{"inquiry_amount as string", `"inquiry_amount":1000000`, `"inquiry_amount":"1000001"`},
		{"user_remark", `"user_remark":"I've paid!"`, `"user_remark":"I have paid!"`},
		{"user_remark emptied", `"user_remark":"I've paid!"`, `"user_remark":""`},
		{"reason", `"reason":"已完成充值"`, `"reason":"未收到款项"`},
		{"reason nulled", `"reason":"已完成充值"`, `"reason":null`},
		{"null field given a value", `"remark":null`, `"remark":""`},
		{"timestamp", `"timestamp":1651648963`, `"timestamp":1651648964`},
		{"signed field dropped", `"user_remark":"I've paid!",`, ``},
		{"field added", `"remark":null,`, `"remark":null,"extra":"1",`},
		{"mch_id added", `{"mch_order_no"`, `{"mch_id":1,"mch_order_no"`},
	}
	for _, s := range swaps {
		t.Run(s.name, func(t *testing.T) {
			tampered := strings.Replace(body, s.from, s.to, 1)
			if tampered == body {
				t.Fatalf("swap %q does not apply", s.from)
			}
			_, err := p.Parse(acct, req(events.KindAppeal, []byte(tampered)))
			var re *providers.RejectError
			if !errors.As(err, &re) || re.Reason != "bad_signature" || !errors.Is(err, providers.ErrSignature) {
				t.Errorf("err = %v, want bad_signature", err)
			}
		})
	}
	// The same changes, re-signed by the test, are accepted or refused on
	// their merits: the rejections above come from the sign alone.
	resigned := strings.Replace(appealBody, `"reason":"已完成充值"`, `"reason":"未收到款项"`, 1)
	plain := strings.Replace(appealPlain, "reason=已完成充值", "reason=未收到款项", 1)
	if _, err := p.Parse(acct, req(events.KindAppeal, signed(resigned, plain, seedKey))); err != nil {
		t.Errorf("re-signed changed reason: %v", err)
	}
}
