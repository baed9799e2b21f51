package redisdedupe

import (
	"context"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/dedupe/internal/codec"
	"github.com/payhook/payhook/pkg/events"
)

// Check implements dedupe.Store: one GET of the order's entry.
func (s *Store) Check(ctx context.Context, id string, o dedupe.Order) (dedupe.Check, error) {
	if err := dedupe.ValidateCheck(id, o); err != nil {
		return dedupe.Check{}, err
	}
	res := s.run(ctx, s.orderKey(o), "", nil)
	if res.err != nil {
		return dedupe.Check{}, res.err
	}
	e, err := codec.ParseEntry(res.value)
	if err != nil {
		return dedupe.Check{}, unavailable(err)
	}
	c := dedupe.Check{Published: e.Published(codec.ID(id))}
	if c.Order, err = e.Order(); err != nil {
		return dedupe.Check{}, unavailable(err)
	}
	return c, nil
}

// Record implements dedupe.Store.
func (s *Store) Record(ctx context.Context, id string, o dedupe.Order, status events.Status) error {
	_, err := s.RecordPrior(ctx, id, o, status)
	return err
}

// RecordPrior implements dedupe.Store: one script call on the order's
// entry, which returns the state it replaced or kept.
func (s *Store) RecordPrior(ctx context.Context, id string, o dedupe.Order, status events.Status) (dedupe.OrderState, error) {
	if err := dedupe.ValidateRecord(id, o, status); err != nil {
		return dedupe.OrderState{}, err
	}
	raw := codec.ID(id)
	res := s.run(ctx, s.orderKey(o), string(raw[:]), codec.EncodeState(status, id))
	if res.err != nil || len(res.value) == 0 {
		return dedupe.OrderState{}, res.err
	}
	prior, err := codec.DecodeState(res.value)
	if err != nil {
		return dedupe.OrderState{}, unavailable(err)
	}
	return prior, nil
}
