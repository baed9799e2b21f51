package reconcile

import (
	"context"
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

func (r *Reconciler) track(w *Watch, until time.Time) {
	r.mu.Lock()
	r.tracked[w.ID] = tracked{openedAt: w.OpenedAt, forgetAt: until.Add(r.opt.AckWait)}
	r.mu.Unlock()
}

func (r *Reconciler) untrack(id string) {
	r.mu.Lock()
	delete(r.tracked, id)
	r.mu.Unlock()
}

// oldestAge is the age of the oldest watch this replica knows to be open.
func (r *Reconciler) oldestAge(now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var oldest time.Duration
	for id, t := range r.tracked {
		if now.After(t.forgetAt) {
			delete(r.tracked, id)
			continue
		}
		oldest = max(oldest, now.Sub(t.openedAt))
	}
	return oldest
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
		r.m.oldest.Set(r.oldestAge(r.now()).Seconds())
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
