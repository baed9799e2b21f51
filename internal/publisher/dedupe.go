package publisher

import (
	"context"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
)

// StoreDeduper adapts a pkg/dedupe Store to the Deduper the publisher uses,
// applying dedupe.Decide, the project's one dedupe policy, both to what
// Check finds and to what RecordPrior found.
type StoreDeduper struct{ Store dedupe.Store }

var _ Deduper = StoreDeduper{}

// Check asks the store and decides.
func (d StoreDeduper) Check(ctx context.Context, e *events.Event) (Decision, error) {
	c, err := d.Store.Check(ctx, e.ID(), dedupe.OrderOf(e))
	if err != nil {
		return Decision{}, err
	}
	return decision(c, e.Status), nil
}

// Record notes the published event and its order's status, and reports
// what the order's state was just before: Conflict or Stale when another
// caller had recorded a terminal status that e contradicts or follows.
func (d StoreDeduper) Record(ctx context.Context, e *events.Event) (Decision, error) {
	prior, err := d.Store.RecordPrior(ctx, e.ID(), dedupe.OrderOf(e), e.Status)
	if err != nil {
		return Decision{}, err
	}
	return decision(dedupe.Check{Order: prior}, e.Status), nil
}

func decision(c dedupe.Check, status events.Status) Decision {
	switch dedupe.Decide(c, status) {
	case dedupe.Duplicate:
		return Decision{Verdict: Duplicate}
	case dedupe.Stale:
		return Decision{Verdict: Stale, PreviousStatus: c.Order.Status, PreviousEventID: c.Order.EventID}
	case dedupe.Conflict:
		return Decision{Verdict: Conflict, PreviousStatus: c.Order.Status, PreviousEventID: c.Order.EventID}
	default:
		return Decision{Verdict: Accepted}
	}
}
