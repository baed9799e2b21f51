package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/natsbus"
)

// Consumer lifecycle (docs/dispatcher.md "Subscriber consumers"):
//
//   - A dispatcher creates or updates the consumers of the subscribers in
//     its config and never deletes any: another dispatcher sharing the NATS
//     (another release mid-rollout, another environment's config) may serve
//     subscribers this one does not know. Retiring a subscriber is an
//     explicit act (Retire, DELETE /v1/subscribers/{id}).
//   - Where a subscriber's delivery stands is recorded in PositionBucket:
//     the ack floor of its PAYHOOK_EVENTS consumer (every event up to that
//     stream sequence is handled), written as it advances. A consumer that
//     disappears, while a dispatcher runs or while none does, is recreated
//     from there (DeliverByStartSequence floor+1), never from the start.
//   - A subscriber that has no record yet starts where its `start` says,
//     and that start is recorded at once, so a restart does not move it.
//     An existing consumer with no record (made before positions were
//     recorded) gets its ack floor recorded when the dispatcher starts, so
//     losing it later never turns it into a new subscriber.
//   - The replay consumer needs no record: PAYHOOK_REPLAY is a work queue,
//     so what it acknowledged is gone and DeliverAll resumes exactly.

// PositionBucket is the NATS key-value bucket holding each subscriber's
// recorded position (key = subscriber id, value a position as JSON),
// shared by every replica and outliving every consumer.
const PositionBucket = "payhook_dispatch_positions"

// ErrConfigured is returned by Retire for a subscriber this dispatcher's
// config still lists: it would recreate the consumer at once.
var ErrConfigured = errors.New("subscriber is still configured")

// position is a subscriber's recorded place in PAYHOOK_EVENTS.
type position struct {
	// Floor is a stream sequence: every event up to it was acknowledged
	// (delivered, dead-lettered or filtered out) or was stored before the
	// subscriber's start. Delivery resumes at Floor+1.
	Floor uint64 `json:"ack_floor"`
	// StartTime is a `start: <time>` not yet resolved to a floor: until
	// the consumer acknowledges its first event the floor is 0 and a
	// recreated consumer starts by time.
	StartTime *time.Time `json:"start_time,omitempty"`
	// Since is when the subscriber was first recorded.
	Since time.Time `json:"since"`
}

// deliverFrom sets cc's deliver policy to resume at p.
func (p position) deliverFrom(cc *jetstream.ConsumerConfig) {
	switch {
	case p.Floor > 0:
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, p.Floor+1
	case p.StartTime != nil:
		cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, p.StartTime
	default:
		cc.DeliverPolicy = jetstream.DeliverAllPolicy
	}
}

// readPosition returns the recorded position of the subscriber and its KV
// revision; found is false when none is recorded.
func (w *worker) readPosition(ctx context.Context) (p position, rev uint64, found bool, err error) {
	e, err := w.d.pos.Get(ctx, w.id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return position{}, 0, false, nil
	}
	if err != nil {
		return position{}, 0, false, fmt.Errorf("%w: read position of %s: %v", natsbus.ErrUnavailable, w.id, err)
	}
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		// Never guess a position: a wrong one skips or repeats events.
		return position{}, 0, false, fmt.Errorf("dispatch: position of %s in %s is not readable: %v", w.id, PositionBucket, err)
	}
	return p, e.Revision(), true, nil
}

// startPosition returns the recorded position, recording first the one the
// subscriber's `start` asks for if there is none: "new" is the last
// sequence of PAYHOOK_EVENTS now, "all" floor 0, a time floor 0 with that
// time. Of two replicas recording at once, the first wins and both use it.
func (w *worker) startPosition(ctx context.Context) (position, error) {
	p, _, found, err := w.readPosition(ctx)
	if err != nil || found {
		return p, err
	}
	all, at, err := w.settings().sub.StartFrom()
	if err != nil {
		return position{}, fmt.Errorf("dispatch: subscriber %s: start: %w", w.id, err)
	}
	p = position{Since: time.Now().UTC()}
	switch {
	case all:
	case !at.IsZero():
		p.StartTime = &at
	default:
		st, err := w.d.js.Stream(ctx, natsbus.StreamEvents)
		if err != nil {
			return position{}, fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, natsbus.StreamEvents, err)
		}
		p.Floor = st.CachedInfo().State.LastSeq
	}
	b, _ := json.Marshal(p)
	if _, err := w.d.pos.Create(ctx, w.id, b); errors.Is(err, jetstream.ErrKeyExists) {
		p, _, _, err = w.readPosition(ctx)
		return p, err
	} else if err != nil {
		return position{}, fmt.Errorf("%w: record position of %s: %v", natsbus.ErrUnavailable, w.id, err)
	}
	w.log.Info("subscriber's start recorded", "ack_floor", p.Floor, "start", w.settings().sub.Start)
	return p, nil
}

// recordExisting records the position of an existing events consumer that
// has none recorded (it was created before positions were recorded): its
// ack floor now. Until then only the pinned replica records a position, and
// a paused or breaker-open subscriber is never pinned, so without this its
// consumer, once deleted, would be recreated as a new subscriber's (`start:
// new` skipping its whole backlog). Create-only: a recorded position is
// never moved, backward or forward, here.
func (w *worker) recordExisting(ctx context.Context, info *jetstream.ConsumerInfo) error {
	p := position{Floor: info.AckFloor.Stream, Since: time.Now().UTC()}
	if p.Floor == 0 && info.Config.OptStartTime != nil {
		p.StartTime = info.Config.OptStartTime
	}
	b, _ := json.Marshal(p)
	_, err := w.d.pos.Create(ctx, w.id, b)
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return nil // recorded already, the usual case
	case err != nil:
		return fmt.Errorf("%w: record position of %s: %v", natsbus.ErrUnavailable, w.id, err)
	}
	w.floor.Store(max(w.floor.Load(), p.Floor))
	w.log.Info("existing consumer's position recorded", "ack_floor", p.Floor)
	return nil
}

// recordFloor records floor as the subscriber's position if it is beyond
// the recorded one. The record only moves forward: a write raced by another
// replica's is skipped (its floor is as recent), and a consumer recreated
// by someone else from an earlier place does not pull it back.
func (w *worker) recordFloor(ctx context.Context, floor uint64) error {
	if floor <= w.floor.Load() {
		return nil
	}
	p, rev, found, err := w.readPosition(ctx)
	if err != nil {
		return err
	}
	if found && p.Floor >= floor {
		w.floor.Store(p.Floor)
		return nil
	}
	if !found {
		p.Since = time.Now().UTC()
	}
	p.Floor, p.StartTime = floor, nil
	b, _ := json.Marshal(p)
	if found {
		_, err = w.d.pos.Update(ctx, w.id, b, rev)
	} else {
		_, err = w.d.pos.Create(ctx, w.id, b)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil // another replica wrote first; the next round compares again
	}
	if err != nil {
		return fmt.Errorf("%w: record position of %s: %v", natsbus.ErrUnavailable, w.id, err)
	}
	w.floor.Store(floor)
	return nil
}

// consumerConfig is the configuration of the subscriber's events consumer
// (replay false) or replay consumer, without its deliver policy.
func (w *worker) consumerConfig(replay bool) (stream string, cc jetstream.ConsumerConfig) {
	// Messages in backoff and messages held for ordering stay pending in
	// JetStream, so MaxAckPending bounds how many events of this subscriber
	// can wait for a retry or be held, across all replicas, before the
	// consumer stops handing out new ones: 64 × concurrency (1024 by
	// default). Redeliveries are still handed out then, so the events the
	// held ones wait for always come back.
	set := w.settings()
	cc = jetstream.ConsumerConfig{
		Durable:       ConsumerName(w.id),
		Description:   "payhook dispatcher for subscriber " + w.id,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       set.ackWait,
		MaxDeliver:    -1, // attempts are counted by the dispatcher (max_attempts, then DLQ)
		MaxAckPending: 64 * set.sub.Concurrency,
		// One replica at a time per consumer (PinGroup).
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{PinGroup},
		PinnedTTL:      set.ackWait,
	}
	if replay {
		cc.Durable = ReplayConsumerName(w.id)
		cc.FilterSubject = ReplaySubject(w.id)
		return StreamReplay, cc
	}
	if fs := FilterSubjects(set.sub.Filter); len(fs) == 1 {
		cc.FilterSubject = fs[0]
	} else {
		cc.FilterSubjects = fs
	}
	return natsbus.StreamEvents, cc
}

// ensureConsumer creates the subscriber's consumer or updates it to the
// config. An existing consumer keeps where it delivers from (JetStream
// cannot change it, and `start` only concerns a subscriber's first
// appearance); a missing one is created from the recorded position (events
// consumer) or from the start of the work queue (replay consumer). It
// reports whether it created the consumer.
func (w *worker) ensureConsumer(ctx context.Context, replay bool) (created bool, err error) {
	stream, cc := w.consumerConfig(replay)
	// Two tries: a replica that found the consumer missing may race another
	// that recreates it; the second try finds it and keeps its start.
	for try := 0; ; try++ {
		existing, err := w.d.js.Consumer(ctx, stream, cc.Durable)
		switch {
		case err == nil:
			info := existing.CachedInfo()
			ci := info.Config
			cc.DeliverPolicy, cc.OptStartSeq, cc.OptStartTime = ci.DeliverPolicy, ci.OptStartSeq, ci.OptStartTime
			created = false
			if !replay {
				if err := w.recordExisting(ctx, info); err != nil {
					return false, err
				}
			}
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			created = true
			if replay {
				cc.DeliverPolicy = jetstream.DeliverAllPolicy
				break
			}
			p, err := w.startPosition(ctx)
			if err != nil {
				return false, err
			}
			cc.DeliverPolicy, cc.OptStartSeq, cc.OptStartTime = 0, 0, nil
			p.deliverFrom(&cc)
		default:
			return false, fmt.Errorf("%w: consumer %s: %v", natsbus.ErrUnavailable, cc.Durable, err)
		}
		c, err := w.d.js.CreateOrUpdateConsumer(ctx, stream, cc)
		if err != nil {
			if try == 0 && created {
				continue
			}
			return false, fmt.Errorf("%w: consumer %s: %v", natsbus.ErrUnavailable, cc.Durable, err)
		}
		w.cmu.Lock()
		w.cons[slot(replay)] = c
		w.cmu.Unlock()
		return created, nil
	}
}

func slot(replay bool) int {
	if replay {
		return 1
	}
	return 0
}

// consumer is the handle of the subscriber's events or replay consumer.
func (w *worker) consumer(replay bool) jetstream.Consumer {
	w.cmu.Lock()
	defer w.cmu.Unlock()
	return w.cons[slot(replay)]
}

// checkConsumer runs after a fetch failed or the consumer's info could not
// be read. When JetStream says the consumer does not exist, the subscriber
// is reported missing (/readyz, payhook_dispatch_consumer_missing, an error
// log) and the consumer is recreated from the recorded position; it stays
// reported until that succeeds (tried again at the next failure, or by a
// reload). It reports whether it recreated the consumer.
func (w *worker) checkConsumer(ctx context.Context, replay bool) bool {
	w.fix.Lock()
	defer w.fix.Unlock()
	c := w.consumer(replay)
	if _, err := c.Info(ctx); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false // exists, or NATS itself is unreachable (the nats check reports that)
	}
	if !w.missing[slot(replay)].Swap(true) {
		w.log.Error("the subscriber's consumer is gone (deleted outside this dispatcher); recreating it from the recorded position", "consumer", consumerName(w.id, replay))
		w.d.m.missing.WithLabelValues(w.id).Set(1)
	}
	if h := w.d.o.onMissing; h != nil {
		h(w.id, replay)
	}
	if _, err := w.fixConsumer(ctx, replay); err != nil {
		w.log.Error("recreating the subscriber's consumer", "consumer", consumerName(w.id, replay), "err", err)
		return false
	}
	return true
}

// fixConsumer brings the subscriber's consumer to its config, creating it
// when it is gone (ensureConsumer); callers hold fix. Once it exists, a
// missing report is cleared. When it was created here, or was reported
// missing (another replica may have recreated it meanwhile), it is a new
// consumer: it has no pin yet, so this replica's old pin id is dropped
// (whichever replica fetches first takes the pin), and the recreation is
// counted and logged. It reports whether it created the consumer.
func (w *worker) fixConsumer(ctx context.Context, replay bool) (bool, error) {
	created, err := w.ensureConsumer(ctx, replay)
	if err != nil {
		return false, err
	}
	wasMissing := w.missing[slot(replay)].Swap(false)
	if wasMissing && !w.missing[slot(!replay)].Load() {
		w.d.m.missing.WithLabelValues(w.id).Set(0)
	}
	if !created && !wasMissing {
		return false, nil
	}
	p := w.pin(replay)
	p.standby.Store(false)
	p.mu.Lock()
	p.id = ""
	p.mu.Unlock()
	w.d.m.recreated.WithLabelValues(w.id).Inc()
	w.log.Warn("the subscriber's consumer was recreated; events delivered but not yet acknowledged when it went may be delivered again (same webhook-id)", "consumer", consumerName(w.id, replay))
	return created, nil
}

// consumerName is the subscriber's events or replay consumer.
func consumerName(id string, replay bool) string {
	if replay {
		return ReplayConsumerName(id)
	}
	return ConsumerName(id)
}

// CheckConsumers is the dispatcher's /readyz check of its consumers: an
// error names every subscriber whose consumer is missing.
func (d *Dispatcher) CheckConsumers(context.Context) error {
	var gone []string
	for _, w := range d.roster().workers {
		if w.missing[0].Load() {
			gone = append(gone, ConsumerName(w.id))
		}
		if w.missing[1].Load() {
			gone = append(gone, ReplayConsumerName(w.id))
		}
	}
	if len(gone) > 0 {
		return fmt.Errorf("consumers missing, being recreated from their recorded positions: %v", gone)
	}
	return nil
}

// positionLoop records, every positionInterval, each subscriber's ack floor
// as read from its consumer, and notices an events consumer that is gone
// even while nothing is fetched from it (paused, breaker open). Only the
// replica holding a subscriber's pin reads it: the floor moves only with
// that replica's acks, and one read per subscriber per interval (not one
// per replica) keeps the JetStream API load at N subscribers per second.
func (d *Dispatcher) positionLoop(ctx context.Context) {
	t := time.NewTicker(d.o.positionInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.recordPositions(ctx)
	}
}

// recordPositions records every subscriber's ack floor once.
func (d *Dispatcher) recordPositions(ctx context.Context) {
	for _, w := range d.roster().workers {
		p := &w.pins[0]
		p.mu.Lock()
		pinned := p.id != "" && !p.standby.Load()
		p.mu.Unlock()
		if !pinned {
			continue
		}
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := w.consumer(false).Info(ictx)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			w.checkConsumer(ictx, false)
		case err == nil:
			w.pruneFinished(info.AckFloor.Stream)
			if err := w.recordFloor(ictx, info.AckFloor.Stream); err != nil {
				w.log.Warn("recording the subscriber's position", "err", err)
			}
		}
		cancel()
	}
}
