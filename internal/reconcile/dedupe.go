package reconcile

import (
	"context"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
)

// orderState asks the store for the order's last recorded state.
func orderState(ctx context.Context, s dedupe.Store, w *Watch) (dedupe.OrderState, error) {
	p := w.probe()
	c, err := s.Check(ctx, p.ID(), dedupe.OrderOf(p))
	if err != nil {
		return dedupe.OrderState{}, err
	}
	if c.Published && !c.Order.Status.Terminal() {
		// The success event is recorded but the state is not (a store that
		// lost half its data): the success event exists, which is what counts.
		return dedupe.OrderState{Status: events.StatusSucceeded, EventID: p.ID()}, nil
	}
	return c.Order, nil
}
