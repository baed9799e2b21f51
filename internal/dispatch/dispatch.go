// Package dispatch delivers payhook events to subscribers (docs/interfaces.md
// "Webhooks out"): one durable JetStream consumer per subscriber, Standard
// Webhooks signatures, retries with exponential backoff and full jitter, a
// dead-letter stream with replay, 410 Gone pausing, a circuit breaker,
// per-subscriber concurrency and rate limits, and per-order ordering.
//
// # Ordering guarantee
//
// With one dispatcher replica, for one subscriber, events of the same
// merchant order (provider, account, kind, merchant_order_id) are delivered
// one at a time in stream order: while an event of an order is in flight or
// waiting in JetStream for its retry, later events of that order are held in
// memory (kept alive with InProgress, not acknowledged) and sent only after
// the earlier event was delivered or dead-lettered. Different orders are
// delivered in parallel, up to the subscriber's concurrency.
//
// Held events do not count toward the replica's fetch cap (which counts
// started deliveries only), so however many are held the replica keeps
// fetching and the earlier event's redelivery always comes back to it;
// JetStream hands out due redeliveries before new messages, even at
// MaxAckPending, which is what bounds the held events. The replica stops
// waiting for an earlier event only when it has evidence that another
// replica took the redelivery: the redelivery has been due for AckWait, and
// a fetch begun after that came back with less than it asked for without it
// (see releaseStranded). Not fetching (pause, open breaker, every slot busy)
// is never such evidence. Held events given back to JetStream (shutdown,
// pause) are given back with a delay that brings them back after the event
// they wait for, so a restarted replica sees the earlier event first.
//
// Across replicas sharing a consumer the guarantee does not hold: JetStream
// hands each message to whichever replica pulls, and a replica holds an
// event only behind an earlier one it has seen itself. Two events of one
// order fetched by two replicas at once go out in parallel, and an event
// whose order's earlier event is retrying on another replica is not held.
// See docs/dispatcher.md "Ordering guarantee".
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/pkg/events"
)

// ErrUnknownSubscriber is returned for a subscriber id not in the config.
var ErrUnknownSubscriber = errors.New("unknown subscriber")

// Option tunes a Dispatcher.
type Option func(*options)

type options struct {
	breakerThreshold int
	breakerMin       time.Duration
	breakerMax       time.Duration
	drainTimeout     time.Duration
	statsInterval    time.Duration
	fetchWait        time.Duration
	positionInterval time.Duration
	retryGather      time.Duration
	historyLen       int
	// onMissing, when set, is called once a consumer was found gone and
	// before it is recreated (tests look at /readyz then).
	onMissing func(subscriber string, replay bool)
}

// WithBreaker sets the circuit breaker: it opens after threshold consecutive
// failures, for coolMin doubling up to coolMax (default 5, 5s, 1m).
func WithBreaker(threshold int, coolMin, coolMax time.Duration) Option {
	return func(o *options) { o.breakerThreshold, o.breakerMin, o.breakerMax = threshold, coolMin, coolMax }
}

// WithDrainTimeout bounds how long Run waits for in-flight deliveries after
// its context is cancelled (default: the longest subscriber timeout + 1s);
// deliveries still running then are cancelled and left for redelivery.
func WithDrainTimeout(d time.Duration) Option { return func(o *options) { o.drainTimeout = d } }

// WithStatsInterval sets how often consumer lag and DLQ depth are read (default 5s).
func WithStatsInterval(d time.Duration) Option { return func(o *options) { o.statsInterval = d } }

// WithPositionInterval sets how often each subscriber's ack floor is read
// from its consumer and recorded in PositionBucket (default 1s). A consumer
// deleted behind the dispatcher's back is recreated from the last record,
// so the events acknowledged in the interval before its deletion are
// delivered again.
func WithPositionInterval(d time.Duration) Option { return func(o *options) { o.positionInterval = d } }

// WithFetchWait sets the long-poll wait of each fetch (default 1s); it bounds
// how fast a fetch loop notices shutdown, pause or an open breaker.
func WithFetchWait(d time.Duration) Option { return func(o *options) { o.fetchWait = d } }

// WithRetryGather sets how long RetryNow waits for the replicas' answers
// (default 1s).
func WithRetryGather(d time.Duration) Option { return func(o *options) { o.retryGather = d } }

// Dispatcher delivers events to every configured subscriber.
type Dispatcher struct {
	// cfg is the running config: the one New was given, then each one a
	// Reload applied; guarded by reloadMu.
	cfg *config.Config
	js  jetstream.JetStream
	// attemptJS publishes attempt-log entries; its async error handler
	// counts those not stored.
	attemptJS jetstream.JetStream
	log       *slog.Logger
	m         *metrics
	o         options
	kv        jetstream.KeyValue // PauseBucket
	pos       jetstream.KeyValue // PositionBucket
	status    jetstream.KeyValue // StatusBucket
	// rost holds the workers, replaced whole when a reload adds some
	// (reload.go); read it with d.roster().
	rost atomic.Pointer[roster]
	// run is what Run gives the workers a reload adds while it runs;
	// stopped are the workers a reload removed while it ran, until their
	// in-flight attempts have finished (stopWorker).
	runMu   sync.Mutex
	run     *runState
	stopped []*worker
	// reloadMu makes reloads one at a time.
	reloadMu sync.Mutex
	heads    *headCache // routing fields shared by the subscribers' consumers
	// keys verify every message before delivery (forged.go); nil when
	// event_signing is disabled.
	keys      []events.PublicKey
	verified  verifiedCache
	forgedLog forgedLog
}

// New creates or updates the replay stream, the pause and position buckets
// and two durable consumers per subscriber ("dispatch-<id>" on
// PAYHOOK_EVENTS and "replay-<id>" on PAYHOOK_REPLAY), and registers the
// metrics on reg. It deletes no consumer: those of subscribers it does not
// know are left to the dispatchers that serve them (see Retire). The event
// streams must exist (natsbus.EnsureStreams). cfg.EventSigning must give
// public keys or be disabled; otherwise New returns a *config.Error naming
// event_signing.public_keys.
func New(cfg *config.Config, js jetstream.JetStream, reg prometheus.Registerer, log *slog.Logger, opts ...Option) (*Dispatcher, error) {
	if log == nil {
		log = slog.Default()
	}
	keys, err := cfg.EventSigning.PublicKeyList("dispatcher")
	if err != nil {
		return nil, err
	}
	o := options{breakerThreshold: 5, breakerMin: 5 * time.Second, breakerMax: time.Minute, statsInterval: 5 * time.Second, fetchWait: time.Second, positionInterval: time.Second, retryGather: time.Second, historyLen: 20}
	for _, f := range opts {
		f(&o)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("dispatch: metrics: %w", err)
	}
	d := &Dispatcher{cfg: cfg, js: js, log: log, m: m, o: o, heads: newHeadCache(), keys: keys}
	// Attempt-log entries are acknowledged but not awaited: failures
	// (PAYHOOK_TRACE missing or full, NATS slow) arrive here, counted.
	if d.attemptJS, err = jetstream.New(js.Conn(), jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) {
		m.attemptLogErrors.Inc()
	})); err != nil {
		return nil, fmt.Errorf("dispatch: %w", err)
	}
	r := &roster{byID: map[string]*worker{}}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := EnsureReplayStream(ctx, js, cfg.NATS); err != nil {
		return nil, err
	}
	if d.kv, err = PauseKV(ctx, js, cfg.NATS); err != nil {
		return nil, err
	}
	if d.status, err = StatusKV(ctx, js, cfg.NATS); err != nil {
		return nil, err
	}
	d.pos, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: PositionBucket, Description: "each subscriber's acknowledged position in PAYHOOK_EVENTS", Replicas: max(cfg.NATS.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: kv %s: %v", natsbus.ErrUnavailable, PositionBucket, err)
	}
	for _, s := range cfg.Subscribers {
		w, err := d.newWorker(ctx, s)
		if err != nil {
			return nil, err
		}
		r.workers = append(r.workers, w)
		r.byID[s.ID] = w
	}
	d.rost.Store(r)
	return d, nil
}

// ConsumerName is the durable consumer of subscriber id on PAYHOOK_EVENTS.
func ConsumerName(id string) string { return "dispatch-" + id }

// ReplayConsumerName is the durable consumer of subscriber id on PAYHOOK_REPLAY.
func ReplayConsumerName(id string) string { return "replay-" + id }

// Run delivers until ctx is cancelled, then stops fetching, gives held
// messages back to JetStream, waits for in-flight deliveries (bounded by the
// drain timeout) and returns nil.
func (d *Dispatcher) Run(ctx context.Context) error {
	// hard is cancelled when draining takes too long: it aborts HTTP requests.
	hard, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	var loops sync.WaitGroup
	bg := func(f func()) { loops.Add(1); go func() { defer loops.Done(); f() }() }
	bg(func() { d.watchPauses(ctx) })
	bg(func() { d.statsLoop(ctx) })
	bg(func() { d.positionLoop(ctx) })
	bg(func() { d.serveRetries(ctx) })
	d.runMu.Lock()
	d.run = &runState{ctx: ctx, hard: hard, bg: bg}
	for _, w := range d.roster().workers {
		d.run.start(w)
	}
	d.runMu.Unlock()
	<-ctx.Done()
	d.runMu.Lock()
	d.run = nil // a reload from now on starts nothing
	d.runMu.Unlock()
	loops.Wait()
	all := d.allWorkers()
	for _, w := range all {
		w.giveBackIdle(nil)
	}
	done := make(chan struct{})
	go func() {
		for _, w := range all {
			w.inflight.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d.drainTimeout(all)):
		d.log.Warn("drain timeout: cancelling in-flight deliveries; they will be redelivered")
		abort()
		<-done
	}
	// Record where each subscriber stands after the drain, so a consumer
	// deleted while no dispatcher runs resumes exactly there.
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	d.recordPositions(fctx)
	cancel()
	d.unpin()
	return nil
}

// Subscribers returns the configured subscriber ids.
func (d *Dispatcher) Subscribers() []string {
	ws := d.roster().workers
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.id
	}
	return out
}

// Paused reports whether subscriber id is paused on this replica.
func (d *Dispatcher) Paused(id string) bool {
	w := d.roster().byID[id]
	return w != nil && w.paused.Load()
}

// Breaker returns the circuit breaker state of subscriber id.
func (d *Dispatcher) Breaker(id string) BreakerState {
	if w := d.roster().byID[id]; w != nil {
		return w.br.current()
	}
	return BreakerClosed
}

// drainTimeout is WithDrainTimeout's, or else the longest timeout of the
// subscribers' settings as they are now (a reload may have changed them) + 1s.
func (d *Dispatcher) drainTimeout(ws []*worker) time.Duration {
	if d.o.drainTimeout > 0 {
		return d.o.drainTimeout
	}
	t := time.Second
	for _, w := range ws {
		t = max(t, w.settings().sub.Timeout.D()+time.Second)
	}
	return t
}
