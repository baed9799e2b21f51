package reconcile

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Gauges, and why they are computed this way:
//   - watches_open is the message count of PAYHOOK_RECONCILE: one message per
//     open watch, so every replica reports the same, exact number.
//   - oldest_watch_age_seconds cannot be read from the stream cheaply (a
//     work-queue stream admits no second consumer to scan it, and messages
//     are reordered by every state change). Each replica remembers the watches
//     it handled (every watch is delivered to some replica at least once per
//     step) until the watch closes there or its next due time has passed by
//     more than the ack wait without this replica seeing it again (another
//     replica took it). Take max() across replicas. After a restart the view
//     fills as watches come due, which takes up to the longest step.
//     A watch closed elsewhere (by the closer, on whichever replica took its
//     event) would stay in this memory until then: so each refresh checks
//     that the oldest remembered watches still have their message, one
//     lookup per refresh when nothing closed, and drops those that do not.

func (r *Reconciler) track(w *Watch, until time.Time) {
	r.mu.Lock()
	r.tracked[w.ID] = tracked{subject: w.Subject(), openedAt: w.OpenedAt, forgetAt: until.Add(r.opt.AckWait)}
	r.mu.Unlock()
}

func (r *Reconciler) untrack(id string) {
	r.mu.Lock()
	delete(r.tracked, id)
	r.mu.Unlock()
}

// maxOldestChecks bounds the lookups of one refresh: after that many
// remembered watches found closed, the next is reported unchecked (and the
// next refresh goes on).
const maxOldestChecks = 16

// oldestAge is the age of the oldest watch this replica knows to be open.
// With a queue (Run started) the oldest remembered watches are checked
// against it, oldest first, until one still has its message.
func (r *Reconciler) oldestAge(ctx context.Context, now time.Time) time.Duration {
	for range maxOldestChecks {
		id, t, ok := r.oldest(now)
		if !ok {
			return 0
		}
		if r.queue == nil {
			return now.Sub(t.openedAt)
		}
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := r.queue.GetLastMsgForSubject(lctx, t.subject)
		cancel()
		if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return now.Sub(t.openedAt) // still open, or cannot tell: report it
		}
		r.mu.Lock()
		if cur, ok := r.tracked[id]; ok && cur == t {
			delete(r.tracked, id)
		}
		r.mu.Unlock()
	}
	_, t, ok := r.oldest(now)
	if !ok {
		return 0
	}
	return now.Sub(t.openedAt)
}

// oldest is the oldest remembered watch, forgetting those past forgetAt.
func (r *Reconciler) oldest(now time.Time) (string, tracked, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var (
		oid string
		ot  tracked
		ok  bool
	)
	for id, t := range r.tracked {
		if now.After(t.forgetAt) {
			delete(r.tracked, id)
			continue
		}
		if !ok || t.openedAt.Before(ot.openedAt) {
			oid, ot, ok = id, t, true
		}
	}
	return oid, ot, ok
}

// poke asks for an early gauge refresh (a watch opened or ended).
func (r *Reconciler) poke() {
	select {
	case r.pokes <- struct{}{}:
	default:
	}
}

// refreshGauges refreshes every GaugeInterval, and soon after a poke: at
// most one stream info request per 200 ms however busy the reconciler is.
func (r *Reconciler) refreshGauges(ctx context.Context, stream jetstream.Stream) {
	t := time.NewTicker(r.opt.GaugeInterval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if info, err := stream.Info(ictx); err == nil {
			r.m.open.Set(float64(info.State.Msgs))
		}
		cancel()
		r.m.oldest.Set(r.oldestAge(ctx, r.now()).Seconds())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.pokes:
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}
