package providersim

import (
	"errors"
	"slices"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Outcome is an order's state at the simulated provider.
type Outcome string

// Outcomes.
const (
	Pending   Outcome = "pending"
	Succeeded Outcome = "succeeded"
	Failed    Outcome = "failed"
)

func (o Outcome) valid() bool { return o == Pending || o == Succeeded || o == Failed }

func (o Outcome) opposite() Outcome {
	if o == Succeeded {
		return Failed
	}
	return Succeeded
}

// Faults are what can go wrong with one order. The zero value is a
// well-behaved provider.
type Faults struct {
	// DropCallback: the provider never sends the order's callbacks (the
	// order is still queryable, so the reconciler must find it). A resend
	// asked for later through the provider's API (SimDesk.Resend) is still
	// sent.
	DropCallback bool
	// Duplicate sends the final callback this many extra times (same bytes).
	Duplicate int
	// ReorderFailSuccess first sends a callback with the opposite terminal
	// status, then the real one: fail then success for an order that
	// succeeds, success then fail for one that fails. Not possible where
	// the provider's callbacks cannot say "failed" (Reorders).
	ReorderFailSuccess bool
	// CorruptSignature corrupts every attempt of every callback of the order
	// (the signature, or the ciphertext), as a provider with the
	// wrong key would: ingress must refuse each, and the provider retries the
	// same bad bytes until it gives up.
	CorruptSignature bool
	// Delay holds the order pending this long (real time, not scaled) before
	// it completes and its callbacks start.
	Delay time.Duration
	// QueryFails: the query endpoints answer this order with HTTP 500 and
	// the provider's internal-error reply.
	QueryFails bool
	// QueryTimeout: the query endpoints never answer this order; the request
	// hangs until the client gives up (or the simulator closes).
	QueryTimeout bool
}

func (f Faults) any() bool { return f != Faults{} }

// merge ORs g into f.
func (f Faults) merge(g Faults) Faults {
	f.DropCallback = f.DropCallback || g.DropCallback
	f.Duplicate = max(f.Duplicate, g.Duplicate)
	f.ReorderFailSuccess = f.ReorderFailSuccess || g.ReorderFailSuccess
	f.CorruptSignature = f.CorruptSignature || g.CorruptSignature
	f.Delay = max(f.Delay, g.Delay)
	f.QueryFails = f.QueryFails || g.QueryFails
	f.QueryTimeout = f.QueryTimeout || g.QueryTimeout
	return f
}

// OrderSpec describes an order to create.
type OrderSpec struct {
	// Provider and Account (an id from Config.Accounts) name the account.
	Provider string
	Account  string
	// Kind is one the provider's simulated side creates (Kinds; default
	// payin).
	Kind events.Kind
	// MerchantOrderID is generated when empty (by the provider's SimIDs;
	// where the provider has no merchant order number, its own id). For an
	// appeal it is the pay-in order appealed (generated when empty).
	MerchantOrderID string
	// Amount is the requested amount in major units, an exact decimal
	// ("100.00"). Generated when empty.
	Amount string
	// PaidAmount, when set, is what the payer actually paid, as against
	// the amount asked for: an amount mismatch.
	PaidAmount string
	// Outcome is the final state: succeeded, failed or pending (no final callback).
	Outcome Outcome
	// Faults to inject for this order, on top of Config.Faults.
	Faults Faults
	// Reference is the bank or channel reference (UTR/RRN) the payer got,
	// where the provider has one. Generated when empty.
	Reference string
	// AppealNo is an appeal's merchant number; generated when empty.
	AppealNo string
	// Intermediate sends a pending callback before the final one, where the
	// provider can (SendsIntermediate).
	Intermediate bool
	// Service is the order's pay type or service code at the provider
	// (providers.SimOrder.PayType); drawn by the provider when empty.
	Service string
	// NotifyURL overrides where callbacks go.
	NotifyURL string
}

// Delivery causes: why a callback was sent.
const (
	CauseCallback  = "callback"  // the order completed
	CauseProgress  = "progress"  // a pending callback before the final one (Intermediate)
	CauseReorder   = "reorder"   // the opposite status first (ReorderFailSuccess)
	CauseDuplicate = "duplicate" // an extra copy (Faults.Duplicate)
	CauseRetrigger = "retrigger" // a resend the merchant asked for (SimDesk.Resend)
	CauseReplenish = "replenish" // a replenishment opened through the API completed (SimDesk.Open)
	CauseAppeal    = "appeal"    // an appeal opened through the API decided (SimDesk.Open)
)

// Delivery is one callback (one body) and every attempt to deliver it.
type Delivery struct {
	// Seq numbers the order's deliveries from 1, in the order they started.
	Seq   int
	Cause string
	// Status is what the callback says (Pending for a pending callback).
	Status   Outcome
	Corrupt  bool
	URL      string
	Attempts []Attempt
	Acked    bool
	GaveUp   bool
}

// Attempt is one POST of a delivery.
type Attempt struct {
	N          int // 1 is the first send, 2 the first retry, ...
	At         time.Time
	HTTPStatus int    // 0 when the request failed
	Err        string // transport error, payload-free
	Acked      bool
}

// Order is a snapshot of a simulated order.
type Order struct {
	// ID is provider/account/kind/key, key being MerchantOrderID, or
	// AppealNo for appeals.
	ID              string
	Provider        string
	Account         string
	Kind            events.Kind
	MerchantOrderID string
	ProviderOrderID string
	Reference       string
	AppealNo        string
	Amount          string
	PaidAmount      string
	Currency        string
	// Outcome is the final state asked for; Status is the state now.
	Outcome Outcome
	Status  Outcome
	Faults  Faults
	// Matched is the reference the order was matched with (SimDesk.Match), once it was.
	Matched    string
	CreatedAt  time.Time
	Deliveries []Delivery
	// Queries counts query requests about the order that passed the signature check.
	Queries int
}

// Attempts counts every attempt over all deliveries.
func (o Order) Attempts() int {
	n := 0
	for _, d := range o.Deliveries {
		n += len(d.Attempts)
	}
	return n
}

// Acked reports whether any delivery of the order was acknowledged.
func (o Order) Acked() bool {
	return slices.ContainsFunc(o.Deliveries, func(d Delivery) bool { return d.Acked })
}

func (o *Order) clone() Order {
	c := *o
	c.Deliveries = make([]Delivery, len(o.Deliveries))
	for i, d := range o.Deliveries {
		d.Attempts = slices.Clone(d.Attempts)
		c.Deliveries[i] = d
	}
	return c
}

// EventID is the deterministic id (events.Event.ID) payhook gives the event
// this order produces in status, whether it arrives by callback, re-trigger
// or poll: keyed as the provider's simulated side says (providers.SimKeyed),
// otherwise by the merchant order id alone. The end-to-end suite matches
// subscriber deliveries with it.
func (o Order) EventID(status events.Status) string {
	ev := events.Event{Provider: o.Provider, Account: o.Account, Kind: o.Kind, Status: status, MerchantOrderID: o.MerchantOrderID}
	if k, ok := simulated[o.Provider].(providers.SimKeyed); ok {
		ev.IdempotencyKey = k.SimIdempotencyKey(o.sim(status))
	}
	return ev.ID()
}

// OrderID builds the id of an order: provider/account/kind/key.
func OrderID(provider, account string, kind events.Kind, key string) string {
	return provider + "/" + account + "/" + string(kind) + "/" + key
}

// Errors from CreateOrder and Settle.
var (
	ErrUnknownAccount = errors.New("providersim: unknown account")
	ErrUnsupported    = errors.New("providersim: not supported by this provider")
	ErrBadSpec        = errors.New("providersim: bad order spec")
	ErrDuplicateOrder = errors.New("providersim: order already exists")
	ErrNoOrder        = errors.New("providersim: no such order")
	ErrClosed         = errors.New("providersim: closed")
)
