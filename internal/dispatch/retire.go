package dispatch

// Retiring a subscriber: the one explicit way its consumers and recorded
// position go (DELETE /v1/subscribers/{id}); a dispatcher never deletes a
// consumer merely because its own config lacks the subscriber.

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/payhook/payhook/internal/natsbus"
)

var retireIDRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// RetireResult answers DELETE /v1/subscribers/{id}.
type RetireResult struct {
	Subscriber string `json:"subscriber"`
	// Deleted lists the consumers removed.
	Deleted []string `json:"deleted"`
	// ReplaysDropped counts replayed dead letters that were still waiting
	// in PAYHOOK_REPLAY.
	ReplaysDropped uint64 `json:"replays_dropped"`
	// PositionForgotten is true when a recorded position was removed.
	PositionForgotten bool `json:"position_forgotten"`
	// PauseForgotten is true when a pause (410 Gone) was lifted.
	PauseForgotten bool `json:"pause_forgotten"`
}

// Retire removes what the dispatcher keeps for a subscriber that is no
// longer served: its events and replay consumers, its replays waiting in
// PAYHOOK_REPLAY, its recorded position and its pause. Dead letters stay in PAYHOOK_DLQ
// until they age out. It refuses (ErrConfigured) a subscriber this
// dispatcher's config lists, and ErrUnknownSubscriber when nothing was left
// of it. A dispatcher whose config still lists it recreates it as a new
// subscriber, from its `start`.
func (d *Dispatcher) Retire(ctx context.Context, id string) (RetireResult, error) {
	res := RetireResult{Subscriber: id, Deleted: []string{}}
	if !retireIDRE.MatchString(id) {
		return res, fmt.Errorf("%w: %q is not a subscriber id", ErrUnknownSubscriber, id)
	}
	if d.roster().byID[id] != nil {
		return res, fmt.Errorf("%w: %q", ErrConfigured, id)
	}
	for stream, name := range map[string]string{natsbus.StreamEvents: ConsumerName(id), StreamReplay: ReplayConsumerName(id)} {
		err := d.js.DeleteConsumer(ctx, stream, name)
		switch {
		case err == nil:
			res.Deleted = append(res.Deleted, name)
		case !errors.Is(err, jetstream.ErrConsumerNotFound):
			return res, fmt.Errorf("%w: delete consumer %s: %v", natsbus.ErrUnavailable, name, err)
		}
	}
	st, err := d.js.Stream(ctx, StreamReplay)
	if err != nil {
		return res, fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, StreamReplay, err)
	}
	before := st.CachedInfo().State.Msgs
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(ReplaySubject(id))); err != nil {
		return res, fmt.Errorf("%w: purge %s: %v", natsbus.ErrUnavailable, ReplaySubject(id), err)
	}
	if info, err := st.Info(ctx); err == nil && before > info.State.Msgs {
		res.ReplaysDropped = before - info.State.Msgs
	}
	if _, err := d.pos.Get(ctx, id); err == nil {
		if err := d.pos.Purge(ctx, id); err != nil {
			return res, fmt.Errorf("%w: forget position of %s: %v", natsbus.ErrUnavailable, id, err)
		}
		res.PositionForgotten = true
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return res, fmt.Errorf("%w: read position of %s: %v", natsbus.ErrUnavailable, id, err)
	}
	if _, err := d.kv.Get(ctx, id); err == nil {
		if err := d.kv.Purge(ctx, id); err != nil {
			return res, fmt.Errorf("%w: forget pause of %s: %v", natsbus.ErrUnavailable, id, err)
		}
		res.PauseForgotten = true
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return res, fmt.Errorf("%w: read pause of %s: %v", natsbus.ErrUnavailable, id, err)
	}
	if len(res.Deleted) == 0 && !res.PositionForgotten && !res.PauseForgotten && res.ReplaysDropped == 0 {
		return res, fmt.Errorf("%w: nothing is kept for %q", ErrUnknownSubscriber, id)
	}
	d.log.Warn("subscriber retired", "subscriber", id, "deleted", res.Deleted, "replays_dropped", res.ReplaysDropped,
		"position_forgotten", res.PositionForgotten, "pause_forgotten", res.PauseForgotten)
	return res, nil
}
