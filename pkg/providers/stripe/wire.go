package stripe

import (
	"net/http"
	"strconv"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// The one place that renders and signs Stripe's webhooks and objects: the
// simulator (sim.go) and the bad-input corpus (hostile.go) both post what
// these build.

// object is a PaymentIntent (Kind payin) or a Payout (Kind payout) as its
// fields' wire text, the data.object of an event and the answer to a
// retrieve.
type object struct {
	Kind events.Kind
	// ID is pi_... or po_...; Currency the lower-case ISO code; Status
	// the object's own status ("succeeded", "paid", ...).
	ID, Currency, Status string
	// Amount and AmountReceived (a PaymentIntent's) are integers of the
	// currency's minor units (Exponent).
	Amount, AmountReceived string
	// OrderID is metadata.order_id, the merchant's order id.
	OrderID string
	// LatestCharge is a succeeded PaymentIntent's ch_ id; "" leaves it out.
	LatestCharge string
	// FailureCode and FailureMessage are a failed Payout's failure_code and
	// failure_message, or a failed PaymentIntent's last_payment_error; ""
	// leaves them out.
	FailureCode, FailureMessage string
}

// obj is the object's JSON.
func (o object) obj() *hostile.Obj {
	x := (&hostile.Obj{}).Set("id", hostile.Str(o.ID))
	if o.Kind == events.KindPayout {
		x.Set("object", `"payout"`).Set("amount", o.Amount)
	} else {
		x.Set("object", `"payment_intent"`).Set("amount", o.Amount).Set("amount_received", o.AmountReceived)
	}
	x.Set("currency", hostile.Str(o.Currency)).
		Set("metadata", string((&hostile.Obj{}).Set("order_id", hostile.Str(o.OrderID)).Bytes())).
		Set("status", hostile.Str(o.Status))
	if o.LatestCharge != "" {
		x.Set("latest_charge", hostile.Str(o.LatestCharge))
	}
	switch {
	case o.FailureCode == "":
	case o.Kind == events.KindPayout:
		x.Set("failure_code", hostile.Str(o.FailureCode)).Set("failure_message", hostile.Str(o.FailureMessage))
	default:
		x.Set("last_payment_error", string((&hostile.Obj{}).Set("code", hostile.Str(o.FailureCode)).
			Set("message", hostile.Str(o.FailureMessage)).Bytes()))
	}
	return x
}

// apiVersion is the API version the rendered events say they are in.
const apiVersion = "2025-03-31.basil"

// eventObj is the Event Stripe posts about obj: its id (evt_...), type
// and creation time.
func eventObj(id, typ string, created int64, obj *hostile.Obj) *hostile.Obj {
	return (&hostile.Obj{}).
		Set("id", hostile.Str(id)).Set("object", `"event"`).Set("api_version", hostile.Str(apiVersion)).
		Set("created", strconv.FormatInt(created, 10)).Set("livemode", "false").Set("pending_webhooks", "1").
		Set("type", hostile.Str(typ)).
		Set("data", string((&hostile.Obj{}).Set("object", string(obj.Bytes())).Bytes()))
}

// webhookHeader is the headers Stripe sends body with at at: its
// Stripe-Signature carries one v1 per secret (SignatureHeader).
func webhookHeader(at time.Time, body []byte, secrets ...string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	h.Set(HeaderSignature, SignatureHeader(at, body, secrets...))
	return h
}
