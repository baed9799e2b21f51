package providers

import (
	"net/http"
	"time"

	"github.com/payhook/payhook/pkg/events"
)

// SimOrder is an order as the provider simulator (pkg/providersim) holds
// it: what a provider's simulated side renders callbacks and query answers
// from.
type SimOrder struct {
	Kind            events.Kind
	MerchantOrderID string
	ProviderOrderID string
	Reference       string
	Amount          events.Money // asked for
	Paid            events.Money // paid (equal to Amount unless a test says otherwise)
	// Status is the order's status at the provider now: pending until it
	// completes, then succeeded or failed.
	Status      events.Status
	CompletedAt time.Time
	// AppealNo is the merchant's number of an appeal (kind appeal).
	AppealNo string
	// PayType is the order's pay type, channel or service code at the
	// provider, where its wire carries one: the merchant's choice, or drawn
	// by SimDrawer.
	PayType string
}

// SimLookup finds an order of the account by its provider order id or, when
// that is empty, by kind and merchant order id (given both, only an order
// that has both). Faults the test asked for (a query answered 500, or
// never) are applied by the simulator around it: ok is false for an order
// the provider does not know.
type SimLookup func(kind events.Kind, merchantOrderID, providerOrderID string) (o SimOrder, ok bool)

// Simulated is a provider's own side of the wire: what the provider
// simulator, devstack, the end-to-end and bad-input suites and the load
// generator need to act as the provider. It lives in the provider's
// package, beside the code that verifies the same bytes.
type Simulated interface {
	Provider
	// SimAccount is a demo account with id: keys the simulator and
	// payhook share, and the currency its orders are in. base_url is the
	// caller's (where the simulator serves SimServe).
	SimAccount(id string) Account
	// SimKinds are the order kinds the simulator creates for the provider.
	SimKinds() []events.Kind
	// SimExponent is the number of fraction digits amounts of kind carry
	// on the provider's wire in currency.
	SimExponent(kind events.Kind, currency string) int
	// SimIDs fills the provider's ids of a new order: ProviderOrderID
	// always where the provider numbers orders, MerchantOrderID and
	// Reference when empty. digits(n) draws n
	// random decimal digits.
	SimIDs(o *SimOrder, digits func(n int) string)
	// SimCallback renders the callback the provider sends about o (in
	// o.Status) at, signed or encrypted under acct; corrupt makes its
	// signature (or ciphertext) wrong, as a provider with the wrong key would.
	SimCallback(acct Account, o SimOrder, at time.Time, corrupt bool) (http.Header, []byte, error)
	// SimSign signs body, a callback the caller mutated, as the provider
	// would at at, returning the headers to send it with (the bad-input
	// corpus signs what it builds; the simulator signs each retry afresh).
	// It suits a provider whose signature travels beside the body; one
	// whose signature is a field of the body, or that encrypts the body,
	// answers an error wrapping ErrUnsupported (the bad-input corpus has
	// hostile.Provider's signer for those).
	SimSign(acct Account, kind events.Kind, body []byte, at time.Time) (http.Header, error)
	// SimAcked tells from payhook's reply whether the provider counts its
	// callback as delivered.
	SimAcked(status int, body []byte) bool
	// SimRetries is the provider's retry schedule for a callback that was
	// not acknowledged, unscaled: the delay before each retry.
	SimRetries() []time.Duration
	// SimServe answers a request to the provider's API (query and the
	// like) for acct; path is the request's path under the account's
	// base_url. It reports false for a path the provider does not serve.
	SimServe(w http.ResponseWriter, r *http.Request, acct Account, path string, find SimLookup) bool
}

// Demo is implemented by a provider with a ready-made test account: its
// id, keys and currency, with test keys that the simulator shares (the
// provider's published example keys where it has them). devstack and the
// end-to-end suites configure it, pointing base_url at the simulator.
type Demo interface {
	DemoAccount() Account
}

// SimServerError is implemented by a Simulated provider that answers a
// failure of its own API (the simulator's query-fail fault) in its own
// format; without it the simulator answers a bare HTTP 500.
type SimServerError interface {
	SimServerError(w http.ResponseWriter)
}
