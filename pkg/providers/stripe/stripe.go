// Package stripe verifies and decodes Stripe webhook events and queries
// PaymentIntents (Stripe's public documentation: "Webhooks", "Check the
// webhook signatures", "Event types", "Zero-decimal currencies", "Retrieve
// a PaymentIntent").
//
// A Stripe webhook endpoint is registered per kind: the payin URL with the
// payment_intent.* events enabled, the payout URL with payout.*. Each
// request carries Stripe-Signature "t=<unix>,v1=<hex>,...": v1 is the
// HMAC-SHA256 of "{t}.{raw body}" under the endpoint's signing secret,
// and any one v1 matching is enough (Stripe signs with the old and the new
// secret while one is rolled). A t more than DefaultTolerance from when the
// request arrived is refused (reason too_old), so a captured request cannot
// be replayed later.
//
// The body is an Event {"id","type","created","data":{"object":{...}}}:
//
//	payment_intent.succeeded       payin succeeded  amount_received paid of amount
//	payment_intent.payment_failed  payin failed
//	payment_intent.processing      payin pending
//	payout.paid                    payout succeeded
//	payout.failed                  payout failed    failure_message kept
//
// The object's id (pi_..., po_...) is provider_order_id; metadata.order_id,
// which the merchant sets when creating the PaymentIntent or Payout, is
// merchant_order_id, and the object id stands in when it is absent. Other
// event types verify and are acknowledged, but carry no event
// (providers.ErrIgnored). Stripe counts any 2xx as delivered and otherwise
// retries for up to three days with exponential backoff.
package stripe

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/strictjson"
)

// Name is the provider's name in URLs, subjects and config.
const Name = "stripe"

// MaxBody bounds a webhook body. Stripe's events are a few KiB; a
// PaymentIntent with expanded charges stays well under this.
const MaxBody = 256 << 10

// maxDepth bounds JSON nesting (an Event nests its object's own objects).
const maxDepth = 32

// maxIDLen bounds ids taken from the body (Stripe's are under 100 bytes).
const maxIDLen = 128

// Provider is stripe's registration: webhooks (providers.Inbound), the
// PaymentIntent query (providers.Querier; a watch must carry the pi_ id,
// providers.WatchNeeds) and its accounts' keys (providers.Credentials).
type Provider struct {
	client *Client
}

// New returns the provider, querying with a default Client.
func New() *Provider { return &Provider{client: NewClient(nil)} }

var (
	_ providers.Inbound     = (*Provider)(nil)
	_ providers.Querier     = (*Provider)(nil)
	_ providers.WatchNeeds  = (*Provider)(nil)
	_ providers.Credentials = (*Provider)(nil)
)

// Name is "stripe".
func (p *Provider) Name() string { return Name }

// Kinds are payin (PaymentIntents) and payout (Payouts).
func (p *Provider) Kinds() []events.Kind {
	return []events.Kind{events.KindPayin, events.KindPayout}
}

// Ack is HTTP 200 with {"received":true}: Stripe counts any 2xx as delivered.
func (p *Provider) Ack(events.Kind) providers.Reply {
	return providers.Reply{Status: http.StatusOK, ContentType: "application/json", Body: []byte(`{"received":true}`)}
}

// CheckAccount checks an account's stripe keys: secret, the endpoint's
// signing secret ("whsec_..."), and api_key, the secret API key the
// reconciler queries with ("sk_..." or a restricted "rk_..."), are
// required.
func (p *Provider) CheckAccount(acct providers.Account) error {
	if err := providers.CheckKeys(acct, []string{"secret", "api_key"}); err != nil {
		return err
	}
	if !hasPrefix(acct.Key("secret"), "whsec_") {
		return providers.KeyErrorf("secret", "must be the endpoint's signing secret, whsec_...")
	}
	if !hasPrefix(acct.Key("api_key"), "sk_") && !hasPrefix(acct.Key("api_key"), "rk_") {
		return providers.KeyErrorf("api_key", "must be a secret or restricted API key, sk_... or rk_...")
	}
	return nil
}

// hasPrefix reports whether key starts with the public prefix, compared in
// constant time like every other comparison involving a key.
func hasPrefix(key, prefix string) bool {
	return len(key) >= len(prefix) && subtle.ConstantTimeCompare([]byte(key[:len(prefix)]), []byte(prefix)) == 1
}

// WatchNeeds: a PaymentIntent is retrieved by its pi_ id, which a watch
// must therefore carry as provider_order_id.
func (p *Provider) WatchNeeds() providers.Watch { return providers.Watch{ProviderOrderID: true} }

// Query is Client.Query on the provider's client.
func (p *Provider) Query(ctx context.Context, acct providers.Account, order providers.Order, retrigger bool) (providers.QueryResult, error) {
	return p.client.Query(ctx, acct, order, retrigger)
}

// Parse verifies the request and decodes it: Verify, then Event.
func (p *Provider) Parse(acct providers.Account, req providers.Request) (events.Event, error) {
	cb, err := p.Verify(acct, req)
	if err != nil {
		return events.Event{}, err
	}
	return providers.Checked(cb.Event())
}

// Callback is a webhook whose signature verified. Only Verify produces one.
type Callback struct {
	acct       providers.Account
	kind       events.Kind
	receivedAt time.Time
	signedAt   time.Time
	event      map[string]any
}

// Verify checks the Stripe-Signature of req under the account's secret,
// with req.ReceivedAt (or the current time when it is zero) as now, and
// that the body is one JSON object. Errors are *providers.RejectError.
func (p *Provider) Verify(acct providers.Account, req providers.Request) (*Callback, error) {
	if req.Kind != events.KindPayin && req.Kind != events.KindPayout {
		return nil, providers.Reject(providers.ReasonWrongKind, providers.ErrKind, "stripe sends no %q webhooks", req.Kind)
	}
	secret := acct.Key("secret")
	if secret == "" {
		return nil, providers.Reject(providers.ReasonNoKey, providers.ErrSignature, "account %q has no signing secret", acct.ID)
	}
	switch {
	case len(req.Body) == 0:
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "empty body")
	case len(req.Body) > MaxBody:
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "body over %d bytes", MaxBody)
	}
	now := req.ReceivedAt
	if now.IsZero() {
		now = time.Now()
	}
	headers := req.Header.Values(HeaderSignature)
	if len(headers) > 1 {
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%d %s headers", len(headers), HeaderSignature)
	}
	header := ""
	if len(headers) == 1 {
		header = headers[0]
	}
	signedAt, err := verify(header, req.Body, secret, now, DefaultTolerance)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(req.Body) {
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "body is not UTF-8")
	}
	ev, err := strictjson.DecodeObject(req.Body, maxDepth)
	if err != nil {
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%v", err)
	}
	return &Callback{acct: acct, kind: req.Kind, receivedAt: req.ReceivedAt, signedAt: signedAt, event: ev}, nil
}

// statusOf maps an event type to the kind it belongs to and the status it
// reports; ok is false for a type payhook does not publish.
func statusOf(typ string) (kind events.Kind, status events.Status, ok bool) {
	switch typ {
	case "payment_intent.succeeded":
		return events.KindPayin, events.StatusSucceeded, true
	case "payment_intent.payment_failed":
		return events.KindPayin, events.StatusFailed, true
	case "payment_intent.processing":
		return events.KindPayin, events.StatusPending, true
	case "payout.paid":
		return events.KindPayout, events.StatusSucceeded, true
	case "payout.failed":
		return events.KindPayout, events.StatusFailed, true
	}
	return "", "", false
}

// Event decodes the verified webhook. A type payhook does not map wraps
// providers.ErrIgnored; a mapped type sent to the other kind's URL is
// refused (the endpoint is registered with the wrong events).
func (c *Callback) Event() (events.Event, error) {
	if c == nil || c.event == nil {
		return events.Event{}, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "not a verified webhook")
	}
	typ, _ := c.event["type"].(string)
	if typ == "" {
		return events.Event{}, providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "type missing or not a string")
	}
	kind, status, ok := statusOf(typ)
	if !ok {
		return events.Event{}, providerIgnored(typ)
	}
	if kind != c.kind {
		return events.Event{}, providers.Reject(providers.ReasonWrongKind, providers.ErrKind, "a %s event on the %s endpoint", providers.Clip(typ, 40), c.kind)
	}
	evtID, err := idField(c.event, "id")
	if err != nil {
		return events.Event{}, err
	}
	created, ok := c.event["created"].(json.Number)
	secs, cerr := strconv.ParseInt(created.String(), 10, 64)
	if !ok || cerr != nil || secs < 0 || secs > 253402300799 {
		return events.Event{}, providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "created missing or not a unix time")
	}
	data, _ := c.event["data"].(map[string]any)
	obj, _ := data["object"].(map[string]any)
	if obj == nil {
		return events.Event{}, providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "data.object missing or not an object")
	}
	ev, err := decodeObject(c.acct, kind, status, obj, events.OriginCallback)
	if err != nil {
		return events.Event{}, err
	}
	ev.OccurredAt = time.Unix(secs, 0).UTC()
	ev.ReceivedAt = c.receivedAt
	// The Stripe-Signature t: besides DefaultTolerance, the account's
	// max_age applies to it like to every provider's signed time.
	ev.SignedAt = c.signedAt.UTC()
	ev.ProviderFields["event_id"] = evtID
	ev.ProviderFields["type"] = typ
	if live, ok := c.event["livemode"].(bool); ok {
		ev.ProviderFields["livemode"] = live
	}
	return ev, nil
}

func providerIgnored(typ string) error {
	return &ignoredError{typ: providers.Clip(typ, 64)}
}

// ignoredError is a verified webhook of a type payhook does not publish.
type ignoredError struct{ typ string }

func (e *ignoredError) Error() string {
	return "stripe event type " + e.typ + " carries no payhook event"
}
func (e *ignoredError) Unwrap() error { return providers.ErrIgnored }

// decodeObject maps a PaymentIntent (payin) or Payout (payout) object to
// the event for status; shared by webhooks and query answers.
func decodeObject(acct providers.Account, kind events.Kind, status events.Status, obj map[string]any, origin events.Origin) (events.Event, error) {
	id, err := idField(obj, "id")
	if err != nil {
		return events.Event{}, err
	}
	want := "pi_"
	if kind == events.KindPayout {
		want = "po_"
	}
	if !strings.HasPrefix(id, want) {
		return events.Event{}, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "object id is not a %s id", want)
	}
	orderID := id
	meta, _ := obj["metadata"].(map[string]any)
	if v, present := meta["order_id"]; present {
		s, ok := v.(string)
		if !ok || s == "" || len(s) > maxIDLen {
			return events.Event{}, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "metadata.order_id is not an order id")
		}
		orderID = s
	}
	currency, err := currencyOf(obj)
	if err != nil {
		return events.Event{}, err
	}
	requested, err := amountOf(obj, "amount", currency)
	if err != nil {
		return events.Event{}, err
	}
	ev := events.Event{
		Provider:        Name,
		Account:         acct.ID,
		Kind:            kind,
		Status:          status,
		MerchantOrderID: orderID,
		ProviderOrderID: id,
		Amount:          requested,
		RequestedAmount: &requested,
		Origin:          origin,
		ProviderFields:  map[string]any{"object_id": id, "currency": strings.ToLower(currency), "amount": requested.Value},
	}
	if s, ok := obj["status"].(string); ok {
		ev.ProviderFields["status"] = providers.Clip(s, 64)
	}
	if kind == events.KindPayin && status == events.StatusSucceeded {
		received, err := amountOf(obj, "amount_received", currency)
		if err != nil {
			return events.Event{}, err
		}
		ev.Amount = received
		ev.AmountMismatch = received.Cmp(requested) != 0
		ev.ProviderFields["amount_received"] = received.Value
	}
	if ch, ok := obj["latest_charge"].(string); ok {
		ev.Reference = ch // normalized (or dropped) by providers.Checked
	}
	if kind == events.KindPayout {
		if msg, ok := obj["failure_message"].(string); ok && msg != "" {
			ev.ProviderFields["failure_message"] = providers.Clip(msg, 200)
		}
	} else if lpe, ok := obj["last_payment_error"].(map[string]any); ok {
		if code, ok := lpe["code"].(string); ok {
			ev.ProviderFields["failure_code"] = providers.Clip(code, 64)
		}
	}
	return ev, nil
}

// idField reads a required string id of at most maxIDLen bytes.
func idField(m map[string]any, name string) (string, error) {
	s, ok := m[name].(string)
	switch {
	case !ok || s == "":
		return "", providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "%s missing or not a string", name)
	case len(s) > maxIDLen || !events.ValidOrderID(s):
		return "", providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%s is not an id", name)
	}
	return s, nil
}
