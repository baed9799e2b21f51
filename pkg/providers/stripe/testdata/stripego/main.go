// Command stripego writes ../vectors.json: Stripe-Signature headers computed
// by Stripe's official Go library (github.com/stripe/stripe-go, package
// webhook) and that library's verdict on each, so that the stripe
// package's tests check its verification against Stripe's own code without
// linking it. It is a module of its own under testdata, which the go tool
// skips, so payhook's go.mod does not carry the library. Regenerate with
//
//	cd pkg/providers/stripe/testdata/stripego && go run . > ../vectors.json
package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"
)

// Vector is one signed request and stripe-go's verdict on it.
type Vector struct {
	Name      string `json:"name"`
	Secret    string `json:"secret"`
	Timestamp int64  `json:"timestamp"`
	Body      string `json:"body"`
	Header    string `json:"header"`
	// StripeGo is webhook.ValidatePayloadIgnoringTolerance's error, "" when
	// it accepts (the tolerance is checked separately: stripe-go reads the
	// wall clock).
	StripeGo string `json:"stripe_go"`
}

const (
	secret = "whsec_test_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"
	other  = "whsec_test_rolled_0c9f1d2e3a4b5c6d7e8f9a0b1c2d"
	t0     = 1796630400 // 2026-12-07T08:00:00Z
)

func event(id, typ string, created int64, object string) string {
	return `{"id":"` + id + `","object":"event","api_version":"2025-03-31.basil","created":` + fmt.Sprint(created) +
		`,"data":{"object":` + object + `},"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"` + typ + `"}`
}

func main() {
	bodies := []struct{ name, body string }{
		{"payment_intent.succeeded USD", event("evt_3QsucceededUSD0001", "payment_intent.succeeded", t0-2,
			`{"id":"pi_3QsucceededUSD0001","object":"payment_intent","amount":1234,"amount_received":1234,"currency":"usd","latest_charge":"ch_3QsucceededUSD0001","metadata":{"order_id":"ORD-1001"},"status":"succeeded","created":1796630300}`)},
		{"payment_intent.succeeded JPY underpaid", event("evt_3QsucceededJPY0002", "payment_intent.succeeded", t0-2,
			`{"id":"pi_3QsucceededJPY0002","object":"payment_intent","amount":5000,"amount_received":4500,"currency":"jpy","latest_charge":null,"metadata":{},"status":"succeeded","created":1796630300}`)},
		{"payment_intent.payment_failed KWD", event("evt_3QfailedKWD000003", "payment_intent.payment_failed", t0-2,
			`{"id":"pi_3QfailedKWD000003","object":"payment_intent","amount":12340,"amount_received":0,"currency":"kwd","last_payment_error":{"code":"card_declined","message":"Your card was declined."},"metadata":{"order_id":"ORD-KW-7"},"status":"requires_payment_method","created":1796630300}`)},
		{"payment_intent.processing EUR", event("evt_3QprocessingEUR04", "payment_intent.processing", t0-2,
			`{"id":"pi_3QprocessingEUR04","object":"payment_intent","amount":999,"amount_received":0,"currency":"eur","metadata":{"order_id":"ORD-EU-4"},"status":"processing","created":1796630300}`)},
		{"payout.paid USD", event("evt_1PpaidUSD00000005", "payout.paid", t0-2,
			`{"id":"po_1PpaidUSD00000005","object":"payout","amount":250000,"currency":"usd","arrival_date":1796630400,"metadata":{"order_id":"WD-5"},"status":"paid","failure_code":null,"failure_message":null}`)},
		{"payout.failed BHD", event("evt_1PfailedBHD000006", "payout.failed", t0-2,
			`{"id":"po_1PfailedBHD000006","object":"payout","amount":1500,"currency":"bhd","metadata":{},"status":"failed","failure_code":"account_closed","failure_message":"The bank account has been closed."}`)},
		{"customer.created (ignored)", event("evt_1CcustomerCreated7", "customer.created", t0-2,
			`{"id":"cus_R1a2b3c4d5e6f7","object":"customer","email":null,"metadata":{}}`)},
	}
	ts := time.Unix(t0, 0)
	var vs []Vector
	add := func(name, sec, body, header string) {
		v := Vector{Name: name, Secret: sec, Timestamp: t0, Body: body, Header: header}
		if err := webhook.ValidatePayloadIgnoringTolerance([]byte(body), header, sec); err != nil {
			v.StripeGo = err.Error()
		}
		vs = append(vs, v)
	}
	for _, b := range bodies {
		p := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(b.body), Secret: secret, Timestamp: ts})
		add(b.name, secret, b.body, p.Header)
	}
	body := bodies[0].body
	sig := hex.EncodeToString(webhook.ComputeSignature(ts, []byte(body), secret))
	rolled := hex.EncodeToString(webhook.ComputeSignature(ts, []byte(body), other))
	add("rotation: old secret's v1 first, new second", secret, body, fmt.Sprintf("t=%d,v1=%s,v1=%s", t0, rolled, sig))
	add("rotation: verified with the old secret", other, body, fmt.Sprintf("t=%d,v1=%s,v1=%s", t0, rolled, sig))
	add("v0 alongside v1", secret, body, fmt.Sprintf("t=%d,v1=%s,v0=%s", t0, sig, sig))
	add("v0 only", secret, body, fmt.Sprintf("t=%d,v0=%s", t0, sig))
	add("wrong secret", other, body, fmt.Sprintf("t=%d,v1=%s", t0, sig))
	add("body changed by one byte", secret, body[:len(body)-2]+`x}`, fmt.Sprintf("t=%d,v1=%s", t0, sig))
	add("timestamp changed", secret, body, fmt.Sprintf("t=%d,v1=%s", t0+1, sig))
	add("signature upper-case hex", secret, body, fmt.Sprintf("t=%d,v1=%X", t0, webhook.ComputeSignature(ts, []byte(body), secret)))
	add("no signature", secret, body, fmt.Sprintf("t=%d", t0))
	add("empty header", secret, body, "")
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any{"stripe_go": "github.com/stripe/stripe-go/v82 v82.5.1", "vectors": vs}); err != nil {
		panic(err)
	}
}
