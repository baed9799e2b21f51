package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/pkg/events"
)

// Closing on publication (docs/reconciler.md "Closing"): a watch closes as
// soon as a terminal event for its order is on PAYHOOK_EVENTS, whoever
// published it (ingress for a callback or a re-triggered callback, a poll of
// any replica), not only at its next due time.
//
//   - One durable consumer, ConsumerCloser, shared by every replica, on the
//     terminal subjects of PAYHOOK_EVENTS: each event is looked at by one
//     replica, so N replicas cost what one does. It is durable so that events
//     published while no reconciler ran still close their watches when one
//     starts; it starts at the events published after it was first created.
//   - For each event the watch id is computed from the event (provider,
//     account, kind, merchant order id; WatchID) and the watch's message, if
//     any, is deleted by its sequence. Deleting by sequence is what makes a
//     close exact: of the closer and a handler holding the same message, only
//     one deletion succeeds, and only the one that succeeds counts the close.
//     A handler that meanwhile saves a new state for the watch finds its
//     compare-and-set failing (the subject's last sequence is no longer the
//     one it holds: errSuperseded) and drops its copy; a handler that decided
//     to close finds the message gone and counts nothing. If the watch's
//     state was replaced between the lookup and the deletion, the lookup is
//     repeated.
//   - Nothing here is needed for correctness: a watch whose event the closer
//     missed (an event published before the watch was announced, a NATS
//     failure) still closes at its next due time, through the dedupe store.
const (
	// ConsumerCloser is the durable consumer of terminal events on PAYHOOK_EVENTS.
	ConsumerCloser = "payhook-reconciler-closer"
)

// CloserConfig is ConsumerCloser's configuration. Why each number:
//   - FilterSubjects: succeeded and failed only. Pending events close
//     nothing; a conflict is published after the order's first terminal
//     event, which closed the watch already.
//   - DeliverNew: a reconciler deployed on an old stream has no watches
//     for the events already there.
//   - AckWait 30s > the closing work (two JetStream requests of ≤ 5 s each).
//   - MaxDeliver 5 with a 1 s delay after a failure: past that the event is
//     left to the due-time check rather than retried forever.
//   - MaxAckPending 1000: bounds what one replica holds when it dies.
func CloserConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerCloser,
		Description:   "payhook reconciler: terminal events that close their order's watch",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    5,
		MaxAckPending: 1000,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		FilterSubjects: []string{
			events.EventFilter(events.Any, events.Any, string(events.StatusSucceeded)),
			events.EventFilter(events.Any, events.Any, string(events.StatusFailed)),
		},
	}
}

// handleEvent closes the watch of one terminal event's order, if one is open.
// With event keys, only a signed event closes anything: a made-up success
// published by another client would otherwise stop the chase of a lost
// callback. Such a message is terminated for this consumer and logged (the
// dispatcher counts and alerts on it).
func (r *Reconciler) handleEvent(ctx context.Context, msg jetstream.Msg) {
	var ce events.CloudEvent
	var err error
	if r.eventKeys != nil {
		ce, err = events.VerifyMessage(r.eventKeys, msg.Subject(), msg.Headers(), msg.Data())
		if errors.Is(err, events.ErrUnsigned) || errors.Is(err, events.ErrSignature) {
			var seq uint64
			if meta, merr := msg.Metadata(); merr == nil {
				seq = meta.Sequence.Stream
			}
			r.log.Warn("event not signed by a configured event key: it closes no watch", "subject", msg.Subject(), "stream_seq", seq, "err", err)
			_ = msg.Term()
			return
		}
	} else {
		ce, err = events.ParseCloudEvent(msg.Data())
	}
	d := ce.Data
	if err != nil || !d.Status.Terminal() || !r.provs.Known(d.Provider) || !d.Kind.Valid() || d.Account == "" || d.MerchantOrderID == "" {
		_ = msg.Ack() // no order a watch could be on
		return
	}
	id := WatchID(d.Provider, d.Account, d.Kind, d.MerchantOrderID)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	w, err := r.closeSubject(cctx, watchSubject(d.Provider, d.Account, id))
	if w == nil && err == nil {
		// A watch stored before the account was part of the subject.
		w, err = r.closeSubject(cctx, legacyWatchSubject(d.Provider, id))
	}
	cancel()
	if err != nil {
		r.log.Warn("watch not closed on its event; retrying (its due time closes it otherwise)", "provider", d.Provider, "order_id", d.MerchantOrderID, "event_id", ce.ID, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if w != nil {
		by := string(d.Origin)
		if d.Origin != events.OriginRetrigger && d.Origin != events.OriginPoll {
			// A callback; a retrigger if we had asked for it again and
			// ingress had no mark to say so.
			by = r.closedBy(w)
		}
		r.closed(w, by, "event "+ce.ID)
	}
	_ = msg.Ack()
}

// closeSubject deletes the watch message on subject, if there is one, and
// returns the watch it held when this call deleted it (nil when there was
// none, or someone else deleted it first).
func (r *Reconciler) closeSubject(ctx context.Context, subject string) (*Watch, error) {
	// Three rounds: a handler replaces a watch's message at most once per
	// delivery, far slower than two round trips here.
	for range 3 {
		raw, err := r.queue.GetLastMsgForSubject(ctx, subject)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("%w: look up watch: %v", natsbus.ErrUnavailable, err)
		}
		removed, err := r.remove(ctx, raw.Sequence)
		if err != nil {
			return nil, err
		}
		if removed {
			w, err := decodeWatch(raw.Data)
			if err != nil {
				r.log.Error("undecodable watch message deleted", "subject", truncate(subject, 80), "err", err)
				return nil, nil
			}
			return w, nil
		}
	}
	return nil, nil
}

// remove deletes the watch message with stream sequence seq. It reports
// false, without error, when the message is no longer there: someone else
// closed or replaced the watch first.
func (r *Reconciler) remove(ctx context.Context, seq uint64) (bool, error) {
	err := r.queue.DeleteMsg(ctx, seq)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful), errors.Is(err, jetstream.ErrMsgNotFound):
		// The server answered: there is no such message (in a work-queue
		// stream without deny_delete, the only reason a deletion fails).
		return false, nil
	default:
		return false, fmt.Errorf("%w: delete watch: %v", natsbus.ErrUnavailable, err)
	}
}

// closed counts and logs a watch this replica closed because its order's
// terminal event exists, produced by "by" (callback, retrigger or poll).
func (r *Reconciler) closed(w *Watch, by, why string) {
	r.untrack(w.ID)
	r.poke()
	r.m.closed.WithLabelValues(w.Provider, by).Inc()
	if by != "callback" {
		r.m.recovered.WithLabelValues(w.Provider, by).Inc()
	}
	r.record(w, StateClosed, by)
	r.log.Info("watch closed", append(w.attrs(), "by", by, "on", why)...)
}
