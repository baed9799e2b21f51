package e2e

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providersim"
)

// Expectation is one event the books expect on PAYHOOK_EVENTS and at every
// subscriber.
type Expectation struct {
	// ID is the event id: Nats-Msg-Id, CloudEvent id and webhook-id.
	ID string
	// OrderID is the simulator's order id; Provider, Account, Kind the order's.
	OrderID  string
	Provider string
	Account  string
	Kind     events.Kind
	// Status is the subject's status token: pending, succeeded, failed, or
	// conflict for a terminal status contradicting the first one.
	Status events.Status
	// Via is how it gets there: callback, poll or retrigger.
	Via string
	// Optional events may or may not exist (a cashypro PAYING whose first
	// attempt was refused may arrive after the final status, as stale).
	Optional bool
}

// Books is the ledger of orders a test created through the simulator, and
// the checker of what payhook made of them: the expected events exactly
// once on PAYHOOK_EVENTS, delivered to every subscriber whose filter
// matches them (exactly once with ExactlyOnce), nothing else about
// those orders, every refused callback recorded on PAYHOOK_RAW_REJECTED with its
// reason, and nothing acknowledged to a provider missing.
type Books struct {
	c *Cluster
	// exactlyOnce: a redelivered webhook-id unbalances the books (ExactlyOnce).
	exactlyOnce bool
	// only, when set, are the subscribers checked (OnlySubscribers).
	only []string

	mu      sync.Mutex
	entries []*entry
	byID    map[string]*entry
}

type entry struct {
	id           string
	intermediate bool
	watched      bool
}

// NewBooks starts an empty ledger; a test keeps its own, so tests sharing a
// Cluster check only their own orders. Without options the subscribers'
// side is at-least-once: every expected event delivered, redeliveries of a
// webhook-id counted in Report.Redeliveries but allowed (what a test that
// crashes the dispatcher mid-delivery can promise). ExactlyOnce makes them
// a failure.
func (c *Cluster) NewBooks(opts ...BooksOption) *Books {
	b := &Books{c: c, byID: map[string]*entry{}}
	for _, o := range opts {
		o(b)
	}
	return b
}

// BooksOption configures NewBooks.
type BooksOption func(*Books)

// ExactlyOnce requires every subscriber to accept each expected event
// exactly once (the promise: the subscriber gets every expected event
// exactly once): a second accepted delivery of a webhook-id unbalances the books,
// and Wait fails at once, since a redelivery cannot be undone. Use it
// wherever nothing in the test makes a redelivery legitimate (a delivery
// timing out, a dispatcher killed before it acknowledged).
func ExactlyOnce(b *Books) { b.exactlyOnce = true }

// OnlySubscribers restricts the subscribers' side of the books to ids (a
// test that retires a subscriber checks what it got by itself).
func OnlySubscribers(ids ...string) BooksOption {
	return func(b *Books) { b.only = ids }
}

// Create creates an order in the simulator and records it.
func (b *Books) Create(ctx context.Context, spec providersim.OrderSpec) (providersim.Order, error) {
	o, err := b.c.Sim.CreateOrder(ctx, spec)
	if err != nil {
		return providersim.Order{}, err
	}
	b.Add(*o, spec.Intermediate)
	return *o, nil
}

// CreateWatched creates an order and announces it to the reconciler on
// payhook.watch.{provider}, as a merchant's order service would.
func (b *Books) CreateWatched(ctx context.Context, spec providersim.OrderSpec) (providersim.Order, error) {
	o, err := b.Create(ctx, spec)
	if err != nil {
		return o, err
	}
	return o, b.Watch(ctx, o)
}

// Add records an order created elsewhere; intermediate says whether it was
// created with OrderSpec.Intermediate.
func (b *Books) Add(o providersim.Order, intermediate bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.byID[o.ID]; ok {
		return
	}
	e := &entry{id: o.ID, intermediate: intermediate}
	b.entries = append(b.entries, e)
	b.byID[o.ID] = e
}

// Watch announces a recorded order to the reconciler (Cluster.Watch) and,
// once JetStream has stored the announcement, marks it watched: the books
// then expect what the reconciler can recover.
func (b *Books) Watch(ctx context.Context, o providersim.Order) error {
	if err := b.c.Watch(ctx, o); err != nil {
		return err // not announced: the books expect nothing from the reconciler
	}
	b.MarkWatched(o.ID)
	return nil
}

// MarkWatched records that order id was announced some other way (WatchAPI).
func (b *Books) MarkWatched(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.byID[id]; ok {
		e.watched = true
	}
}

// Orders returns fresh snapshots of the recorded orders, in creation order.
func (b *Books) Orders() []providersim.Order {
	b.mu.Lock()
	ids := make([]*entry, len(b.entries))
	copy(ids, b.entries)
	b.mu.Unlock()
	out := make([]providersim.Order, 0, len(ids))
	for _, e := range ids {
		if o, ok := b.c.Sim.Order(e.id); ok {
			out = append(out, o)
		}
	}
	return out
}

func (b *Books) entry(id string) entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.byID[id]; ok {
		return *e
	}
	return entry{id: id}
}

// Expected returns the events the books expect, by event id.
func (b *Books) Expected() map[string]Expectation {
	out := map[string]Expectation{}
	jpgloFailures := b.c.simConfig.CallbackFailures
	for _, o := range b.Orders() {
		e := b.entry(o.ID)
		for _, x := range Expect(o, ExpectOptions{Watched: e.watched, Intermediate: e.intermediate, CallbackFailures: jpgloFailures}) {
			out[x.ID] = x
		}
	}
	return out
}

// ExpectOptions is what Expect needs to know beyond the order itself.
type ExpectOptions struct {
	// Watched: the order was announced to the reconciler.
	Watched bool
	// Intermediate: created with OrderSpec.Intermediate (a pending callback first).
	Intermediate bool
	// CallbackFailures mirrors providersim.Config.CallbackFailures.
	CallbackFailures bool
}

// Expect derives the events payhook must publish for order o, from what the
// simulated provider does (its roles as providersim applies them, and the
// order's faults) and what the reconciler can recover (docs/reconciler.md):
//
//   - A provider that sends no callbacks (one that matches references makes
//     no event): none.
//   - An order still pending at the provider: none (but see the pending
//     callback).
//   - Intermediate, where the provider sends a pending callback first
//     (providersim.SendsIntermediate): that callback (never dropped, only
//     corrupted) makes a pending event; optional when its first attempt
//     was not acknowledged, since a late pending callback after the final
//     status is stale.
//   - The terminal status's event (Order.EventID) when the provider calls
//     back about it (providersim.CallsBack, with CallbackFailures) and the
//     callback is neither dropped nor corrupted; or when the order is
//     watched and the reconciler can recover it: a pay-in of a provider
//     that answers queries (providers.Querier) and does not resend, by poll
//     whatever happened to the callback; the statuses a Retriggerer
//     resends, by re-trigger unless the resent callback is corrupt too.
//     A provider without a query endpoint recovers nothing; a resending
//     provider's other statuses carry no amount and are not synthesized.
//   - ReorderFailSuccess, where the provider's callbacks say their status
//     (providersim.Reorders): whichever terminal status was acknowledged
//     first is the event; the other one is a conflict (same event id as
//     that status's event, subject …conflict).
func Expect(o providersim.Order, x ExpectOptions) []Expectation {
	provs := registry.All()
	if _, calls := providers.Role[providers.Inbound](provs, o.Provider); !calls {
		return nil
	}
	var out []Expectation
	add := func(status events.Status, subject events.Status, via string, optional bool) {
		out = append(out, Expectation{ID: o.EventID(status), OrderID: o.ID, Provider: o.Provider, Account: o.Account,
			Kind: o.Kind, Status: subject, Via: via, Optional: optional})
	}
	f := o.Faults
	if x.Intermediate && providersim.SendsIntermediate(o.Provider) && !f.CorruptSignature {
		optional := false
		for _, d := range o.Deliveries {
			if d.Cause == providersim.CauseProgress && len(d.Attempts) > 0 && !d.Attempts[0].Acked {
				optional = true
			}
		}
		add(events.StatusPending, events.StatusPending, "callback", optional)
	}
	var status events.Status
	switch o.Outcome {
	case providersim.Succeeded:
		status = events.StatusSucceeded
	case providersim.Failed:
		status = events.StatusFailed
	default:
		return out
	}
	_, queries := providers.Role[providers.Querier](provs, o.Provider)
	rt, resends := providers.Role[providers.Retriggerer](provs, o.Provider)
	sent := providersim.CallsBack(o, status, x.CallbackFailures) && !f.DropCallback && !f.CorruptSignature
	via := ""
	switch {
	case sent:
		via = "callback"
	case x.Watched && o.Kind == events.KindPayin && queries && !resends:
		via = "poll"
	case x.Watched && resends && rt.Resends(o.Kind, status) && !f.CorruptSignature:
		via = "retrigger"
	}
	if via == "" {
		return out
	}
	if sent && f.ReorderFailSuccess && providersim.Reorders(o.Provider, o.Kind) {
		opposite := events.StatusFailed
		if status == events.StatusFailed {
			opposite = events.StatusSucceeded
		}
		first, second := opposite, status
		if firstAcked(o, status) {
			first, second = status, opposite
		}
		add(first, first, "callback", false)
		add(second, events.StatusConflict, "callback", false)
		return out
	}
	add(status, status, via, false)
	return out
}

// firstAcked reports whether the callback in status was acknowledged before
// the one in the opposite status (or only it was). Before either is, the
// simulator's order applies: the opposite status is sent first.
func firstAcked(o providersim.Order, status events.Status) bool {
	var mine, other time.Time
	for _, d := range o.Deliveries {
		for _, a := range d.Attempts {
			if !a.Acked {
				continue
			}
			if string(d.Status) == string(status) {
				if mine.IsZero() || a.At.Before(mine) {
					mine = a.At
				}
			} else if d.Status != providersim.Pending {
				if other.IsZero() || a.At.Before(other) {
					other = a.At
				}
			}
		}
	}
	return !mine.IsZero() && (other.IsZero() || mine.Before(other))
}

// Matches reports whether a subscriber with filter f must get the event
// (docs/config.md "subscribers": every empty list matches all; docs/dispatcher.md: a conflict
// goes to an empty statuses list or one naming "conflict").
func (x Expectation) Matches(f config.Filter) bool {
	in := func(l []string, v string) bool { return len(l) == 0 || slices.Contains(l, v) }
	return in(f.Providers, x.Provider) && in(f.Accounts, x.Account) && in(f.Kinds, string(x.Kind)) && in(f.Statuses, string(x.Status))
}

// account is the configured account with id.
func (b *Books) account(id string) providers.Account {
	for _, a := range b.c.Config.Accounts {
		if a.ID == id {
			return a
		}
	}
	return providers.Account{}
}

// Wait polls Check until the books balance or timeout passes; then it fails
// tb with the last report. It returns the balanced report.
func (b *Books) Wait(tb testing.TB, timeout time.Duration) Report {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r := b.Check(ctx)
		cancel()
		if r.OK() {
			return r
		}
		if r.ExactlyOnce && r.redeliveries() > 0 && r.Err == nil {
			tb.Fatalf("e2e: a webhook was delivered more than once (books require exactly once): %s", r)
			return r
		}
		if time.Now().After(deadline) {
			tb.Fatalf("e2e: books do not balance after %s: %s", timeout, r)
			return r
		}
		time.Sleep(250 * time.Millisecond)
	}
}
