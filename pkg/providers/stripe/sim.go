package stripe

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Stripe's side of the wire, for the provider simulator, devstack and the
// test suites (providers.Simulated).

var (
	_ providers.Simulated      = (*Provider)(nil)
	_ providers.SimServerError = (*Provider)(nil)
)

// SimRetrySchedule approximates Stripe's retries of an unacknowledged
// event: "up to three days with an exponential back off" (Stripe's
// documentation gives no table): 1m+5m+30m+2h+5h+10h+10h+12h+12h+12h+10h
// ≈ 73.6 h.
var SimRetrySchedule = []time.Duration{
	time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 10 * time.Hour, 12 * time.Hour, 12 * time.Hour, 12 * time.Hour, 10 * time.Hour,
}

// SimAccount is a test-mode account in USD.
func (p *Provider) SimAccount(id string) providers.Account {
	return providers.Account{
		ID: id, Provider: Name, Currency: "USD",
		Keys: providers.Keys{"secret": "whsec_payhook_sim_2f6c1e0b9a8d7c6e5f4a3b2c", "api_key": "sk_test_payhook_sim_51Hq9ZkX"},
	}
}

// DemoAccount is SimAccount("stripe-demo").
func (p *Provider) DemoAccount() providers.Account { return p.SimAccount(Name + "-demo") }

// SimKinds: PaymentIntents and Payouts.
func (p *Provider) SimKinds() []events.Kind { return p.Kinds() }

// SimExponent is the currency's exponent in Stripe's minor units.
func (p *Provider) SimExponent(_ events.Kind, currency string) int { return Exponent(currency) }

// SimIDs draws a pi_ (payin) or po_ (payout) id and a ch_ charge id as the
// reference of a payin; the merchant order id defaults to "ORD-" + digits.
func (p *Provider) SimIDs(o *providers.SimOrder, digits func(n int) string) {
	if o.MerchantOrderID == "" {
		o.MerchantOrderID = "ORD-" + digits(10)
	}
	if o.Kind == events.KindPayout {
		o.ProviderOrderID = "po_" + digits(24)
		return
	}
	o.ProviderOrderID = "pi_" + digits(24)
	if o.Reference == "" {
		o.Reference = "ch_" + digits(24)
	}
}

// SimCallback renders the Event Stripe sends about o, signed at at.
func (p *Provider) SimCallback(acct providers.Account, o providers.SimOrder, at time.Time, corrupt bool) (http.Header, []byte, error) {
	typ, obj, err := simObject(o)
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256([]byte(o.ProviderOrderID + "|" + typ))
	body := eventObj("evt_"+hex.EncodeToString(sum[:12]), typ, at.Unix(), obj.obj()).Bytes()
	h, err := p.SimSign(acct, o.Kind, body, at)
	if err != nil {
		return nil, nil, err
	}
	if corrupt {
		// A signature under another secret: what an endpoint whose secret
		// was rolled without updating payhook receives.
		h = webhookHeader(at, body, acct.Key("secret")+"-rolled")
	}
	return h, body, nil
}

// simObject is the PaymentIntent or Payout of o and the event type that
// reports its status.
func simObject(o providers.SimOrder) (typ string, obj object, err error) {
	exp := Exponent(o.Amount.Currency)
	amount, err := o.Amount.Minor(exp)
	if err != nil {
		return "", obj, fmt.Errorf("stripe: amount %s %s has more than %d fraction digits", o.Amount.Value, o.Amount.Currency, exp)
	}
	paid, err := o.Paid.Minor(exp)
	if err != nil {
		return "", obj, fmt.Errorf("stripe: paid %s %s has more than %d fraction digits", o.Paid.Value, o.Paid.Currency, exp)
	}
	obj = object{Kind: o.Kind, ID: o.ProviderOrderID, Amount: amount.String(), AmountReceived: "0",
		Currency: strings.ToLower(o.Amount.Currency), OrderID: o.MerchantOrderID}
	if o.Kind == events.KindPayout {
		switch o.Status {
		case events.StatusSucceeded:
			typ, obj.Status = "payout.paid", "paid"
		case events.StatusFailed:
			typ, obj.Status = "payout.failed", "failed"
			obj.FailureCode, obj.FailureMessage = "account_closed", "The bank account has been closed."
		default:
			typ, obj.Status = "payout.updated", "in_transit" // not mapped: acknowledged and ignored
		}
		return typ, obj, nil
	}
	switch o.Status {
	case events.StatusSucceeded:
		typ, obj.Status = "payment_intent.succeeded", "succeeded"
		obj.AmountReceived, obj.LatestCharge = paid.String(), o.Reference
	case events.StatusFailed:
		typ, obj.Status = "payment_intent.payment_failed", "requires_payment_method"
		obj.FailureCode, obj.FailureMessage = "card_declined", "Your card was declined."
	default:
		typ, obj.Status = "payment_intent.processing", "processing"
	}
	return typ, obj, nil
}

// SimSign is the headers Stripe sends body with at at.
func (p *Provider) SimSign(acct providers.Account, _ events.Kind, body []byte, at time.Time) (http.Header, error) {
	secret := acct.Key("secret")
	if secret == "" {
		return nil, fmt.Errorf("stripe: account %q has no secret", acct.ID)
	}
	return webhookHeader(at, body, secret), nil
}

// SimAcked: Stripe counts any 2xx as delivered.
func (p *Provider) SimAcked(status int, _ []byte) bool { return status >= 200 && status <= 299 }

// SimRetries is SimRetrySchedule.
func (p *Provider) SimRetries() []time.Duration { return SimRetrySchedule }

// SimServerError is Stripe's answer to a failure on its side: HTTP 500
// with an api_error object (the client retries those: temporary).
func (p *Provider) SimServerError(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte(`{"error":{"type":"api_error","message":"An unknown error occurred"}}`))
}

// SimServe answers GET /v1/payment_intents/{id} with the bearer api_key
// check and Stripe's error objects (401 for a wrong key, 404
// resource_missing for an unknown id).
func (p *Provider) SimServe(w http.ResponseWriter, r *http.Request, acct providers.Account, path string, find providers.SimLookup) bool {
	id, ok := strings.CutPrefix(path, "/v1/payment_intents/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return false
	}
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	stripeError := func(status int, typ, code, msg string) {
		e := map[string]any{"type": typ, "message": msg}
		if code != "" {
			e["code"] = code
		}
		reply(status, map[string]any{"error": e})
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		stripeError(http.StatusMethodNotAllowed, "invalid_request_error", "", "Unrecognized request URL (GET only).")
		return true
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+acct.Key("api_key"))) != 1 {
		stripeError(http.StatusUnauthorized, "invalid_request_error", "", "Invalid API Key provided.")
		return true
	}
	o, found := find(events.KindPayin, "", id)
	if !found {
		stripeError(http.StatusNotFound, "invalid_request_error", "resource_missing", "No such payment_intent: '"+providers.Clip(id, 64)+"'")
		return true
	}
	_, obj, err := simObject(o)
	if err != nil {
		stripeError(http.StatusInternalServerError, "api_error", "", "cannot render the PaymentIntent")
		return true
	}
	if o.Status == events.StatusSucceeded {
		obj.LatestCharge = o.Reference
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(obj.obj().Bytes(), '\n'))
	return true
}
