package reconcile

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/trace"
)

// Run ensures PAYHOOK_RECONCILE and the consumers, then takes announcements
// and handles due watches until ctx ends. Then it drains: it stops taking
// messages, lets in-flight watches finish (each saved, closed or left to be
// redelivered after AckWait; bounded by DrainTimeout) and returns nil. It
// returns an error only when it cannot start.
func (r *Reconciler) Run(ctx context.Context) error {
	err := r.run(ctx)
	if err != nil && ctx.Err() != nil {
		return nil // stopped while starting: nothing was taken, nothing to drain
	}
	return err
}

func (r *Reconciler) run(ctx context.Context) error {
	cons, indexer, err := r.prepare(ctx)
	if err != nil {
		return err
	}
	defer indexer.Stop()

	// In-flight work is not cut short by shutdown: a poll that started
	// finishes (bounded by PollTimeout) and its outcome is saved.
	work := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	ccs, err := r.consume(work, cons, &wg)
	if err != nil {
		return err
	}
	gaugesDone := make(chan struct{})
	go func() {
		defer close(gaugesDone)
		r.refreshGauges(ctx, r.queue)
	}()
	r.log.Info("reconciler running", "workers", r.opt.Workers)

	<-ctx.Done()
	// Teardown: stop pulling new messages (buffered ones are still handled),
	// wait for the handlers, then stop the gauges. NATS is closed by the caller.
	for _, cc := range ccs {
		cc.Drain()
	}
	done := make(chan struct{})
	go func() {
		for _, cc := range ccs {
			<-cc.Closed()
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(r.opt.DrainTimeout):
		r.log.Warn("reconciler drain timed out; unfinished watches are redelivered after the ack wait")
	}
	<-gaugesDone
	return nil
}

// consumers are the reconciler's three pull consumers.
type consumers struct {
	sched, intake, closer jetstream.Consumer
}

// prepare ensures what Run works on: PAYHOOK_RECONCILE and its consumer,
// the intake and closer consumers, the watch records bucket, and
// PAYHOOK_TRACE with its indexer (the per-order index payhookctl trace
// reads: the reconciler owns it). It sets r.queue and r.records.
func (r *Reconciler) prepare(ctx context.Context) (consumers, *trace.Indexer, error) {
	var c consumers
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := EnsureQueue(sctx, r.js, r.cfg.NATS)
	if err != nil {
		return c, nil, err
	}
	if c.sched, err = stream.CreateOrUpdateConsumer(sctx, ConsumerConfig(r.opt.AckWait)); err != nil {
		return c, nil, fmt.Errorf("%w: consumer %s: %v", natsbus.ErrUnavailable, ConsumerSchedule, err)
	}
	if c.intake, err = r.js.CreateOrUpdateConsumer(sctx, natsbus.StreamWatch, IntakeConfig()); err != nil {
		return c, nil, fmt.Errorf("%w: consumer %s: %v", natsbus.ErrUnavailable, ConsumerIntake, err)
	}
	if c.closer, err = r.js.CreateOrUpdateConsumer(sctx, natsbus.StreamEvents, CloserConfig()); err != nil {
		return c, nil, fmt.Errorf("%w: consumer %s: %v", natsbus.ErrUnavailable, ConsumerCloser, err)
	}
	kv, err := WatchKV(sctx, r.js, r.cfg.NATS, r.cfg.Reconciler.WatchRetention.D())
	if err != nil {
		return c, nil, err
	}
	if err := trace.Ensure(sctx, r.js, r.cfg.NATS); err != nil {
		return c, nil, err
	}
	indexer, err := trace.StartIndexer(sctx, r.js, r.log)
	if err != nil {
		return c, nil, err
	}
	r.queue = stream
	r.records.Store(&kvHandle{kv})
	return c, indexer, nil
}

// consume starts the three consumers (due watches, announcements, terminal
// events); wg counts the due-watch handlers still running. On an error the
// consumers already started are stopped.
func (r *Reconciler) consume(work context.Context, c consumers, wg *sync.WaitGroup) ([]jetstream.ConsumeContext, error) {
	sem := make(chan struct{}, r.opt.Workers)
	schedCC, err := c.sched.Consume(func(msg jetstream.Msg) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			// A handler gives its worker back as soon as it goes on to wait
			// for a token or poll (lane.go): workers only triage.
			var once sync.Once
			release := func() { once.Do(func() { <-sem }) }
			defer func() { release(); wg.Done() }()
			r.handle(work, msg, release)
		}()
	}, jetstream.PullMaxMessages(triageBuffer(r.opt.Workers)), jetstream.ConsumeErrHandler(r.consumeErr(ConsumerSchedule)))
	if err != nil {
		return nil, fmt.Errorf("%w: consume %s: %v", natsbus.ErrUnavailable, ConsumerSchedule, err)
	}
	intakeCC, err := c.intake.Consume(func(msg jetstream.Msg) { r.handleIntake(work, msg) },
		jetstream.PullMaxMessages(64), jetstream.ConsumeErrHandler(r.consumeErr(ConsumerIntake)))
	if err != nil {
		schedCC.Stop()
		return nil, fmt.Errorf("%w: consume %s: %v", natsbus.ErrUnavailable, ConsumerIntake, err)
	}
	closerCC, err := c.closer.Consume(func(msg jetstream.Msg) { r.handleEvent(work, msg) },
		jetstream.PullMaxMessages(64), jetstream.ConsumeErrHandler(r.consumeErr(ConsumerCloser)))
	if err != nil {
		schedCC.Stop()
		intakeCC.Stop()
		return nil, fmt.Errorf("%w: consume %s: %v", natsbus.ErrUnavailable, ConsumerCloser, err)
	}
	return []jetstream.ConsumeContext{intakeCC, closerCC, schedCC}, nil
}

// consumeErr logs what the pull consumer reports (missed heartbeats, a
// NATS reconnect): the consumer recovers by itself and the watches wait on
// the server meanwhile.
func (r *Reconciler) consumeErr(name string) jetstream.ConsumeErrHandler {
	return func(_ jetstream.ConsumeContext, err error) {
		r.log.Warn("reconciler consumer", "consumer", name, "err", err)
	}
}
