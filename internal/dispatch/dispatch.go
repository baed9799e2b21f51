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
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/pkg/events"
)

// PauseBucket is the NATS key-value bucket holding paused subscribers (key =
// subscriber id), shared by every replica.
const PauseBucket = "payhook_dispatch_paused"

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

// Dispatcher delivers events to every configured subscriber.
type Dispatcher struct {
	cfg    *config.Config
	js     jetstream.JetStream
	log    *slog.Logger
	m      *metrics
	o      options
	kv     jetstream.KeyValue // PauseBucket
	pos    jetstream.KeyValue // PositionBucket
	status jetstream.KeyValue // StatusBucket
	// rost holds the workers, replaced whole when a reload adds some
	// (reload.go); read it with d.roster().
	rost atomic.Pointer[roster]
	// run is what Run gives the workers a reload adds while it runs.
	runMu sync.Mutex
	run   *runState
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
	o := options{breakerThreshold: 5, breakerMin: 5 * time.Second, breakerMax: time.Minute, statsInterval: 5 * time.Second, fetchWait: time.Second, positionInterval: time.Second, historyLen: 20}
	for _, s := range cfg.Subscribers {
		o.drainTimeout = max(o.drainTimeout, s.Timeout.D()+time.Second)
	}
	for _, f := range opts {
		f(&o)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("dispatch: metrics: %w", err)
	}
	d := &Dispatcher{cfg: cfg, js: js, log: log, m: m, o: o, heads: newHeadCache(), keys: keys}
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

// FilterSubjects turns a subscriber filter into consumer filter subjects:
// the product of providers × kinds × statuses ("*" for an empty list; at most
// 5×3×4 = 60 subjects). Accounts are not in the subject and are filtered in
// code. An empty statuses list matches every status token, "conflict"
// included; a non-empty list gets conflict events when it names "conflict"
// or a terminal status (see statuses).
func FilterSubjects(f config.Filter) []string {
	if len(f.Providers) == 0 && len(f.Kinds) == 0 && len(f.Statuses) == 0 {
		return []string{natsbus.SubjectEvents}
	}
	or := func(l []string) []string {
		if len(l) == 0 {
			return []string{"*"}
		}
		return l
	}
	var out []string
	for _, p := range or(f.Providers) {
		for _, k := range or(f.Kinds) {
			for _, s := range or(statuses(f.Statuses)) {
				out = append(out, "payhook.events."+p+"."+k+"."+s)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// statuses is the status tokens a filter's statuses list subscribes to. A
// conflict (a terminal status contradicted by the other one, e.g. a late
// success after a failure) concerns every subscriber that follows terminal
// statuses: a ledger listening for [succeeded, failed] must learn that a
// failed order was paid after all. So naming a terminal status adds
// "conflict".
func statuses(l []string) []string {
	if len(l) == 0 || slices.Contains(l, string(events.StatusConflict)) {
		return l
	}
	if slices.Contains(l, string(events.StatusSucceeded)) || slices.Contains(l, string(events.StatusFailed)) {
		return append(slices.Clone(l), string(events.StatusConflict))
	}
	return l
}

// Match reports whether an event on subject with data e passes filter f. The
// status is the subject's last token; conflict events match an empty
// statuses list or one naming "conflict" or a terminal status.
func Match(f config.Filter, subject string, e events.Event) bool {
	tok := strings.Split(subject, ".")
	if len(tok) != 5 || tok[0] != "payhook" || tok[1] != "events" {
		return false
	}
	in := func(l []string, v string) bool { return len(l) == 0 || slices.Contains(l, v) }
	return in(f.Providers, tok[2]) && in(f.Kinds, tok[3]) && in(statuses(f.Statuses), tok[4]) && in(f.Accounts, e.Account)
}

// head is what routing needs of a stored CloudEvent: decoding only these
// fields skips building provider_fields (a map per event per subscriber),
// which was a fifth of the dispatcher's CPU.
type head struct {
	SpecVersion string `json:"specversion"`
	ID          string `json:"id"`
	Type        string `json:"type"`
	Data        struct {
		Provider        string        `json:"provider"`
		Account         string        `json:"account"`
		Kind            events.Kind   `json:"kind"`
		Status          events.Status `json:"status"`
		MerchantOrderID string        `json:"merchant_order_id"`
		ProviderOrderID string        `json:"provider_order_id"`
	} `json:"data"`
}

// parseHead decodes the routing fields of a CloudEvent published by payhook.
func parseHead(b []byte) (events.CloudEvent, error) {
	var h head
	if err := json.Unmarshal(b, &h); err != nil {
		return events.CloudEvent{}, fmt.Errorf("%w: %v", events.ErrInvalid, err)
	}
	if h.SpecVersion != "1.0" || h.ID == "" {
		return events.CloudEvent{}, fmt.Errorf("%w: not a payhook CloudEvent", events.ErrInvalid)
	}
	return events.CloudEvent{SpecVersion: h.SpecVersion, ID: h.ID, Type: h.Type, Data: events.Event{
		Provider: h.Data.Provider, Account: h.Data.Account, Kind: h.Data.Kind, Status: h.Data.Status,
		MerchantOrderID: h.Data.MerchantOrderID, ProviderOrderID: h.Data.ProviderOrderID,
	}}, nil
}

// OrderKey is the ordering key of an event: provider, account, kind and
// merchant order id (the provider order id when there is none; the event id
// when neither is known, which orders nothing).
func OrderKey(ce events.CloudEvent) string {
	e := ce.Data
	id := e.MerchantOrderID
	if id == "" {
		id = e.ProviderOrderID
	}
	if id == "" {
		id = "evt:" + ce.ID
	}
	return e.Provider + "|" + e.Account + "|" + string(e.Kind) + "|" + id
}

type worker struct {
	d       *Dispatcher
	sub     config.Subscriber
	log     *slog.Logger
	signer  *Signer
	client  *http.Client
	limiter *rate.Limiter
	br      *breaker
	paused  atomic.Bool
	sem     chan struct{}
	// cons[0] is the events consumer, cons[1] the replay consumer;
	// replaced when one is recreated (checkConsumer, serialized by fix).
	cmu  sync.Mutex
	cons [2]jetstream.Consumer
	fix  sync.Mutex
	// missing[i] is set while cons[i] is gone and not yet recreated.
	missing [2]atomic.Bool
	// floor is the last ack floor this replica read in or wrote to PositionBucket.
	floor atomic.Uint64
	// pins[0] is the events consumer's pin, pins[1] the replay consumer's
	// (see PinGroup).
	pins    [2]pinState
	ackWait time.Duration
	hard    context.Context // cancelled when draining takes too long
	// maxStarted caps the deliveries this replica has started and not
	// finished (in flight, or waiting for a slot, a rate token or the
	// breaker): 4 × concurrency. Events held for ordering are not counted,
	// or holding them could stop the fetching that brings back the very
	// redelivery they wait for; MaxAckPending bounds them instead.
	maxStarted int

	mu       sync.Mutex
	started  int
	orders   map[string]*orderState
	owned    map[*item]struct{} // started and held messages, kept alive
	history  map[string][]Attempt
	histKeys []string
	// finished holds the PAYHOOK_EVENTS stream sequences this replica
	// delivered or dead-lettered above the consumer's last read ack floor
	// (see finishedBefore).
	finished map[uint64]struct{}
	inflight sync.WaitGroup

	// status is what StatusBucket says of this subscriber (state.go).
	stMu    sync.Mutex
	status  Status
	stDirty bool
}

type orderState struct {
	busy     bool      // a delivery of this order is started
	replay   bool      // the order's events come from the replay consumer
	retrySeq uint64    // stream seq of this order's event waiting in JetStream for a retry
	retryDue time.Time // when JetStream redelivers it (the Nak + its delay)
	queue    []*item   // later events, by stream seq
}

// PinGroup is the priority group of every subscriber consumer. The
// consumers use JetStream's pinned-client priority policy: of the replicas
// fetching from a subscriber's consumer, the server hands messages to one,
// the pinned one, and the others' fetches come back empty. So one replica at
// a time delivers a subscriber's events, and every redelivery of a retry
// comes back to the replica that holds the later events of its order: the
// per-order ordering of one replica holds with any number of replicas
// (docs/dispatcher.md "Ordering guarantee"). Replicas still share the work
// across subscribers (each consumer is pinned to whichever replica asked
// first) and stand by for each other.
//
// The pin moves when the pinned replica has not asked for messages for
// PinnedTTL (= AckWait: it died, or it stopped fetching for that long, with
// its breaker open or every slot busy), or at once when it stops (Run unpins
// it). A replica that lost its pin learns it from its next fetch (the
// server answers 423, jetstream.ErrPinIDMismatch), and gives back the held
// events whose earlier event waits in JetStream for its retry, due after
// that retry, as on a pause.
const PinGroup = "dispatch"

// pinState is what a replica knows of its pin on one consumer.
type pinState struct {
	standby atomic.Bool // the last fetch said another replica is pinned
	mu      sync.Mutex
	id      string // the pin id on the last message this replica got
}

// got records that a fetch brought m: this replica is pinned, by m's pin id.
func (p *pinState) got(m jetstream.Msg) {
	p.standby.Store(false)
	if h := m.Headers(); h != nil {
		if id := h.Get("Nats-Pin-Id"); id != "" {
			p.mu.Lock()
			p.id = id
			p.mu.Unlock()
		}
	}
}

func (w *worker) pin(replay bool) *pinState {
	if replay {
		return &w.pins[1]
	}
	return &w.pins[0]
}

// giveBackMargin is how much later than the event they wait for held
// events are made to come back when they are given back to JetStream.
// JetStream queues redeliveries in the order they fall due (stream order
// among those falling due together), so any positive margin brings the
// earlier event back first; a second absorbs the delay between our clock
// at the Nak and the server's.
const giveBackMargin = time.Second

type item struct {
	msg     jetstream.Msg
	replay  bool
	signed  nats.Header // its signature headers go along into the DLQ
	seq     uint64
	attempt int
	id      string
	key     string
	body    []byte
	replays int
}

func (d *Dispatcher) newWorker(ctx context.Context, s config.Subscriber) (*worker, error) {
	signer, err := NewSigner(s.AllSecrets())
	if err != nil {
		return nil, fmt.Errorf("dispatch: subscriber %s: %w", s.ID, err)
	}
	w := &worker{
		d: d, sub: s, log: d.log.With("subscriber", s.ID), signer: signer,
		client: &http.Client{
			// Redirects are not followed: a subscriber answers where it is configured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{MaxIdleConnsPerHost: s.Concurrency, IdleConnTimeout: 90 * time.Second, Proxy: http.ProxyFromEnvironment},
		},
		sem:    make(chan struct{}, s.Concurrency),
		orders: map[string]*orderState{}, owned: map[*item]struct{}{}, history: map[string][]Attempt{}, finished: map[uint64]struct{}{},
		// AckWait outlives the longest attempt; held messages are kept alive
		// with InProgress every AckWait/3.
		ackWait:    2*s.Timeout.D() + 10*time.Second,
		maxStarted: 4 * s.Concurrency,
	}
	if s.RatePerSecond > 0 {
		w.limiter = rate.NewLimiter(rate.Limit(s.RatePerSecond), max(s.RateBurst, 1))
	}
	w.br = newBreaker(d.o.breakerThreshold, d.o.breakerMin, d.o.breakerMax, func(st BreakerState) {
		d.m.breaker.WithLabelValues(s.ID).Set(float64(st))
		w.noteBreaker(st)
		w.log.Warn("circuit breaker", "state", st.String())
	})
	w.status.Breaker = BreakerClosed.String()
	d.m.breaker.WithLabelValues(s.ID).Set(0)
	d.m.paused.WithLabelValues(s.ID).Set(0)
	d.m.active.WithLabelValues(s.ID).Set(0)
	d.m.forged.WithLabelValues(s.ID) // a zero, so the alert's increase() sees the first forgery
	d.m.missing.WithLabelValues(s.ID).Set(0)
	d.m.recreated.WithLabelValues(s.ID)
	for _, replay := range []bool{false, true} {
		if _, err := w.ensureConsumer(ctx, replay); err != nil {
			return nil, err
		}
	}
	return w, nil
}

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
	for _, w := range d.roster().workers {
		w.giveBackIdle(nil)
	}
	done := make(chan struct{})
	go func() {
		for _, w := range d.roster().workers {
			w.inflight.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d.o.drainTimeout):
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

// unpin hands over, at shutdown, the consumers this replica is pinned to,
// so that a standing-by replica takes over at once rather than after
// PinnedTTL. A consumer pinned to another replica is left alone.
func (d *Dispatcher) unpin() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, w := range d.roster().workers {
		for i, c := range []jetstream.Consumer{w.consumer(false), w.consumer(true)} { // as w.pins
			p := &w.pins[i]
			p.mu.Lock()
			id := p.id
			p.mu.Unlock()
			if id == "" || p.standby.Load() {
				continue
			}
			info, err := c.Info(ctx)
			if err != nil {
				continue
			}
			for _, g := range info.PriorityGroups {
				if g.Group != PinGroup || g.PinnedClientID != id {
					continue
				}
				if s, err := d.js.Stream(ctx, info.Stream); err == nil {
					if err := s.UnpinConsumer(ctx, info.Name, PinGroup); err != nil {
						w.log.Debug("unpin", "consumer", info.Name, "err", err)
					}
				}
			}
		}
	}
}

// Subscribers returns the configured subscriber ids.
func (d *Dispatcher) Subscribers() []string {
	ws := d.roster().workers
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.sub.ID
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
			w.log.Error("subscriber paused: it answered 410 Gone; events are kept until payhookctl subscribers resume "+w.sub.ID, "reason", rec.Reason)
		} else {
			w.log.Warn("subscriber paused; events are kept until payhookctl subscribers resume "+w.sub.ID, "reason", rec.Reason, "by", rec.By)
		}
		w.giveBackIdle(nil)
	} else {
		w.log.Info("subscriber resumed")
	}
	w.d.m.paused.WithLabelValues(w.sub.ID).Set(v)
}

func (w *worker) pause(ctx context.Context) {
	p := PauseRecord{At: time.Now().UTC(), Reason: PauseReasonGone, By: "dispatcher"}
	w.setPaused(true, p)
	if err := SetPause(ctx, w.d.kv, w.sub.ID, p); err != nil {
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
			d.m.pending.WithLabelValues(w.sub.ID).Set(float64(lag))
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
		d.m.dlqDepth.WithLabelValues(w.sub.ID).Set(float64(info.State.Subjects[DLQSubject(w.sub.ID)]))
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// fetchLoop pulls messages while the subscriber is not paused, its breaker
// is not open and fewer than maxStarted deliveries are started.
//
// A fetch that fails (the consumer was deleted: "no responders", consumer
// not found or deleted) is looked into at once: checkConsumer recreates a
// consumer that is gone.
func (w *worker) fetchLoop(ctx context.Context, replay bool) {
	for ctx.Err() == nil {
		if w.paused.Load() {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		if wait := w.br.blockedFor(); wait > 0 {
			sleep(ctx, min(wait, time.Second))
			continue
		}
		w.mu.Lock()
		free := w.maxStarted - w.started
		w.mu.Unlock()
		if free <= 0 {
			sleep(ctx, 20*time.Millisecond)
			continue
		}
		want := min(free, cap(w.sem))
		began := time.Now()
		c := w.consumer(replay)
		batch, err := c.Fetch(want, jetstream.FetchMaxWait(w.d.o.fetchWait), jetstream.FetchPriorityGroup(PinGroup))
		if err != nil {
			if ctx.Err() == nil && !w.checkConsumer(ctx, replay) {
				w.log.Warn("fetch", "err", err)
				sleep(ctx, 500*time.Millisecond)
			}
			continue
		}
		got := 0
		for m := range batch.Messages() {
			if got == 0 { // one message of the batch tells the pin
				w.pin(replay).got(m)
				if !replay {
					w.d.m.active.WithLabelValues(w.sub.ID).Set(1)
				}
			}
			got++
			w.accept(ctx, m, replay)
		}
		if err := batch.Error(); errors.Is(err, jetstream.ErrPinIDMismatch) {
			// Another replica delivers for this subscriber now: give back
			// what waits here behind a retry that will go to it.
			if !w.pin(replay).standby.Swap(true) {
				w.log.Info("another replica now delivers this subscriber's events; standing by", "replay", replay)
				if !replay {
					w.d.m.active.WithLabelValues(w.sub.ID).Set(0)
				}
			}
			w.giveBackIdle(func(st *orderState) bool { return st.replay == replay })
			continue
		} else if err != nil {
			// A pull that failed (consumer deleted, no responders, ...)
			// fails at once: do not spin on it.
			if ctx.Err() == nil && !w.checkConsumer(ctx, replay) {
				w.log.Warn("fetch", "err", err)
				sleep(ctx, 500*time.Millisecond)
			}
			continue
		}
		if got < want && ctx.Err() == nil {
			w.releaseStranded(ctx, replay, began)
		}
	}
}

// releaseStranded runs after a fetch begun at began came back with fewer
// messages than it asked for: JetStream had nothing more for this replica.
// JetStream hands out due redeliveries before new messages, and even at
// MaxAckPending, so an earlier event that has been due for its redelivery
// since before began and is not back here was handed to another replica:
// the events held behind it would otherwise wait for ever, and are sent.
// The AckWait of margin covers a redelivery that reached this replica in a
// fetch it gave up on (the message is then redelivered after AckWait). Not
// fetching at all (pause, open breaker, every slot busy) never gets here.
func (w *worker) releaseStranded(ctx context.Context, replay bool, began time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, st := range w.orders {
		if st.replay != replay || st.busy || st.retrySeq == 0 || began.Before(st.retryDue.Add(w.ackWait)) {
			continue
		}
		if len(st.queue) > 0 {
			w.log.Warn("the earlier event of an order went to another replica; sending the events held behind it",
				"stream_seq", st.retrySeq, "held", len(st.queue))
			w.d.m.strandedHolds.WithLabelValues(w.sub.ID).Inc()
		}
		st.retrySeq = 0
		w.startNextLocked(ctx, st)
		if !st.busy && len(st.queue) == 0 {
			delete(w.orders, key)
		}
	}
}

// giveBackIdle gives back to JetStream the held events of every order with
// no delivery started (their earlier event waits in JetStream for its
// retry) for which only(order) is true (every order when only is nil): at
// shutdown, on a pause, on losing the pin. Orders with a delivery started
// give theirs back when it ends (done).
func (w *worker) giveBackIdle(only func(*orderState) bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, st := range w.orders {
		if !st.busy && (only == nil || only(st)) {
			w.giveBackLocked(st)
		}
	}
}

// giveBackLocked gives the held events of an order back to JetStream, in
// stream order. When the earlier event waits in JetStream for its retry,
// they are given back with a delay that makes them due giveBackMargin
// after it, so whichever replica fetches them next gets the earlier event
// first and holds them behind it; otherwise (the earlier event was
// delivered, or was itself just given back) at once.
func (w *worker) giveBackLocked(st *orderState) {
	var delay time.Duration
	if st.retrySeq != 0 {
		delay = max(time.Until(st.retryDue), 0) + giveBackMargin
	}
	for _, q := range st.queue {
		if delay > 0 {
			_ = q.msg.NakWithDelay(delay)
		} else {
			_ = q.msg.Nak()
		}
		delete(w.owned, q)
	}
	st.queue = nil
}

// keepAlive extends AckWait for every message this replica holds, and
// gives back held events that arrived while the subscriber is paused.
func (w *worker) keepAlive(ctx context.Context) {
	t := time.NewTicker(max(w.ackWait/3, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if w.paused.Load() {
			w.giveBackIdle(nil)
		}
		w.mu.Lock()
		for it := range w.owned {
			_ = it.msg.InProgress()
		}
		w.mu.Unlock()
	}
}

func (w *worker) accept(ctx context.Context, m jetstream.Msg, replay bool) {
	meta, err := m.Metadata()
	if err != nil {
		_ = m.Nak()
		return
	}
	// Verified before it is decoded: nothing about a forged message is
	// acted on (forged.go).
	signedID, err := w.d.verify(m.Headers(), m.Data())
	if err != nil {
		w.refuseForged(m, meta, err)
		return
	}
	ce, err := w.d.heads.parse(m.Data())
	if err != nil {
		w.log.Error("not a CloudEvent: terminated", "stream_seq", meta.Sequence.Stream)
		_ = m.Term()
		w.d.m.deliveries.WithLabelValues(w.sub.ID, OutcomeInvalid).Inc()
		return
	}
	if w.d.keys != nil && ce.ID != signedID {
		w.refuseForged(m, meta, errIDMismatch)
		return
	}
	// The signature covers the body, not the subject: the subject the
	// filter reads is the one the signed body says (forged.go).
	subject := events.SubjectOf(ce)
	if w.d.keys != nil && !replay && m.Subject() != subject {
		w.refuseForged(m, meta, errSubjectMismatch)
		return
	}
	if !replay && w.finishedBefore(meta.Sequence.Stream) {
		_ = m.Ack()
		return
	}
	if !Match(w.sub.Filter, subject, ce.Data) {
		_ = m.Ack()
		w.d.m.deliveries.WithLabelValues(w.sub.ID, OutcomeFiltered).Inc()
		return
	}
	it := &item{msg: m, replay: replay, signed: m.Headers(), seq: meta.Sequence.Stream, attempt: int(meta.NumDelivered), id: ce.ID, key: OrderKey(ce), body: m.Data()}
	if replay {
		it.key = "replay|" + it.key
		it.replays, _ = strconv.Atoi(m.Headers().Get(HeaderReplay))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.orders[it.key]
	if st == nil {
		st = &orderState{replay: replay}
		w.orders[it.key] = st
	}
	for i, q := range st.queue {
		if q.seq == it.seq { // redelivered while held: keep the newer handle
			delete(w.owned, q)
			st.queue[i] = it
			w.owned[it] = struct{}{}
			return
		}
	}
	// Held: behind a started delivery of the order, or behind an earlier
	// event of it waiting in JetStream for its retry (that one, when it
	// comes back, has seq == retrySeq and is started).
	held := st.busy || (st.retrySeq != 0 && it.seq > st.retrySeq)
	w.owned[it] = struct{}{}
	if held {
		i, _ := slices.BinarySearchFunc(st.queue, it.seq, func(q *item, s uint64) int { return cmp.Compare(q.seq, s) })
		st.queue = slices.Insert(st.queue, i, it)
		return
	}
	st.busy = true
	w.start(ctx, it)
}

// start runs one delivery; callers hold w.mu.
func (w *worker) start(ctx context.Context, it *item) {
	w.started++
	w.inflight.Add(1)
	go w.deliver(ctx, w.hard, it)
}

// startNextLocked starts the next held event of an order, if any.
func (w *worker) startNextLocked(ctx context.Context, st *orderState) {
	if st.busy || len(st.queue) == 0 {
		return
	}
	next := st.queue[0]
	st.queue = st.queue[1:]
	st.busy = true
	w.start(ctx, next)
}

type finish int

const (
	finDone     finish = iota // acked (delivered, dead-lettered)
	finRetry                  // nak'd with delay
	finReleased               // given back to JetStream without an attempt
)

func (w *worker) deliver(ctx, hard context.Context, it *item) {
	defer w.inflight.Done()
	if !it.replay && w.finishedBefore(it.seq) {
		// A copy from a recreated consumer of an event this replica
		// finished (it was held behind the original): not sent again.
		_ = it.msg.Ack()
		w.done(ctx, it, finDone, 0)
		return
	}
	// Waiting phase: abandoned when Run stops or the subscriber is paused.
	for {
		if ctx.Err() != nil || w.paused.Load() {
			w.done(ctx, it, finReleased, 0)
			return
		}
		ok, wait := w.br.allow()
		if ok {
			break
		}
		sleep(ctx, min(wait, 200*time.Millisecond))
	}
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		w.br.cancelProbe()
		w.done(ctx, it, finReleased, 0)
		return
	}
	if w.limiter != nil {
		if err := w.limiter.Wait(ctx); err != nil {
			<-w.sem
			w.br.cancelProbe()
			w.done(ctx, it, finReleased, 0)
			return
		}
	}
	if w.paused.Load() || w.br.current() == BreakerOpen {
		// Paused (another attempt got 410 Gone) or the breaker opened (other
		// attempts failed) while this delivery waited for a slot: do not
		// call the subscriber now; the event goes back to JetStream.
		<-w.sem
		w.br.cancelProbe()
		w.done(ctx, it, finReleased, 0)
		return
	}
	// Sending phase: not abandoned on shutdown (drained), bounded by the
	// subscriber timeout and the drain deadline (hard).
	rctx, cancel := context.WithTimeout(hard, w.sub.Timeout.D())
	res := Post(rctx, w.client, w.sub.URL, w.signer, it.id, it.body, time.Now())
	cancel()
	<-w.sem
	if res.Err != nil && hard.Err() != nil {
		// Cut off by shutdown: not the subscriber's failure.
		w.br.cancelProbe()
		w.done(ctx, it, finReleased, 0)
		return
	}
	w.d.m.duration.WithLabelValues(w.sub.ID).Observe(res.Duration.Seconds())
	hist := w.record(it.id, res)
	w.noteAttempt(res)
	attempt := max(it.attempt, 1)
	disp := Decide(res, attempt, w.sub.MaxAttempts)
	w.logAttempt(it, res, attempt, disp)
	switch disp {
	case Delivered:
		w.br.result(true)
		if err := it.msg.Ack(); err != nil {
			w.log.Warn("ack failed; the event may be delivered again", append(it.attrs(), "err", err)...)
		}
		w.d.m.deliveries.WithLabelValues(w.sub.ID, OutcomeDelivered).Inc()
		w.d.m.attempts.WithLabelValues(w.sub.ID).Observe(float64(attempt))
		w.log.Debug("delivered", append(it.attrs(), "attempt", attempt, "status", res.Status)...)
		w.markFinished(it)
		w.forget(it.id)
		w.done(ctx, it, finDone, 0)
	case Pause:
		w.br.cancelProbe()
		w.pause(context.WithoutCancel(ctx))
		w.d.m.deliveries.WithLabelValues(w.sub.ID, OutcomePaused).Inc()
		w.done(ctx, it, finReleased, 0)
	case Retry:
		w.br.result(false)
		delay := Backoff(attempt, w.sub.BackoffInitial.D(), w.sub.BackoffMax.D(), res.RetryAfter)
		_ = it.msg.NakWithDelay(delay)
		w.d.m.deliveries.WithLabelValues(w.sub.ID, OutcomeRetry).Inc()
		w.log.Info("delivery failed; will retry", append(it.attrs(), "attempt", attempt, "status", res.Status, "err", res.Err, "delay", delay)...)
		w.done(ctx, it, finRetry, delay)
	case DeadLettered:
		w.br.result(false)
		dl := DeadLetter{
			Event: json.RawMessage(it.body), EventID: it.id, Subscriber: w.sub.ID, Attempts: attempt,
			LastError: res.Err.Error(), LastStatus: res.Status, History: hist, At: time.Now().UTC(), Replays: it.replays,
		}
		pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := PublishDeadLetter(pctx, w.d.js, dl, it.signed)
		pcancel()
		if err != nil {
			// Not stored in the DLQ: keep the event and try again shortly.
			w.log.Error("dead letter not stored; retrying", append(it.attrs(), "err", err)...)
			delay := w.sub.BackoffInitial.D()
			_ = it.msg.NakWithDelay(delay)
			w.done(ctx, it, finRetry, delay)
			return
		}
		_ = it.msg.Ack()
		w.d.m.deliveries.WithLabelValues(w.sub.ID, OutcomeDeadLettered).Inc()
		w.d.m.deadLetters.WithLabelValues(w.sub.ID).Inc()
		w.d.m.attempts.WithLabelValues(w.sub.ID).Observe(float64(attempt))
		w.log.Warn("dead-lettered", append(it.attrs(), "attempts", attempt, "status", res.Status, "err", res.Err)...)
		w.markFinished(it)
		w.forget(it.id)
		w.done(ctx, it, finDone, 0)
	}
}

// done updates the order's state after a delivery and starts the next held
// event of that order when the order is free.
func (w *worker) done(ctx context.Context, it *item, f finish, delay time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.started--
	delete(w.owned, it)
	st := w.orders[it.key]
	if st == nil {
		if f == finReleased {
			_ = it.msg.Nak()
		}
		return
	}
	st.busy = false
	switch f {
	case finDone:
		st.retrySeq = 0
		if ctx.Err() == nil {
			w.startNextLocked(ctx, st)
		}
	case finRetry:
		st.retrySeq = it.seq
		st.retryDue = time.Now().Add(delay)
		// A copy of the event itself held behind it: the consumer was
		// recreated while it was in flight, so its nak went to the old
		// consumer and only the copy will come back. Held, the copy would
		// wait for itself (seq == retrySeq) for as long as keepAlive runs;
		// it takes the retry instead, on its own consumer.
		if i, ok := slices.BinarySearchFunc(st.queue, it.seq, func(q *item, s uint64) int { return cmp.Compare(q.seq, s) }); ok {
			q := st.queue[i]
			st.queue = slices.Delete(st.queue, i, i+1)
			delete(w.owned, q)
			_ = q.msg.NakWithDelay(delay)
		}
		if w.pin(st.replay).standby.Load() {
			// The retry goes to the pinned replica: so do the held events.
			w.giveBackLocked(st)
		}
	case finReleased:
		// Give the event and every later held event of its order back to
		// JetStream, in stream order, so a replica (or this one, after a
		// resume) gets them again, the earlier one first.
		_ = it.msg.Nak()
		st.retrySeq = 0
		w.giveBackLocked(st)
	}
	if ctx.Err() != nil {
		// Shutting down: nothing more starts here.
		w.giveBackLocked(st)
	}
	if !st.busy && st.retrySeq == 0 && len(st.queue) == 0 {
		delete(w.orders, it.key)
	}
}

// record appends res to the event's bounded attempt history (last
// historyLen attempts of at most 10,000 events) and returns a copy.
func (w *worker) record(id string, res Result) []Attempt {
	a := Attempt{At: time.Now().UTC(), Status: res.Status, Duration: res.Duration.Seconds()}
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	h, ok := w.history[id]
	if !ok {
		w.histKeys = append(w.histKeys, id)
		if len(w.histKeys) > 10000 {
			delete(w.history, w.histKeys[0])
			w.histKeys = w.histKeys[1:]
		}
	}
	h = append(h, a)
	if len(h) > w.d.o.historyLen {
		h = h[len(h)-w.d.o.historyLen:]
	}
	w.history[id] = h
	return slices.Clone(h)
}

func (w *worker) forget(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.history, id)
	if i := slices.Index(w.histKeys, id); i >= 0 {
		w.histKeys = slices.Delete(w.histKeys, i, i+1)
	}
}
