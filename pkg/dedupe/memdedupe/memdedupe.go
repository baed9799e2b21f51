// Package memdedupe is an in-memory dedupe.Store and dedupe.References with
// the same semantics as the Redis and NATS key-value stores, for unit tests
// of their callers and for single-process tools. It forgets everything when
// the process ends.
package memdedupe

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
)

// Config tunes a Store. Zero fields take the dedupe defaults.
type Config struct {
	// Window is how long an order's state and its published ids live after
	// the last Record for the order (default dedupe.DefaultWindow).
	Window time.Duration
	// ReferenceTTL is how long a reference claim lives (default dedupe.DefaultReferenceTTL).
	ReferenceTTL time.Duration
	// Now is the clock (default time.Now); tests move it to expire entries.
	Now func() time.Time
}

// Store is an in-memory dedupe store. The zero value is not usable; call New.
type Store struct {
	cfg Config

	mu     sync.Mutex
	orders map[dedupe.Order]*order
	refs   map[refKey]claim
	ops    int
	fail   error
}

type order struct {
	state     dedupe.OrderState
	published map[string]struct{}
	expires   time.Time
}

type refKey struct{ account, reference string }

type claim struct {
	owner   string
	expires time.Time
}

var (
	_ dedupe.Store      = (*Store)(nil)
	_ dedupe.References = (*Store)(nil)
)

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.Window <= 0 {
		cfg.Window = dedupe.DefaultWindow
	}
	if cfg.ReferenceTTL <= 0 {
		cfg.ReferenceTTL = dedupe.DefaultReferenceTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{cfg: cfg, orders: map[dedupe.Order]*order{}, refs: map[refKey]claim{}}
}

// SetUnavailable makes every later call fail with an error wrapping
// dedupe.ErrUnavailable (true) or work again (false), so callers can test
// their fallback. The data is kept, like a store that is briefly unreachable.
func (s *Store) SetUnavailable(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = nil
	if down {
		s.fail = fmt.Errorf("%w: memdedupe: set unavailable", dedupe.ErrUnavailable)
	}
}

// Reset forgets everything, like a Redis restarted without persistence.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders = map[dedupe.Order]*order{}
	s.refs = map[refKey]claim{}
}

// Check implements dedupe.Store.
func (s *Store) Check(ctx context.Context, id string, o dedupe.Order) (dedupe.Check, error) {
	if err := dedupe.ValidateCheck(id, o); err != nil {
		return dedupe.Check{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(ctx); err != nil {
		return dedupe.Check{}, err
	}
	ord := s.order(o)
	if ord == nil {
		return dedupe.Check{}, nil
	}
	_, published := ord.published[id]
	return dedupe.Check{Published: published, Order: ord.state}, nil
}

// Record implements dedupe.Store.
func (s *Store) Record(ctx context.Context, id string, o dedupe.Order, status events.Status) error {
	_, err := s.RecordPrior(ctx, id, o, status)
	return err
}

// RecordPrior implements dedupe.Store, under the store's one lock.
func (s *Store) RecordPrior(ctx context.Context, id string, o dedupe.Order, status events.Status) (dedupe.OrderState, error) {
	if err := dedupe.ValidateRecord(id, o, status); err != nil {
		return dedupe.OrderState{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(ctx); err != nil {
		return dedupe.OrderState{}, err
	}
	s.sweep()
	ord := s.order(o)
	if ord == nil {
		ord = &order{published: map[string]struct{}{}}
		s.orders[o] = ord
	}
	prior := ord.state
	ord.published[id] = struct{}{}
	if !ord.state.Status.Terminal() {
		ord.state = dedupe.OrderState{Status: status, EventID: id}
	}
	ord.expires = s.cfg.Now().Add(s.cfg.Window)
	return prior, nil
}

// ClaimReference implements dedupe.References.
func (s *Store) ClaimReference(ctx context.Context, account, reference, merchantOrderID string) (string, bool, error) {
	if err := dedupe.ValidateReference(account, reference, merchantOrderID); err != nil {
		return "", false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(ctx); err != nil {
		return "", false, err
	}
	k := refKey{account, reference}
	now := s.cfg.Now()
	if c, ok := s.refs[k]; ok && now.Before(c.expires) {
		return c.owner, c.owner == merchantOrderID, nil
	}
	s.refs[k] = claim{owner: merchantOrderID, expires: now.Add(s.cfg.ReferenceTTL)}
	return merchantOrderID, true, nil
}

// ReleaseReference implements dedupe.References.
func (s *Store) ReleaseReference(ctx context.Context, account, reference, merchantOrderID string) error {
	if err := dedupe.ValidateReference(account, reference, merchantOrderID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(ctx); err != nil {
		return err
	}
	k := refKey{account, reference}
	if c, ok := s.refs[k]; ok && c.owner == merchantOrderID {
		delete(s.refs, k)
	}
	return nil
}

// Ping implements dedupe.Store.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usable(ctx)
}

// Close implements dedupe.Store; it does nothing.
func (s *Store) Close() error { return nil }

// Len reports how many orders are tracked (expired ones not yet swept included).
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.orders)
}

func (s *Store) usable(ctx context.Context) error {
	if s.fail != nil {
		return s.fail
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: memdedupe: %w", dedupe.ErrUnavailable, err)
	}
	return nil
}

// order returns o's live entry, dropping an expired one. Callers hold mu.
func (s *Store) order(o dedupe.Order) *order {
	ord := s.orders[o]
	if ord != nil && !s.cfg.Now().Before(ord.expires) {
		delete(s.orders, o)
		return nil
	}
	return ord
}

// sweepEvery amortizes expiry: every 1024 records, drop everything expired,
// so memory stays bounded by what was recorded within the window.
const sweepEvery = 1024

// sweep drops expired entries now and then. Callers hold mu.
func (s *Store) sweep() {
	s.ops++
	if s.ops%sweepEvery != 0 {
		return
	}
	now := s.cfg.Now()
	for k, o := range s.orders {
		if !now.Before(o.expires) {
			delete(s.orders, k)
		}
	}
	for k, c := range s.refs {
		if !now.Before(c.expires) {
			delete(s.refs, k)
		}
	}
}
