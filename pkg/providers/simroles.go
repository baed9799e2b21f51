package providers

import (
	"errors"
	"net/http"

	"github.com/payhook/payhook/pkg/events"
)

// Optional roles of a Simulated provider: what its side of the wire does
// beyond Simulated. The simulator, devstack, the end-to-end books and the
// load generator discover each by type assertion; a provider without one
// behaves as the role's doc says.

// SimSelective is implemented by a Simulated provider that does not call
// back about every order it completes. Without it, every status is called
// back.
type SimSelective interface {
	// SimCallsBack reports whether the provider sends a callback about o
	// in o.Status. failures asks it to call back failures where it
	// usually calls back only successes (the simulator's CallbackFailures);
	// a provider whose callbacks cannot say "failed" still does not.
	SimCallsBack(o SimOrder, failures bool) bool
}

// SimIntermediate is implemented by a Simulated provider that can send a
// pending callback before the final one (an order created with
// Intermediate).
type SimIntermediate interface {
	SimIntermediate(kind events.Kind) bool
}

// SimDrawer is implemented by a Simulated provider that draws a new
// order's amount or pay type its own way. intn(n) draws from [0, n).
type SimDrawer interface {
	// SimAmount is an amount in major units for an order of kind in
	// currency, as an exact decimal; "" leaves it to the simulator (a
	// plausible amount in SimExponent's precision).
	SimAmount(kind events.Kind, currency string, intn func(n int) int) string
	// SimPayType is the pay type (SimOrder.PayType) of an order that names
	// none; "" for none.
	SimPayType(kind events.Kind, intn func(n int) int) string
}

// SimKeyed is implemented by a Simulated provider whose events carry an
// idempotency key (events.Event.IdempotencyKey): SimIdempotencyKey is the
// key of the events about o ("" for none), so that a test can compute
// their ids.
type SimKeyed interface {
	SimIdempotencyKey(o SimOrder) string
}

// SimOpaque is implemented by a Simulated provider whose callback bodies
// are encrypted: SimPlain recovers what it can of body under acct (also of
// a corrupted one), so that a test can tell which order a refused callback
// was about. It returns nil when it cannot.
type SimOpaque interface {
	SimPlain(acct Account, body []byte) []byte
}

// SimDeskServer is implemented by a Simulated provider whose API does more
// than answer from a lookup: it resends callbacks, matches references or
// takes requests that its staff complete later. The simulator then calls
// SimServeDesk instead of SimServe; path and the result are as SimServe's.
type SimDeskServer interface {
	SimServeDesk(w http.ResponseWriter, r *http.Request, acct Account, path string, desk SimDesk) bool
}

// SimDesk is the simulator's side of a provider's API (SimDeskServer), for
// one request.
type SimDesk interface {
	// Find is the request's SimLookup: the order's query faults are
	// applied, and the query is counted, when it is found.
	Find(kind events.Kind, merchantOrderID, providerOrderID string) (SimOrder, bool)
	// BadSignature counts a request refused for its signature.
	BadSignature()
	// Resend sends o's final callback again, with its retries, even when
	// its first callbacks were dropped (a resend the merchant asked for).
	Resend(o SimOrder)
	// Open creates an order the merchant asked for through the API, which
	// the provider's staff complete later; see SimOpen.
	Open(req SimOpen) (SimOrder, error)
	// Match matches reference, a bank reference (UTR/RRN) the merchant
	// submits, to o: it matches when the payer paid o with it and no other
	// order has it; o then succeeds.
	Match(o SimOrder, reference string) SimMatch
}

// SimOpen is an order the merchant asks a provider to open.
type SimOpen struct {
	// Kind payin is a replenishment: a new pay-in that the staff complete
	// as succeeded after the simulator's replenish delay. Kind appeal is
	// an appeal about the pay-in whose provider order id is
	// ProviderOrderID (at most one per pay-in), decided after the
	// simulator's appeal delay with its appeal outcome; its callback goes
	// to NotifyURL when set.
	Kind            events.Kind
	MerchantOrderID string
	ProviderOrderID string
	AppealNo        string
	// Amount is in major units, an exact decimal.
	Amount    string
	PayType   string
	NotifyURL string
}

// ErrSimExists is returned by SimDesk.Open for an order that exists (a
// merchant order id, or an appeal, already made).
var ErrSimExists = errors.New("order already exists")

// SimMatch is what SimDesk.Match found.
type SimMatch int

// SimDesk.Match's answers.
const (
	// SimMatched: the reference is the order's (now, or already before).
	SimMatched SimMatch = iota
	// SimReferenceUsed: another order was matched with the reference.
	SimReferenceUsed
	// SimNotMatched: the payer did not pay the order with the reference.
	SimNotMatched
)

// LookupDesk is a SimDesk over find alone, for a SimDeskServer's SimServe:
// it counts nothing, resends nothing, opens no order (ErrUnsupported) and
// matches no reference.
func LookupDesk(find SimLookup) SimDesk { return lookupDesk(find) }

type lookupDesk SimLookup

func (d lookupDesk) Find(kind events.Kind, merchantOrderID, providerOrderID string) (SimOrder, bool) {
	return d(kind, merchantOrderID, providerOrderID)
}
func (lookupDesk) BadSignature()                   {}
func (lookupDesk) Resend(SimOrder)                 {}
func (lookupDesk) Open(SimOpen) (SimOrder, error)  { return SimOrder{}, ErrUnsupported }
func (lookupDesk) Match(SimOrder, string) SimMatch { return SimNotMatched }
