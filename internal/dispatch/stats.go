package dispatch

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/natsbus"
)

// statsLoop publishes consumer lag and DLQ depth.
func (d *Dispatcher) statsLoop(ctx context.Context) {
	t := time.NewTicker(d.o.statsInterval)
	defer t.Stop()
	for {
		d.readStats(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Dispatcher) readStats(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, w := range d.roster().workers {
		var lag uint64
		ok := true
		for _, c := range []jetstream.Consumer{w.consumer(false), w.consumer(true)} {
			ci, err := c.Info(ctx)
			if err != nil {
				ok = false
				break
			}
			lag += ci.NumPending + uint64(ci.NumAckPending)
		}
		if ok {
			d.m.pending.WithLabelValues(w.id).Set(float64(lag))
		}
		w.flushStatus(ctx, d.status)
	}
	s, err := d.js.Stream(ctx, natsbus.StreamDLQ)
	if err != nil {
		return
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(natsbus.SubjectDLQ))
	if err != nil {
		return
	}
	for _, w := range d.roster().workers {
		d.m.dlqDepth.WithLabelValues(w.id).Set(float64(info.State.Subjects[DLQSubject(w.id)]))
	}
}
