package providersim

import (
	"context"
	"fmt"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Settle completes a pending order with outcome (succeeded or failed) and
// sends its callbacks, faults included, as CreateOrder would have.
func (s *Sim) Settle(ctx context.Context, id string, outcome Outcome) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if outcome != Succeeded && outcome != Failed {
		return fmt.Errorf("%w: settle with %q", ErrBadSpec, outcome)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ord, ok := s.orders[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoOrder, id)
	}
	if ord.o.Status != Pending || ord.o.Outcome != Pending {
		return fmt.Errorf("%w: %s is not pending", ErrBadSpec, id)
	}
	ord.o.Outcome = outcome
	if ord.cause == "" {
		ord.cause = CauseCallback
	}
	s.goLife(ord, false)
	return nil
}

// goLife starts the order's life in a goroutine. Called with s.mu held.
func (s *Sim) goLife(ord *order, intermediate bool) {
	s.goLocked(func() { s.life(ord, intermediate) })
}

// life sends the pending callback when asked, waits out the delay,
// completes the order and sends its callbacks.
// The first attempt of each callback is made before the next callback
// starts, so receivers see them in the documented order; retries run on
// their own.
func (s *Sim) life(ord *order, intermediate bool) {
	if intermediate {
		s.send(ord, CauseProgress, Pending, false)
	}
	s.mu.Lock()
	delay := ord.o.Faults.Delay
	s.mu.Unlock()
	if !sleep(s.ctx, delay) {
		return
	}
	s.mu.Lock()
	outcome := ord.o.Outcome
	if outcome == Pending {
		s.mu.Unlock()
		return
	}
	if _, matches := providers.Role[providers.ReferenceSubmitter](provs, ord.o.Provider); matches && outcome == Succeeded {
		// The payer paid, but a provider that takes references credits the
		// order only once its reference is submitted and matched
		// (providers.SimDesk.Match).
		s.mu.Unlock()
		return
	}
	ord.o.Status = outcome
	ord.providerStamp = time.Now()
	cause := ord.cause
	s.mu.Unlock()
	s.sendFinal(ord, cause, false)
}

// sendFinal sends the final callback with the order's faults. force
// ignores DropCallback (a resend the merchant asked for).
func (s *Sim) sendFinal(ord *order, cause string, force bool) {
	s.mu.Lock()
	f := ord.o.Faults
	status := ord.o.Status
	provider := ord.o.Provider
	callsBack := s.callsBack(ord, status)
	if callsBack && f.DropCallback && !force {
		s.stats[provider].Dropped++
		callsBack = false
	}
	s.mu.Unlock()
	if !callsBack {
		return
	}
	// Reordering forces the opposite status out even where the provider
	// usually sends no failures, as long as its callbacks can say them.
	if f.ReorderFailSuccess && cause != CauseRetrigger && Reorders(provider, ord.o.Kind) {
		s.send(ord, CauseReorder, status.opposite(), false)
	}
	s.send(ord, cause, status, false)
	if cause != CauseRetrigger {
		for range f.Duplicate {
			s.send(ord, CauseDuplicate, status, true)
		}
	}
}

// callsBack reports whether the provider sends a callback for an order in
// status. Called with s.mu held.
func (s *Sim) callsBack(ord *order, status Outcome) bool {
	return CallsBack(ord.o, events.Status(status), s.cfg.CallbackFailures)
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
