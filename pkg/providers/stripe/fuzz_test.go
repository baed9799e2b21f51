package stripe_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/parsetest"
	"github.com/payhook/payhook/pkg/providers/stripe"
)

// FuzzStripeParse signs every input with the account's secret, so that
// mutations reach the decoder past the signature check: Parse must never
// panic, must reject only with a reasoned *providers.RejectError (or
// ignore an unmapped type), and whatever it accepts must be publishable.
// The corpus in testdata/fuzz/FuzzStripeParse holds the vectors' bodies.
func FuzzStripeParse(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.Body))
	}
	f.Add([]byte(`{"type":"payment_intent.succeeded","type":"payout.paid"}`))
	f.Add([]byte(`[]`))
	p := stripe.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		h := http.Header{stripe.HeaderSignature: {stripe.SignatureHeader(signedAt, body, secret)}}
		for _, kind := range []events.Kind{events.KindPayin, events.KindPayout} {
			ev, err := p.Parse(acct, providers.Request{Kind: kind, Header: h, Body: body, ReceivedAt: received})
			if !parsetest.Outcome(t, string(kind), ev, err) {
				continue
			}
			if ev.Kind != kind || ev.Provider != "stripe" {
				t.Fatalf("%s: event of kind %s, provider %s", kind, ev.Kind, ev.Provider)
			}
		}
	})
}

// FuzzStripeHeader: any Stripe-Signature value is parsed without a panic,
// and only the right signature over the body verifies.
func FuzzStripeHeader(f *testing.F) {
	v := vectorNamed(f, "payment_intent.succeeded USD")
	for _, h := range []string{v.Header, "", "t=", "t=1,v1=", "t=1,t=2,v1=00", ",,,", "v1=" + v.Header} {
		f.Add(h)
	}
	p := stripe.New()
	f.Fuzz(func(t *testing.T, header string) {
		_, err := p.Verify(acct, providers.Request{Kind: events.KindPayin, Header: http.Header{stripe.HeaderSignature: {header}}, Body: []byte(v.Body), ReceivedAt: received})
		if err == nil {
			return // a header carrying the vector's own v1 for its t
		}
		var re *providers.RejectError
		if !errors.As(err, &re) || re.Reason == "" {
			t.Fatalf("error is not a reasoned rejection: %v", err)
		}
	})
}

// FuzzStripeQueryReply: any answer to a query is an error or a result,
// never a panic, and a result's event is valid.
func FuzzStripeQueryReply(f *testing.F) {
	f.Add(200, []byte(pi("succeeded", "")))
	f.Add(200, []byte(pi("requires_payment_method", `,"last_payment_error":{}`)))
	f.Add(404, []byte(`{"error":{"code":"resource_missing"}}`))
	f.Add(200, []byte(`{"id":"pi_3QsucceededUSD0001","object":"payment_intent","status":"succeeded","amount":-1,"currency":"usd"}`))
	var status int
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	f.Cleanup(srv.Close)
	a := acct
	a.BaseURL = srv.URL
	c := stripe.NewClient(nil)
	f.Fuzz(func(t *testing.T, st int, b []byte) {
		if st < 200 || st > 599 {
			return
		}
		status, body = st, b
		res, err := c.Query(context.Background(), a, order, false)
		if err != nil || res.Event == nil {
			return
		}
		if err := res.Event.Validate(); err != nil {
			t.Fatalf("invalid polled event: %v", err)
		}
	})
}
