package mrnpay_test

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/vectorstest"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
	"github.com/payhook/payhook/pkg/providers/providertest"
)

const key = "s3cr3t-mrn" // vectors.json's mrnpay key

var (
	acct = providers.Account{
		ID: "mrn-cn", Provider: "mrnpay", Keys: providers.Keys{"merchant_id": "app-1", "secret": key},
		BaseURL: "http://mrnpay.invalid", Currency: "CNY",
	}
	received = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
)

// md5Lower is the test's own implementation of the seed's hash step.
func md5Lower(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

type vector struct {
	Name   string            `json:"name"`
	Key    string            `json:"key"`
	String string            `json:"string"`
	Sign   string            `json:"sign"`
	Form   map[string]string `json:"form"`
}

// TestSignVectors reproduces vectors.json's mrnpay section from the package
// copy and, when present, the shared file (which must match the copy).
func TestSignVectors(t *testing.T) {
	sets := map[string][]vector{"testdata": vectorstest.Local[vector](t, "mrnpay")}
	if shared, ok := vectorstest.Shared[vector](t, "mrnpay"); ok { // errors when it differs from local
		sets["shared"] = shared
	}
	for src, vs := range sets {
		for _, v := range vs {
			t.Run(src+"/"+v.Name, func(t *testing.T) {
				if md5Lower(v.String) != v.Sign {
					t.Fatalf("vector inconsistent: md5(string) != sign")
				}
				f := v.Form
				var got string
				switch v.Name {
				case "pay-in callback":
					got = mrnpay.SignPayin(f["amount"], f["appKey"], f["channel"], f["mrn"], f["originAmount"], v.Key)
				case "payout callback":
					got = mrnpay.SignPayout(f["amount"], f["appKey"], f["mrn"], v.Key)
				case "query":
					q, err := url.ParseQuery(v.String)
					if err != nil {
						t.Fatal(err)
					}
					got = mrnpay.SignQuery(q.Get("appKey"), q.Get("mrn"), v.Key)
				default:
					t.Fatalf("unknown vector %q", v.Name)
				}
				if got != v.Sign {
					t.Errorf("sign = %s, want %s", got, v.Sign)
				}
			})
		}
	}
}

func req(kind events.Kind, body string) providers.Request {
	return providers.Request{
		Kind: kind, Body: []byte(body), ReceivedAt: received, RemoteAddr: "198.51.100.9:4000",
		Header: map[string][]string{"Content-Type": {"application/x-www-form-urlencoded"}},
	}
}

func cny(v string) events.Money { return events.MustMoney(v, "CNY") }
func pcny(v string) *events.Money {
	m := cny(v)
	return &m
}

// The vectors' callbacks, written out as mrnpay posts them.
const (
	payinBody  = "amount=99.50&appKey=app-1&channel=2&mrn=M-1001&originAmount=100.00&sign=9f7ea95ba992ff15de124dfc35f2571b"
	payoutBody = "amount=500&appKey=app-1&mrn=P-2001&sign=cc0f8c862e334898149b1ddb7b52893f"
)

// payin renders a pay-in body with the test's own signature over the
// decoded values; rawMrn is mrn as it appears on the wire.
func payin(amount, appKey, channel, mrn, rawMrn, origin string) string {
	sign := md5Lower("amount=" + amount + "&appKey=" + appKey + "&channel=" + channel + "&mrn=" + mrn + "&originAmount=" + origin + "&key=" + key)
	return "amount=" + amount + "&appKey=" + appKey + "&channel=" + channel + "&mrn=" + rawMrn + "&originAmount=" + origin + "&sign=" + sign
}

func payout(amount, appKey, mrn string) string {
	return "amount=" + amount + "&appKey=" + appKey + "&mrn=" + mrn + "&sign=" + md5Lower("amount="+amount+"&appKey="+appKey+"&mrn="+mrn+"&key="+key)
}

func TestConformance(t *testing.T) {
	valid := []providertest.Valid{
		{
			Name: "vector pay-in, paid less", Account: acct, Request: req(events.KindPayin, payinBody),
			Want: events.Event{
				Provider: "mrnpay", Account: "mrn-cn", Kind: events.KindPayin, Status: events.StatusSucceeded,
				MerchantOrderID: "M-1001", Amount: cny("99.50"), RequestedAmount: pcny("100.00"), AmountMismatch: true,
				OccurredAt: received, ReceivedAt: received, Origin: events.OriginCallback,
				ProviderFields: map[string]any{"amount": "99.50", "appKey": "app-1", "channel": "2", "mrn": "M-1001", "originAmount": "100.00"},
			},
		},
		{
			Name: "vector payout", Account: acct, Request: req(events.KindPayout, payoutBody),
			Want: events.Event{
				Provider: "mrnpay", Account: "mrn-cn", Kind: events.KindPayout, Status: events.StatusSucceeded,
				MerchantOrderID: "P-2001", Amount: cny("500"),
				OccurredAt: received, ReceivedAt: received, Origin: events.OriginCallback,
				ProviderFields: map[string]any{"amount": "500", "appKey": "app-1", "mrn": "P-2001"},
			},
		},
		{
			// 100 and 100.00 are the same money: no mismatch, digits kept as sent.
			Name: "equal amounts written differently", Account: acct, Request: req(events.KindPayin, payin("100", "app-1", "15", "M-3", "M-3", "100.00")),
			Want: events.Event{
				Provider: "mrnpay", Account: "mrn-cn", Kind: events.KindPayin, Status: events.StatusSucceeded,
				MerchantOrderID: "M-3", Amount: cny("100"), RequestedAmount: pcny("100.00"),
				OccurredAt: received, ReceivedAt: received, Origin: events.OriginCallback,
				ProviderFields: map[string]any{"amount": "100", "appKey": "app-1", "channel": "15", "mrn": "M-3", "originAmount": "100.00"},
			},
		},
		{
			Name: "unicode mrn, reordered, unsigned extra field ignored", Account: acct,
			Request: req(events.KindPayin, "note=hi&"+payin("0.01", "app-1", "1", "订单 Ü-4", "%E8%AE%A2%E5%8D%95+%C3%9C-4", "0.01")),
			Want: events.Event{
				Provider: "mrnpay", Account: "mrn-cn", Kind: events.KindPayin, Status: events.StatusSucceeded,
				MerchantOrderID: "订单 Ü-4", Amount: cny("0.01"), RequestedAmount: pcny("0.01"),
				OccurredAt: received, ReceivedAt: received, Origin: events.OriginCallback,
				ProviderFields: map[string]any{"amount": "0.01", "appKey": "app-1", "channel": "1", "mrn": "订单 Ü-4", "originAmount": "0.01"},
			},
		},
	}
	swap := func(body, old, new string) string {
		if !strings.Contains(body, old) {
			t.Fatalf("body lacks %q", old)
		}
		return strings.Replace(body, old, new, 1)
	}
	other := acct
	other = other.With("merchant_id", "app-2")
	invalid := []providertest.Invalid{
		{Name: "wrong signature", Account: acct, Request: req(events.KindPayin, swap(payinBody, "sign=9f7e", "sign=9f7f")), Sentinel: providers.ErrSignature, Reason: "bad_signature"},
		{Name: "upper-case sign", Account: acct, Request: req(events.KindPayin, swap(payinBody, "9f7ea95ba992ff15de124dfc35f2571b", "9F7EA95BA992FF15DE124DFC35F2571B")), Reason: "bad_signature"},
		{Name: "tampered amount", Account: acct, Request: req(events.KindPayin, swap(payinBody, "amount=99.50", "amount=100.00")), Reason: "bad_signature"},
		{Name: "tampered amount digits", Account: acct, Request: req(events.KindPayin, swap(payinBody, "amount=99.50", "amount=99.5")), Reason: "bad_signature"},
		{Name: "tampered appKey", Account: acct, Request: req(events.KindPayin, swap(payinBody, "appKey=app-1", "appKey=app-2")), Reason: "bad_signature"},
		{Name: "tampered channel", Account: acct, Request: req(events.KindPayin, swap(payinBody, "channel=2", "channel=3")), Reason: "bad_signature"},
		{Name: "tampered mrn", Account: acct, Request: req(events.KindPayin, swap(payinBody, "mrn=M-1001", "mrn=M-1002")), Reason: "bad_signature"},
		{Name: "tampered originAmount", Account: acct, Request: req(events.KindPayin, swap(payinBody, "originAmount=100.00", "originAmount=99.50")), Reason: "bad_signature"},
		{Name: "tampered payout amount", Account: acct, Request: req(events.KindPayout, swap(payoutBody, "amount=500", "amount=5000")), Reason: "bad_signature"},
		{Name: "tampered payout mrn", Account: acct, Request: req(events.KindPayout, swap(payoutBody, "mrn=P-2001", "mrn=P-2002")), Reason: "bad_signature"},
		{Name: "wrong key", Account: providers.Account{ID: "mrn-cn", Keys: providers.Keys{"merchant_id": "app-1", "secret": "s3cr3t-mrm"}, Currency: "CNY"}, Request: req(events.KindPayin, payinBody), Sentinel: providers.ErrSignature, Reason: "bad_signature"},
		{Name: "account without key", Account: providers.Account{ID: "mrn-cn", Keys: providers.Keys{"merchant_id": "app-1"}, Currency: "CNY"}, Request: req(events.KindPayin, payinBody), Reason: "no_key"},
		{Name: "account mismatch", Account: other, Request: req(events.KindPayin, payinBody), Sentinel: providers.ErrAccount, Reason: "account_mismatch"},
		{Name: "truncated", Account: acct, Request: req(events.KindPayin, payinBody[:len(payinBody)-1]), Reason: "bad_signature"},
		{Name: "truncated before sign", Account: acct, Request: req(events.KindPayin, payinBody[:strings.Index(payinBody, "&sign")]), Reason: "missing_field"},
		{Name: "empty body", Account: acct, Request: req(events.KindPayin, ""), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "JSON body", Account: acct, Request: req(events.KindPayin, `{"amount":"99.50","appKey":"app-1","channel":"2","mrn":"M-1001","originAmount":"100.00","sign":"9f7ea95ba992ff15de124dfc35f2571b"}`), Reason: "missing_field"},
		{Name: "bad percent escape", Account: acct, Request: req(events.KindPayin, swap(payinBody, "mrn=M-1001", "mrn=M-%zz")), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "semicolon separator", Account: acct, Request: req(events.KindPayin, swap(payinBody, "&mrn=", ";mrn=")), Reason: "malformed"},
		{Name: "duplicate amount", Account: acct, Request: req(events.KindPayin, payinBody+"&amount=1000.00"), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "duplicate amount, same value", Account: acct, Request: req(events.KindPayin, payinBody+"&amount=99.50"), Reason: "malformed"},
		{Name: "duplicate sign", Account: acct, Request: req(events.KindPayin, payinBody+"&sign=9f7ea95ba992ff15de124dfc35f2571b"), Reason: "malformed"},
		{Name: "duplicate mrn in payout", Account: acct, Request: req(events.KindPayout, "mrn=P-9&"+payoutBody), Reason: "malformed"},
		{Name: "missing sign", Account: acct, Request: req(events.KindPayin, swap(payinBody, "&sign=9f7ea95ba992ff15de124dfc35f2571b", "")), Sentinel: providers.ErrSignature, Reason: "missing_field"},
		{Name: "empty sign", Account: acct, Request: req(events.KindPayin, swap(payinBody, "sign=9f7ea95ba992ff15de124dfc35f2571b", "sign=")), Reason: "missing_field"},
		{Name: "missing originAmount", Account: acct, Request: req(events.KindPayin, swap(payinBody, "&originAmount=100.00", "")), Reason: "missing_field"},
		{Name: "wrong kind appeal", Account: acct, Request: req(events.KindAppeal, payinBody), Sentinel: providers.ErrKind, Reason: "wrong_kind"},
		{Name: "payout posted as payin", Account: acct, Request: req(events.KindPayin, payoutBody), Reason: "missing_field"},
		{Name: "payin posted as payout", Account: acct, Request: req(events.KindPayout, payinBody), Reason: "bad_signature"},
		{Name: "huge amount", Account: acct, Request: req(events.KindPayin, payin(strings.Repeat("9", 400), "app-1", "2", "M-5", "M-5", "100.00")), Sentinel: events.ErrAmount, Reason: "bad_amount"},
		{Name: "huge originAmount", Account: acct, Request: req(events.KindPayin, payin("1.00", "app-1", "2", "M-5", "M-5", "1."+strings.Repeat("0", 400))), Reason: "bad_amount"},
		{Name: "huge payout amount", Account: acct, Request: req(events.KindPayout, payout(strings.Repeat("1", 41), "app-1", "P-5")), Reason: "bad_amount"},
		{Name: "negative amount", Account: acct, Request: req(events.KindPayin, payin("-1.00", "app-1", "2", "M-5", "M-5", "1.00")), Reason: "bad_amount"},
		{Name: "exponent amount", Account: acct, Request: req(events.KindPayout, payout("1e3", "app-1", "P-5")), Reason: "bad_amount"},
		{Name: "amount with spaces", Account: acct, Request: req(events.KindPayout, "amount=+500&appKey=app-1&mrn=P-5&sign="+md5Lower("amount= 500&appKey=app-1&mrn=P-5&key="+key)), Reason: "bad_amount"},
		{Name: "channel not a number", Account: acct, Request: req(events.KindPayin, payin("1.00", "app-1", "wx", "M-5", "M-5", "1.00")), Reason: "malformed"},
		{Name: "mrn over 64 bytes", Account: acct, Request: req(events.KindPayin, payin("1.00", "app-1", "2", strings.Repeat("m", 65), strings.Repeat("m", 65), "1.00")), Reason: "malformed"},
	}
	providertest.Run(t, mrnpay.New(), valid, invalid)
}

func TestAck(t *testing.T) {
	p := mrnpay.New()
	for _, k := range p.Kinds() {
		r := p.Ack(k)
		if r.Status != 200 || string(r.Body) != "success" || !strings.HasPrefix(r.ContentType, "text/plain") {
			t.Errorf("Ack(%s) = %d %q %q", k, r.Status, r.ContentType, r.Body)
		}
	}
	if got := fmt.Sprint(p.Kinds()); got != "[payin payout]" || p.Name() != "mrnpay" {
		t.Errorf("Name %q Kinds %s", p.Name(), got)
	}
}

func TestUnverifiedCannotDecode(t *testing.T) {
	var nilCB *mrnpay.Callback
	for name, cb := range map[string]*mrnpay.Callback{"zero": {}, "nil": nilCB} {
		t.Run(name, func(t *testing.T) {
			if _, err := cb.Event(); err == nil || providers.ReasonOf(err) != "malformed" {
				t.Errorf("Event() error = %v, want a malformed rejection", err)
			}
		})
	}
	cb, err := mrnpay.New().Verify(acct, req(events.KindPayout, payoutBody))
	if err != nil {
		t.Fatal(err)
	}
	if cb.Kind() != events.KindPayout {
		t.Errorf("Kind = %s", cb.Kind())
	}
}

// TestBuildCallbacks: the helpers' bodies are what the test writes by hand
// from the vectors, and they verify.
func TestBuildCallbacks(t *testing.T) {
	tests := []struct {
		name string
		kind events.Kind
		got  []byte
		want string
	}{
		{"payin", events.KindPayin, mrnpay.BuildPayinCallback("app-1", key, "M-1001", "2", "99.50", "100.00"), payinBody},
		{"payout", events.KindPayout, mrnpay.BuildPayoutCallback("app-1", key, "P-2001", "500"), payoutBody},
		{"payin unicode", events.KindPayin, mrnpay.BuildPayinCallback("app-1", key, "订单 Ü-4", "1", "0.01", "0.01"),
			payin("0.01", "app-1", "1", "订单 Ü-4", "%E8%AE%A2%E5%8D%95+%C3%9C-4", "0.01")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
			if _, err := mrnpay.New().Parse(acct, req(tt.kind, string(tt.got))); err != nil {
				t.Errorf("built callback rejected: %v", err)
			}
		})
	}
}

func TestErrorsCarryNoPayload(t *testing.T) {
	for name, body := range map[string]string{
		"bad escape": "amount=1&mrn=SECRET%zz",
		"bad amount": payin("777777777x", "app-1", "2", "SECRET", "SECRET", "1"),
		"bad sign":   swap(payinBody, "M-1001", "SECRET"),
	} {
		_, err := mrnpay.New().Parse(acct, req(events.KindPayin, body))
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		for _, leak := range []string{"SECRET", "777777", key, "9f7ea95b"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: error %q leaks %q", name, err, leak)
			}
		}
	}
}

func swap(body, old, new string) string { return strings.Replace(body, old, new, 1) }
