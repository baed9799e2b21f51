// Package dedupe remembers, for days and across ingress replicas, which
// events payhook has published and what each order's last recorded status
// is, so that downstream sees each fact once: a provider's retries, a poll
// that finds what a callback already told and a re-triggered callback all
// collapse to the first event; a pending after a terminal status is dropped
// as stale; a terminal status contradicted by the other one goes out as a
// conflict.
//
// The flow, per verified event e (ingress and reconciler alike):
//
//	o := dedupe.OrderOf(&e)
//	c, err := store.Check(ctx, e.ID(), o)           // one round trip
//	if errors.Is(err, dedupe.ErrUnavailable) { ... } // publish anyway: JetStream's Nats-Msg-Id window dedupes
//	switch dedupe.Decide(c, e.Status) {
//	case dedupe.Duplicate, dedupe.Stale: ack, count, done
//	case dedupe.Conflict: publish on payhook.events.{provider}.{kind}.conflict
//	case dedupe.New:      publish on e.Subject()
//	}                                               // both with Nats-Msg-Id = e.ID()
//	prior, err := store.RecordPrior(ctx, e.ID(), o, e.Status) // only after the publish was acknowledged
//	// a New whose Decide(Check{Order: prior}, e.Status) is Conflict lost a race: see below
//
// Nothing is claimed before the publish: if the publish fails, nothing is
// recorded and the provider's retry goes through (that is the "release").
// Two replicas handling the same callback at the same moment both see New and
// both publish; JetStream's duplicate window (minutes) keeps one message
// because both carry the same Nats-Msg-Id. The store covers the days after.
//
// # Contradicting statuses racing
//
// Check and Record are two round trips with a publish between them, so two
// replicas handling a success and a failure of one order at the same moment
// can both see New, and both publish on their normal subjects (different
// event ids: JetStream's window does not help). RecordPrior closes the gap
// after the fact: it is atomic and returns the state it found, so of the two
// Records exactly one finds the other's terminal status. Its caller
// (internal/publisher) then publishes a follow-up conflict event naming both
// facts, under the deterministic id e.ID()+":conflict", and counts it. The
// first terminal status recorded stands, as for conflicts seen at Check.
//
// What remains guaranteed, then, per order and for as long as the store is
// reachable: exactly one terminal status is recorded and stands; every
// terminal status that contradicts it is either published only as a conflict
// (the usual case: it arrived after the first was recorded) or, when it raced
// the first one, published normally and followed by exactly one conflict
// event naming the status that stands. Readers acting on terminal statuses
// must therefore read conflicts too (the dispatcher's statuses filter does
// so by default). A pending racing a terminal status the same way may be
// published after it; it is not retracted and gets no follow-up (a pending
// asserts nothing final; the recorded state stays terminal), only counted.
// While the store is down none of this is detected: see below.
//
// When the store is down, Check and Record return an error wrapping
// ErrUnavailable within their timeout (≤ 1 s by default) and the caller falls
// back to JetStream's window alone; it never refuses a valid callback because
// of the store. A store that loses its data (Redis restarted without
// persistence) forgets what it knew: Check then says not published, and only
// JetStream's window protects against a duplicate of the last minutes.
//
// Implementations: redisdedupe (production), kvdedupe (a NATS key-value
// bucket, for devstack and single-dependency installs) and memdedupe (tests
// of callers). All pass the conformance suite in dedupetest.
package dedupe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payhook/payhook/pkg/events"
)

// Defaults shared by every implementation.
const (
	// DefaultWindow is how long a published event id and an order's state are
	// remembered after the last Record for that order: 7 days, comfortably
	// longer than the longest provider retry schedule (cashypro: 10 tries over
	// ~17 h; mpurse: 5 tries over ~2 h) and than the reconciler's watch
	// schedule (1m … 24h, ~47 h in total).
	DefaultWindow = 7 * 24 * time.Hour

	// DefaultReferenceTTL is how long a claimed bank reference (UTR/RRN) stays
	// claimed: 180 days. A UTR names one bank transfer and is never reissued,
	// so a long TTL is only a memory cost (one ~100-byte key per submitted
	// reference), while too short a TTL would let a user who paid once
	// offer the same UTR again for another order months later. Configurable
	// per store (ReferenceTTL).
	DefaultReferenceTTL = 180 * 24 * time.Hour

	// DefaultTimeout bounds every store operation, so that a dead or hung
	// store turns into ErrUnavailable quickly instead of stalling a callback
	// (providers time out their callbacks after a few seconds).
	DefaultTimeout = 500 * time.Millisecond
)

// ErrUnavailable wraps every failure to reach the store or to get a usable
// answer from it (connection refused, timeout, cancelled context, server
// error). Callers fall back to JetStream's duplicate window.
var ErrUnavailable = errors.New("dedupe store unavailable")

// ErrInvalid reports arguments no store accepts: an empty id or order key
// part, an unknown kind, a status that is not a payment status.
var ErrInvalid = errors.New("invalid dedupe argument")

// Order identifies one order (or appeal) whose status is tracked.
type Order struct {
	Provider string
	Account  string
	Kind     events.Kind
	// Key is events.Event.OrderKey(): the idempotency key, else the merchant
	// order id, else the provider's order id.
	Key string
}

// OrderOf returns the order e is about: provider, account, kind and e.OrderKey().
func OrderOf(e *events.Event) Order {
	return Order{Provider: e.Provider, Account: e.Account, Kind: e.Kind, Key: e.OrderKey()}
}

// MaxIDLen bounds event ids; payhook's own are 36 characters.
const MaxIDLen = 128

// maxPart bounds every key part: order ids at the providers are at most 64
// characters; 256 leaves room for composite idempotency keys.
const maxPart = 256

// Validate reports whether every part of o is present, bounded and the kind known.
func (o Order) Validate() error {
	switch {
	case o.Provider == "" || len(o.Provider) > maxPart:
		return fmt.Errorf("%w: order provider", ErrInvalid)
	case o.Account == "" || len(o.Account) > maxPart:
		return fmt.Errorf("%w: order account", ErrInvalid)
	case !o.Kind.Valid():
		return fmt.Errorf("%w: order kind %q", ErrInvalid, o.Kind)
	case o.Key == "" || len(o.Key) > maxPart:
		return fmt.Errorf("%w: order key", ErrInvalid)
	}
	return nil
}

// String renders o as provider/account/kind/key, for logs.
func (o Order) String() string {
	return o.Provider + "/" + o.Account + "/" + string(o.Kind) + "/" + o.Key
}

// OrderState is the last status recorded for an order and the id of the
// event that set it. The zero value means no state is known.
type OrderState struct {
	Status  events.Status
	EventID string
}

// Known reports whether a state was recorded.
func (s OrderState) Known() bool { return s.Status != "" }

// Check is what the store knows about an event and its order.
type Check struct {
	// Published reports that this event id was recorded within the window.
	Published bool
	// Order is the order's last recorded state (zero when none).
	Order OrderState
}

// Store remembers published events and order states. Implementations are
// safe for concurrent use.
type Store interface {
	// Check reports, in one round trip, whether id was already published
	// within the window and the order's last recorded state. It does not
	// change anything. Errors wrap ErrUnavailable (or ErrInvalid).
	Check(ctx context.Context, id string, o Order) (Check, error)

	// Record is RecordPrior without the prior state.
	Record(ctx context.Context, id string, o Order, status events.Status) error

	// RecordPrior marks id as published and sets o's state to (status, id),
	// in one atomic round trip, unless that would move a terminal status: a
	// terminal status never goes back to pending, and once one terminal
	// status is recorded a conflicting one is marked published but does not
	// replace it (the first terminal status wins). It returns the order's
	// state as it stood just before, read in the same atomic step (zero when
	// none): Decide(Check{Order: prior}, status) is Conflict exactly when
	// another caller recorded the other terminal status first, which for an
	// event Check had found New means the two raced. Both the mark and the
	// state live for the window after this call. Call it only after the
	// publish (normal or conflict) was acknowledged. Errors wrap
	// ErrUnavailable (or ErrInvalid).
	RecordPrior(ctx context.Context, id string, o Order, status events.Status) (prior OrderState, err error)

	// Ping checks that the store answers, for readiness probes.
	Ping(ctx context.Context) error

	// Close releases what the store opened itself (not clients passed in).
	Close() error
}

// References claims bank references (UTR/RRN) for orders, so that one bank
// transfer is never submitted to a provider for two orders. Implementations
// are safe for concurrent use; a claim lives DefaultReferenceTTL unless configured.
type References interface {
	// ClaimReference claims reference within account for merchantOrderID,
	// atomically. claimed is true when the reference is now held by this
	// order, including when this order already held it (claiming is
	// idempotent). claimed is false when another order holds it; owner is
	// then that order's id (otherwise owner is merchantOrderID). References
	// are compared exactly: callers normalize (trim, case) before calling.
	// Errors wrap ErrUnavailable (or ErrInvalid).
	ClaimReference(ctx context.Context, account, reference, merchantOrderID string) (owner string, claimed bool, err error)

	// ReleaseReference drops the claim if merchantOrderID holds it (after the
	// provider refused the submission, say); releasing a reference held by
	// another order, or not held at all, does nothing and returns nil.
	ReleaseReference(ctx context.Context, account, reference, merchantOrderID string) error
}

// ValidateReference checks the arguments of ClaimReference and ReleaseReference.
func ValidateReference(account, reference, merchantOrderID string) error {
	switch {
	case account == "" || len(account) > maxPart:
		return fmt.Errorf("%w: reference account", ErrInvalid)
	case reference == "" || len(reference) > maxPart:
		return fmt.Errorf("%w: reference", ErrInvalid)
	case merchantOrderID == "" || len(merchantOrderID) > maxPart:
		return fmt.Errorf("%w: reference order id", ErrInvalid)
	}
	return nil
}

// ValidateCheck checks the arguments of Store.Check.
func ValidateCheck(id string, o Order) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: event id", ErrInvalid)
	}
	return o.Validate()
}

// ValidateRecord checks the arguments of Store.Record.
func ValidateRecord(id string, o Order, status events.Status) error {
	if !status.Valid() {
		return fmt.Errorf("%w: status %q", ErrInvalid, status)
	}
	return ValidateCheck(id, o)
}

// Verdict is what to do with an event, given what the store knows.
type Verdict int

// Verdicts. The zero value is New.
const (
	// New: publish normally on the event's subject, then Record.
	New Verdict = iota
	// Duplicate: already published (or the order already reached this
	// terminal status); acknowledge the provider, count, publish nothing.
	Duplicate
	// Stale: a pending after a terminal status; acknowledge, count, drop.
	Stale
	// Conflict: a terminal status contradicting the recorded terminal one;
	// publish on payhook.events.{provider}.{kind}.conflict, then Record
	// (which keeps the first terminal status).
	Conflict
)

var verdictNames = [...]string{New: "new", Duplicate: "duplicate", Stale: "stale", Conflict: "conflict"}

// String is the verdict's metric label: new, duplicate, stale or conflict.
func (v Verdict) String() string {
	if v >= 0 && int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Decide is payhook's one dedupe policy: the verdict for an event with the
// given status, given what Check returned.
//
//	published?  recorded       new status       verdict
//	yes         any            any              Duplicate
//	no          none/pending   any              New
//	no          terminal X     pending          Stale
//	no          terminal X     X                Duplicate (same fact; its id is X's id)
//	no          terminal X     the other one    Conflict
//
// status is expected to be a payment status (events.Status.Valid); anything
// else is treated like pending.
//
// Given the prior state RecordPrior returned instead of Check's answer,
// Decide(Check{Order: prior}, status) tells what a racing caller recorded
// first: Conflict (the other terminal status), Stale (a terminal status,
// for a pending) or else New or Duplicate (nothing that contradicts).
func Decide(c Check, status events.Status) Verdict {
	if c.Published {
		return Duplicate
	}
	if !c.Order.Status.Terminal() {
		return New
	}
	switch {
	case status == c.Order.Status:
		return Duplicate
	case status.Terminal():
		return Conflict
	default:
		return Stale
	}
}

// IsEventID reports whether id has the shape of events.Event.ID(), which
// stores keep as 16 raw bytes.
// The shape is "evt_" and 32 lower-case hex digits (checked by hand: this
// runs on every dedupe call, and a regexp was 2 % of ingress CPU).
func IsEventID(id string) bool {
	if len(id) != 36 || id[:4] != "evt_" {
		return false
	}
	for i := 4; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
