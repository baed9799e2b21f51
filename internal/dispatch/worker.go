package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/payhook/payhook/internal/config"
)

// worker delivers the events of one subscriber on this replica.
type worker struct {
	d  *Dispatcher
	id string // the subscriber id
	// set is the subscriber's settings, replaced whole by a reload
	// (reload.go); read it with w.settings(), once per use.
	set    atomic.Pointer[settings]
	log    *slog.Logger
	m      workerMetrics
	client *http.Client
	br     *breaker
	paused atomic.Bool
	sem    chan struct{}
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
	pins [2]pinState
	hard context.Context // cancelled when draining takes too long
	// stop ends this worker's loops alone (a reload removed its
	// subscriber); set by runState.start.
	stop  context.CancelFunc
	loops sync.WaitGroup // its fetch and keep-alive loops
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
	// retryMsg and retryID are that event's last delivery and id: a plain
	// Nak on retryMsg's ack subject makes JetStream redeliver it at once
	// (retry now, retrynow.go).
	retryMsg jetstream.Msg
	retryID  string
	queue    []*item // later events, by stream seq
}

type item struct {
	msg     jetstream.Msg
	replay  bool
	signed  nats.Header // its signature headers go along into the DLQ
	seq     uint64
	attempt int
	id      string
	key     string
	head    *eventHead // shared with the event's other deliveries: read only
	body    []byte
	replays int
}

// settings is what a reload may change of a running subscriber: every
// setting but its id and concurrency (the slots and the fetch cap are
// sized by it at start).
type settings struct {
	sub     config.Subscriber
	signer  *Signer
	limiter *rate.Limiter // nil: no rate limit
	// ackWait outlives the longest attempt (2 × timeout + 10 s); held
	// messages are kept alive with InProgress every ackWait/3.
	ackWait time.Duration
}

func newSettings(s config.Subscriber) (*settings, error) {
	signer, err := NewSigner(s.AllSecrets())
	if err != nil {
		return nil, fmt.Errorf("dispatch: subscriber %s: %w", s.ID, err)
	}
	st := &settings{sub: s, signer: signer, ackWait: 2*s.Timeout.D() + 10*time.Second}
	if s.RatePerSecond > 0 {
		st.limiter = rate.NewLimiter(rate.Limit(s.RatePerSecond), max(s.RateBurst, 1))
	}
	return st, nil
}

func (w *worker) settings() *settings { return w.set.Load() }

// concurrency is the worker's slots, sized when it was made: a reload
// does not change it.
func (w *worker) concurrency() int { return cap(w.sem) }

func (d *Dispatcher) newWorker(ctx context.Context, s config.Subscriber) (*worker, error) {
	set, err := newSettings(s)
	if err != nil {
		return nil, err
	}
	w := &worker{
		d: d, id: s.ID, log: d.log.With("subscriber", s.ID),
		client: &http.Client{
			// Redirects are not followed: a subscriber answers where it is configured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{MaxIdleConnsPerHost: s.Concurrency, IdleConnTimeout: 90 * time.Second, Proxy: http.ProxyFromEnvironment},
		},
		sem:    make(chan struct{}, s.Concurrency),
		orders: map[string]*orderState{}, owned: map[*item]struct{}{}, history: map[string][]Attempt{}, finished: map[uint64]struct{}{},
		maxStarted: 4 * s.Concurrency, m: newWorkerMetrics(),
	}
	w.set.Store(set)
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
