package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// PauseBucket is the NATS key-value bucket holding paused subscribers (key =
// subscriber id), shared by every replica.
const PauseBucket = "payhook_dispatch_paused"

// Resume lifts the pause of subscriber id on every replica.
func (d *Dispatcher) Resume(ctx context.Context, id string) error {
	w := d.roster().byID[id]
	if w == nil {
		return fmt.Errorf("%w: %q", ErrUnknownSubscriber, id)
	}
	if err := ClearPause(ctx, d.kv, id); err != nil {
		return err
	}
	w.setPaused(false, PauseRecord{})
	return nil
}

// Pause stops deliveries to subscriber id on every replica until Resume
// (events are kept); reason is shown by payhookctl and logged.
func (d *Dispatcher) Pause(ctx context.Context, id, reason string) error {
	w := d.roster().byID[id]
	if w == nil {
		return fmt.Errorf("%w: %q", ErrUnknownSubscriber, id)
	}
	p := PauseRecord{At: time.Now().UTC(), Reason: reason, By: "operator"}
	if err := SetPause(ctx, d.kv, id, p); err != nil {
		return err
	}
	w.setPaused(true, p)
	return nil
}

// setPaused applies a pause (with its record) or a resume on this replica;
// it logs the reason the record gives, whoever wrote it.
func (w *worker) setPaused(p bool, rec PauseRecord) {
	if w.paused.Swap(p) == p {
		return
	}
	v := 0.0
	if p {
		v = 1
		if rec.Reason == PauseReasonGone {
			w.log.Error("subscriber paused: it answered 410 Gone; events are kept until payhookctl subscribers resume "+w.id, "reason", rec.Reason)
		} else {
			w.log.Warn("subscriber paused; events are kept until payhookctl subscribers resume "+w.id, "reason", rec.Reason, "by", rec.By)
		}
		w.giveBackIdle(nil)
	} else {
		w.log.Info("subscriber resumed")
	}
	w.d.m.paused.WithLabelValues(w.id).Set(v)
}

func (w *worker) pause(ctx context.Context) {
	p := PauseRecord{At: time.Now().UTC(), Reason: PauseReasonGone, By: "dispatcher"}
	w.setPaused(true, p)
	if err := SetPause(ctx, w.d.kv, w.id, p); err != nil {
		w.log.Warn("pause not shared with other replicas", "err", err)
	}
}

// watchPauses mirrors the pause bucket into every worker.
func (d *Dispatcher) watchPauses(ctx context.Context) {
	for ctx.Err() == nil {
		kw, err := d.kv.WatchAll(ctx)
		if err != nil {
			d.log.Warn("pause watch", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		for e := range kw.Updates() {
			if e == nil {
				continue // end of initial values
			}
			if w := d.roster().byID[e.Key()]; w != nil {
				put := e.Operation() == jetstream.KeyValuePut
				var rec PauseRecord
				if put {
					rec = decodePause(e.Value())
				}
				w.setPaused(put, rec)
			}
		}
		_ = kw.Stop()
	}
}
