package providers

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/payhook/payhook/pkg/events"
)

// A provider package offers one value (its New()) that implements Provider
// and, as far as the provider can, the role interfaces below. The rest of
// payhook asks a Set for the providers with a role (With, Role) and never
// for a provider by name: a new provider is its package plus one line in the
// registry.
//
// The roles:
//   - Inbound: it calls us back (verify and decode the raw request, its own
//     ack); where its callbacks carry a signed time, the decoded event's
//     SignedAt holds it and ingress applies accounts[].max_age to it.
//   - ClaimedOrder: it reads, without trusting it, the order id a refused
//     request claims (for the trace index, marked unverified).
//   - Credentials: it checks its own keys of an account's config block;
//     CallbackIdentity: what tells its accounts' callbacks apart.
//   - Querier: it answers order queries (the reconciler polls it).
//   - Retriggerer: its query can ask for the callback to be sent again.
//   - WatchNeeds: a watch for it must carry more than the merchant order id.
//   - ReferenceSubmitter: it takes bank references (UTR/RRN) for orders.
//   - Simulated: its side of the wire, for the simulator and the test
//     suites (SimServerError: how that side fails); Demo: a ready test
//     account.
//   - hostile.Provider (package pkg/providers/hostile, as it speaks that
//     package's types): its callbacks field by field, its signer and its
//     own mutations, for the bad-input corpus.

// Provider is what every registered provider is: a name, as used in URLs,
// subjects and config ([a-z0-9]+).
type Provider interface {
	Name() string
}

// Credentials is implemented by a provider whose accounts carry keys of
// their own (Account.Keys). CheckAccount refuses a key it does not know, a
// required key that is missing and a value it cannot use; the error is a
// *KeyError naming the key, so that config can name its dotted path.
type Credentials interface {
	CheckAccount(acct Account) error
}

// CallbackIdentity is implemented by a provider that can tell, from an
// account's keys, what distinguishes its callbacks for that account from
// another account's: id is the key they verify under, with the merchant id
// they carry where they carry one; what names those keys for an error.
// Two accounts of the provider with one identity are a config error: a
// callback would verify for both and be stored once per account.
type CallbackIdentity interface {
	CallbackIdentity(acct Account) (id, what string)
}

// ClaimedOrder is implemented by an Inbound provider that can read, from a
// request that did NOT verify, the merchant order id its bytes claim to be
// about, so that payhookctl trace can list a refused callback (a broken key,
// a corrupted body) under the order it names, marked unverified.
//
// ClaimedOrder verifies nothing and its answer proves nothing: anyone can
// claim any order. It reads the id the way Parse would decode it from a
// genuine callback (the same field; for an encrypted body, what decrypts
// under the account's key, else nothing), reports ok only for a non-empty
// id taken from the request's bytes (never longer than the body), and never
// panics whatever it is given. The caller bounds and validates what it gets
// (events.ValidOrderID) and never lets it change an event, a reply or any
// other state.
type ClaimedOrder interface {
	ClaimedOrder(acct Account, req Request) (orderID string, ok bool)
}

// Retriggerer is implemented by a provider whose query can ask it to send
// the callback again (the retrigger flag of Query). Resends tells for which
// answers it does: the resent callback's event is then labelled origin
// "retrigger" rather than "callback".
type Retriggerer interface {
	Querier
	Resends(kind events.Kind, status events.Status) bool
}

// Watch is what a provider needs a watch to carry for its query.
type Watch struct {
	// ProviderOrderID: the query is by the provider's order id, so a
	// watch without provider_order_id is refused.
	ProviderOrderID bool
	// Amount: the query answer gives the status but no amount, so a
	// terminal answer becomes an event only with the amount the watch was
	// announced with.
	Amount bool
}

// WatchNeeds is implemented by a provider whose query needs more from a
// watch than the merchant order id.
type WatchNeeds interface {
	WatchNeeds() Watch
}

// ReferenceSubmitter is implemented by a provider that takes a bank
// reference (UTR/RRN) for an order and matches it to the payment.
type ReferenceSubmitter interface {
	// CheckReference refuses, before anything is claimed or sent, an order
	// id or reference the provider would refuse.
	CheckReference(merchantOrderID, reference string) error
	// SubmitReference returns nil when the provider matched the reference.
	SubmitReference(ctx context.Context, acct Account, merchantOrderID, reference string) error
	// NotMatched tells, from SubmitReference's error, that the provider
	// looked and did not match the reference.
	NotMatched(err error) bool
}

// KeyError is a problem with one key of an account's config block: Key is
// the YAML key ("aes_key"), Msg says what is wrong without its value.
type KeyError struct {
	Key string
	Msg string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Msg }

// KeyErrorf builds a *KeyError.
func KeyErrorf(key, format string, args ...any) error {
	return &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// CheckKeys refuses a key of acct.Keys outside required and optional, and
// a required key that is missing or empty, naming the key. The provider's
// CheckAccount calls it first, then checks the values.
func CheckKeys(acct Account, required []string, optional ...string) error {
	var unknown []string
	for k := range acct.Keys {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		known := append(slices.Clone(required), optional...)
		sort.Strings(known)
		return KeyErrorf(unknown[0], "unknown key for %s (its keys: %s)", acct.Provider, strings.Join(known, ", "))
	}
	for _, k := range required {
		if acct.Keys[k] == "" {
			return KeyErrorf(k, "required for %s", acct.Provider)
		}
	}
	return nil
}

// Set is the group of providers a binary links, looked up by name and by role.
type Set struct {
	list   []Provider
	byName map[string]Provider
}

// NewSet builds a Set. Two providers with one name is a programming error: it panics.
func NewSet(ps ...Provider) *Set {
	s := &Set{byName: map[string]Provider{}}
	for _, p := range ps {
		if _, dup := s.byName[p.Name()]; dup {
			panic("providers: " + p.Name() + " registered twice")
		}
		s.byName[p.Name()] = p
		s.list = append(s.list, p)
	}
	return s
}

// Names lists the providers in registration order.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.list))
	for _, p := range s.list {
		out = append(out, p.Name())
	}
	return out
}

// Known reports whether name is a provider of the set.
func (s *Set) Known(name string) bool {
	_, ok := s.byName[name]
	return ok
}

// Get returns the provider named name.
func (s *Set) Get(name string) (Provider, bool) {
	p, ok := s.byName[name]
	return p, ok
}

// All lists the providers in registration order.
func (s *Set) All() []Provider { return slices.Clone(s.list) }

// CheckAccount refuses an account of an unknown provider and, through the
// provider's Credentials, one whose provider keys are wrong (a *KeyError).
// A provider without Credentials takes no keys of its own.
func (s *Set) CheckAccount(acct Account) error {
	p, ok := s.byName[acct.Provider]
	if !ok {
		return KeyErrorf("provider", "unknown provider %q (want one of %s)", acct.Provider, strings.Join(s.Names(), ", "))
	}
	if c, ok := p.(Credentials); ok {
		return c.CheckAccount(acct)
	}
	return CheckKeys(acct, nil)
}

// CallbackIdentity is the identity of acct's callbacks as its provider
// tells it (the CallbackIdentity role); ok is false for a provider without
// the role.
func (s *Set) CallbackIdentity(acct Account) (id, what string, ok bool) {
	ci, ok := s.byName[acct.Provider].(CallbackIdentity)
	if !ok {
		return "", "", false
	}
	id, what = ci.CallbackIdentity(acct)
	return id, what, true
}

// Role returns the provider named name as role R, when it has that role.
func Role[R any](s *Set, name string) (R, bool) {
	r, ok := s.byName[name].(R)
	return r, ok
}

// With returns the providers of s that have role R, by name.
func With[R any](s *Set) map[string]R {
	out := map[string]R{}
	for _, p := range s.list {
		if r, ok := p.(R); ok {
			out[p.Name()] = r
		}
	}
	return out
}

// CheckFixedSignRule refuses a sign_rule other than empty or "default".
// sign_rule chooses among signing rules where a provider's documentation
// leaves the rule open; a provider whose rule it fixes takes the key (so
// that one account layout fits every provider) but only as "default".
func CheckFixedSignRule(acct Account) error {
	if r := acct.Key("sign_rule"); r != "" && r != "default" {
		return KeyErrorf("sign_rule", "the %s signing rule is fixed by its documentation: only default, got %q", acct.Provider, r)
	}
	return nil
}
