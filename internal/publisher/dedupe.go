package publisher

import (
	"context"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
)

// StoreDeduper adapts a pkg/dedupe Store to the Deduper the publisher uses,
// applying dedupe.Decide, the project's one dedupe policy.
type StoreDeduper struct{ Store dedupe.Store }

var _ Deduper = StoreDeduper{}

// Check asks the store and decides.
func (d StoreDeduper) Check(ctx context.Context, e *events.Event) (Decision, error) {
	c, err := d.Store.Check(ctx, e.ID(), dedupe.OrderOf(e))
	if err != nil {
		return Decision{}, err
	}
	switch dedupe.Decide(c, e.Status) {
	case dedupe.Duplicate:
		return Decision{Verdict: Duplicate}, nil
	case dedupe.Stale:
		return Decision{Verdict: Stale, PreviousStatus: c.Order.Status, PreviousEventID: c.Order.EventID}, nil
	case dedupe.Conflict:
		return Decision{Verdict: Conflict, PreviousStatus: c.Order.Status, PreviousEventID: c.Order.EventID}, nil
	default:
		return Decision{Verdict: Accepted}, nil
	}
}

// Record notes the published event and its order's status.
func (d StoreDeduper) Record(ctx context.Context, e *events.Event) error {
	return d.Store.Record(ctx, e.ID(), dedupe.OrderOf(e), e.Status)
}
