package stripe_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/providertest"
	"github.com/payhook/payhook/pkg/providers/stripe"
)

// vector is one entry of testdata/vectors.json, written by
// testdata/stripego with Stripe's own Go library (github.com/stripe/stripe-go).
type vector struct {
	Name      string `json:"name"`
	Secret    string `json:"secret"`
	Timestamp int64  `json:"timestamp"`
	Body      string `json:"body"`
	Header    string `json:"header"`
	StripeGo  string `json:"stripe_go"` // stripe-go's error, "" when it accepts
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var f struct {
		StripeGo string   `json:"stripe_go"`
		Vectors  []vector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &f); err != nil || len(f.Vectors) == 0 || !strings.Contains(f.StripeGo, "stripe-go") {
		tb.Fatalf("testdata/vectors.json: %v (%d vectors)", err, len(f.Vectors))
	}
	return f.Vectors
}

func vectorNamed(tb testing.TB, name string) vector {
	tb.Helper()
	for _, v := range loadVectors(tb) {
		if v.Name == name {
			return v
		}
	}
	tb.Fatalf("no vector %q", name)
	return vector{}
}

const secret = "whsec_test_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"

var (
	acct = providers.Account{
		ID: "stripe-us", Provider: "stripe", BaseURL: "http://stripe.invalid", Currency: "USD",
		Keys: providers.Keys{"secret": secret, "api_key": "sk_test_payhook"},
	}
	signedAt = time.Unix(1796630400, 0)      // the vectors' t
	received = signedAt.Add(3 * time.Second) // within the tolerance
)

func request(kind events.Kind, v vector) providers.Request {
	h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	if v.Header != "" {
		h.Set(stripe.HeaderSignature, v.Header)
	}
	return providers.Request{Kind: kind, Header: h, Body: []byte(v.Body), RemoteAddr: "3.18.12.63:443", ReceivedAt: received}
}

// Every vector's verdict is stripe-go's: accepted exactly when Stripe's
// library accepts the header (the tolerance holds: received 3 s after t).
func TestVerifyAgreesWithStripeGo(t *testing.T) {
	p := stripe.New()
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			a := acct.With("secret", v.Secret)
			_, err := p.Verify(a, request(events.KindPayin, v))
			if got, want := err == nil, v.StripeGo == ""; got != want {
				t.Fatalf("Verify accepted=%v (err %v); stripe-go accepted=%v (%s)", got, err, want, v.StripeGo)
			}
			if err != nil {
				var re *providers.RejectError
				if !errors.As(err, &re) || !errors.Is(err, providers.ErrSignature) && !errors.Is(err, providers.ErrMalformed) {
					t.Errorf("err %v, want a signature or malformed rejection", err)
				}
			}
			if v.StripeGo == "" && v.Header != "" {
				// Our own signer agrees with stripe-go's for the first v1.
				first := strings.Split(strings.Split(v.Header, ",")[1], "=")[1]
				if got := stripe.Signature(v.Secret, time.Unix(v.Timestamp, 0), []byte(v.Body)); got != strings.ToLower(first) && !strings.Contains(v.Name, "rotation") {
					t.Errorf("Signature = %s, stripe-go %s", got, first)
				}
			}
		})
	}
}

func TestSignatureHeaderVerifies(t *testing.T) {
	body := []byte(vectorNamed(t, "payment_intent.succeeded USD").Body)
	h := stripe.SignatureHeader(signedAt, body, "whsec_other_one", secret)
	req := providers.Request{Kind: events.KindPayin, Header: http.Header{stripe.HeaderSignature: {h}}, Body: body, ReceivedAt: received}
	if _, err := stripe.New().Verify(acct, req); err != nil {
		t.Fatalf("own header with the second of two secrets: %v", err)
	}
}

// The tolerance is 300 s either way from when the request arrived.
func TestTolerance(t *testing.T) {
	v := vectorNamed(t, "payment_intent.succeeded USD")
	for _, c := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"at t", signedAt, true},
		{"300 s late", signedAt.Add(300 * time.Second), true},
		{"301 s late", signedAt.Add(301 * time.Second), false},
		{"300 s early", signedAt.Add(-300 * time.Second), true},
		{"301 s early", signedAt.Add(-301 * time.Second), false},
		{"a day late (replay)", signedAt.Add(24 * time.Hour), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := request(events.KindPayin, v)
			r.ReceivedAt = c.at
			_, err := stripe.New().Verify(acct, r)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if err != nil && (providers.ReasonOf(err) != "too_old" || !errors.Is(err, providers.ErrStale)) {
				t.Errorf("err %v (reason %q), want too_old wrapping ErrStale", err, providers.ReasonOf(err))
			}
		})
	}
}

func money(v, cur string) *events.Money { m := events.MustMoney(v, cur); return &m }

func fields(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func TestConformance(t *testing.T) {
	occurred := signedAt.Add(-2 * time.Second).UTC()
	ev := func(kind events.Kind, st events.Status, order, pid, ref string, amount, requested *events.Money, mismatch bool, pf map[string]any) events.Event {
		return events.Event{
			Provider: "stripe", Account: "stripe-us", Kind: kind, Status: st, MerchantOrderID: order, ProviderOrderID: pid,
			Reference: ref, Amount: *amount, RequestedAmount: requested, AmountMismatch: mismatch,
			OccurredAt: occurred, ReceivedAt: received, Origin: events.OriginCallback, ProviderFields: pf,
			SignedAt: signedAt.UTC(), // the Stripe-Signature t, checked against max_age too
		}
	}
	valid := []providertest.Valid{
		{Name: "payin succeeded USD", Account: acct, Request: request(events.KindPayin, vectorNamed(t, "payment_intent.succeeded USD")),
			Want: ev(events.KindPayin, events.StatusSucceeded, "ORD-1001", "pi_3QsucceededUSD0001", "ch_3QsucceededUSD0001", money("12.34", "USD"), money("12.34", "USD"), false,
				fields("object_id", "pi_3QsucceededUSD0001", "currency", "usd", "amount", "12.34", "amount_received", "12.34", "status", "succeeded",
					"event_id", "evt_3QsucceededUSD0001", "type", "payment_intent.succeeded", "livemode", false)),
			WantID: (&events.Event{Provider: "stripe", Account: "stripe-us", Kind: events.KindPayin, Status: events.StatusSucceeded, MerchantOrderID: "ORD-1001"}).ID()},
		{Name: "payin succeeded JPY underpaid, no order_id", Account: acct, Request: request(events.KindPayin, vectorNamed(t, "payment_intent.succeeded JPY underpaid")),
			Want: ev(events.KindPayin, events.StatusSucceeded, "pi_3QsucceededJPY0002", "pi_3QsucceededJPY0002", "", money("4500", "JPY"), money("5000", "JPY"), true,
				fields("object_id", "pi_3QsucceededJPY0002", "currency", "jpy", "amount", "5000", "amount_received", "4500", "status", "succeeded",
					"event_id", "evt_3QsucceededJPY0002", "type", "payment_intent.succeeded", "livemode", false))},
		{Name: "payin failed KWD", Account: acct, Request: request(events.KindPayin, vectorNamed(t, "payment_intent.payment_failed KWD")),
			Want: ev(events.KindPayin, events.StatusFailed, "ORD-KW-7", "pi_3QfailedKWD000003", "", money("12.340", "KWD"), money("12.340", "KWD"), false,
				fields("object_id", "pi_3QfailedKWD000003", "currency", "kwd", "amount", "12.340", "status", "requires_payment_method", "failure_code", "card_declined",
					"event_id", "evt_3QfailedKWD000003", "type", "payment_intent.payment_failed", "livemode", false))},
		{Name: "payin processing EUR", Account: acct, Request: request(events.KindPayin, vectorNamed(t, "payment_intent.processing EUR")),
			Want: ev(events.KindPayin, events.StatusPending, "ORD-EU-4", "pi_3QprocessingEUR04", "", money("9.99", "EUR"), money("9.99", "EUR"), false,
				fields("object_id", "pi_3QprocessingEUR04", "currency", "eur", "amount", "9.99", "status", "processing",
					"event_id", "evt_3QprocessingEUR04", "type", "payment_intent.processing", "livemode", false))},
		{Name: "payout paid USD", Account: acct, Request: request(events.KindPayout, vectorNamed(t, "payout.paid USD")),
			Want: ev(events.KindPayout, events.StatusSucceeded, "WD-5", "po_1PpaidUSD00000005", "", money("2500.00", "USD"), money("2500.00", "USD"), false,
				fields("object_id", "po_1PpaidUSD00000005", "currency", "usd", "amount", "2500.00", "status", "paid",
					"event_id", "evt_1PpaidUSD00000005", "type", "payout.paid", "livemode", false))},
		{Name: "payout failed BHD", Account: acct, Request: request(events.KindPayout, vectorNamed(t, "payout.failed BHD")),
			Want: ev(events.KindPayout, events.StatusFailed, "po_1PfailedBHD000006", "po_1PfailedBHD000006", "", money("1.500", "BHD"), money("1.500", "BHD"), false,
				fields("object_id", "po_1PfailedBHD000006", "currency", "bhd", "amount", "1.500", "status", "failed", "failure_message", "The bank account has been closed.",
					"event_id", "evt_1PfailedBHD000006", "type", "payout.failed", "livemode", false))},
	}
	succeeded := vectorNamed(t, "payment_intent.succeeded USD")
	late := request(events.KindPayin, succeeded)
	late.ReceivedAt = signedAt.Add(10 * time.Minute)
	twoHeaders := request(events.KindPayin, succeeded)
	twoHeaders.Header.Add(stripe.HeaderSignature, succeeded.Header)
	badT := succeeded
	badT.Header = strings.Replace(succeeded.Header, "t=", "t=+", 1)
	noT := succeeded
	noT.Header = succeeded.Header[strings.Index(succeeded.Header, ",")+1:]
	invalid := []providertest.Invalid{
		{Name: "replayed 10 min later", Account: acct, Request: late, Sentinel: providers.ErrStale, Reason: "too_old"},
		{Name: "wrong secret", Account: acct.With("secret", vectorNamed(t, "wrong secret").Secret), Request: request(events.KindPayin, vectorNamed(t, "wrong secret")), Sentinel: providers.ErrSignature, Reason: "bad_signature"},
		{Name: "v0 only", Account: acct, Request: request(events.KindPayin, vectorNamed(t, "v0 only")), Sentinel: providers.ErrSignature, Reason: "bad_signature"},
		{Name: "no header", Account: acct, Request: request(events.KindPayin, vectorNamed(t, "empty header")), Sentinel: providers.ErrSignature, Reason: "bad_signature"},
		{Name: "two headers", Account: acct, Request: twoHeaders, Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "signed t with a plus", Account: acct, Request: request(events.KindPayin, badT), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "no t", Account: acct, Request: request(events.KindPayin, noT), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "payout event on the payin URL", Account: acct, Request: request(events.KindPayin, vectorNamed(t, "payout.paid USD")), Sentinel: providers.ErrKind, Reason: "wrong_kind"},
		{Name: "payin event on the payout URL", Account: acct, Request: request(events.KindPayout, succeeded), Sentinel: providers.ErrKind, Reason: "wrong_kind"},
		{Name: "appeal URL", Account: acct, Request: request(events.KindAppeal, succeeded), Sentinel: providers.ErrKind, Reason: "wrong_kind"},
		{Name: "account without secret", Account: acct.With("secret", ""), Request: request(events.KindPayin, succeeded), Sentinel: providers.ErrSignature, Reason: "no_key"},
	}
	providertest.Run(t, stripe.New(), valid, invalid)
}

// A verified event of a type payhook does not map is ErrIgnored, not a
// rejection: ingress acknowledges it so that Stripe stops resending.
func TestUnmappedTypeIsIgnored(t *testing.T) {
	v := vectorNamed(t, "customer.created (ignored)")
	_, err := stripe.New().Parse(acct, request(events.KindPayin, v))
	if !errors.Is(err, providers.ErrIgnored) {
		t.Fatalf("err = %v, want ErrIgnored", err)
	}
	var re *providers.RejectError
	if errors.As(err, &re) {
		t.Errorf("an ignored type is a rejection: %v", err)
	}
	// Forged, the same body is rejected, not ignored.
	r := request(events.KindPayin, v)
	r.Body = append(r.Body[:len(r.Body)-1:len(r.Body)-1], ' ', '}')
	if _, err := stripe.New().Parse(acct, r); errors.Is(err, providers.ErrIgnored) || providers.ReasonOf(err) != "bad_signature" {
		t.Errorf("forged ignored type: %v", err)
	}
}

func TestExponent(t *testing.T) {
	for cur, want := range map[string]int{"USD": 2, "EUR": 2, "INR": 2, "JPY": 0, "KRW": 0, "VND": 0, "XOF": 0, "BHD": 3, "KWD": 3, "TND": 3, "JOD": 3, "OMR": 3} {
		if got := stripe.Exponent(cur); got != want {
			t.Errorf("Exponent(%s) = %d, want %d", cur, got, want)
		}
	}
}

func TestCheckAccount(t *testing.T) {
	p := stripe.New()
	if err := p.CheckAccount(acct); err != nil {
		t.Fatalf("good account: %v", err)
	}
	for _, c := range []struct {
		name string
		a    providers.Account
		key  string
	}{
		{"no secret", acct.With("secret", ""), "secret"},
		{"secret not whsec_", acct.With("secret", "sk_test_wrong_place"), "secret"},
		{"no api key", acct.With("api_key", ""), "api_key"},
		{"publishable key", acct.With("api_key", "pk_test_123"), "api_key"},
		{"merchant_id is not stripe's", acct.With("merchant_id", "acct_1"), "merchant_id"},
		{"mpurse key", acct.With("aes_key", "0123456789abcdef"), "aes_key"},
	} {
		err := p.CheckAccount(c.a)
		var ke *providers.KeyError
		if !errors.As(err, &ke) || ke.Key != c.key {
			t.Errorf("%s: err %v, want a KeyError on %s", c.name, err, c.key)
		}
		if err != nil && strings.Contains(err.Error(), "sk_test_wrong_place") {
			t.Errorf("%s: error echoes a secret: %v", c.name, err)
		}
	}
}
