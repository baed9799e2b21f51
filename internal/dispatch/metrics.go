package dispatch

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of deliveries_total.
const (
	OutcomeDelivered    = "delivered"
	OutcomeRetry        = "retry"
	OutcomeDeadLettered = "dead_lettered"
	OutcomePaused       = "paused"   // 410 Gone
	OutcomeFiltered     = "filtered" // event did not match the subscriber's filter
	OutcomeInvalid      = "invalid"  // message was not a CloudEvent: terminated
)

type metrics struct {
	deliveries  *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	attempts    *prometheus.HistogramVec
	deadLetters *prometheus.CounterVec
	dlqDepth    *prometheus.GaugeVec
	pending     *prometheus.GaugeVec
	breaker     *prometheus.GaugeVec
	paused      *prometheus.GaugeVec
	// strandedHolds counts orders whose held events were sent without
	// their earlier event, whose redelivery did not come back here.
	strandedHolds *prometheus.CounterVec
	// active is 1 while this replica's fetches get the subscriber's events.
	active *prometheus.GaugeVec
	// missing is 1 while a consumer of the subscriber is gone and not yet
	// recreated; recreated counts the recreations.
	missing   *prometheus.GaugeVec
	recreated *prometheus.CounterVec
	// forged counts messages refused because their signature did not verify.
	forged *prometheus.CounterVec
	// attemptLogErrors counts attempt-log entries that were not stored.
	attemptLogErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_dispatch_deliveries_total",
			Help: "Delivery attempts and dispositions by subscriber and outcome (delivered, retry, dead_lettered, paused, filtered, invalid).",
		}, []string{"subscriber", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "payhook_dispatch_delivery_duration_seconds",
			Help:    "HTTP delivery latency per attempt.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"subscriber"}),
		attempts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "payhook_dispatch_delivery_attempts",
			Help:    "Attempts an event took when it was delivered or dead-lettered.",
			Buckets: []float64{1, 2, 3, 5, 8, 12, 15, 20, 30, 50, 100},
		}, []string{"subscriber"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_dispatch_dead_letters_total",
			Help: "Events moved to PAYHOOK_DLQ after running out of attempts.",
		}, []string{"subscriber"}),
		dlqDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payhook_dispatch_dlq_depth",
			Help: "Dead letters waiting in PAYHOOK_DLQ per subscriber.",
		}, []string{"subscriber"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payhook_dispatch_consumer_pending",
			Help: "Consumer lag: events not yet delivered plus those awaiting ack or retry, per subscriber.",
		}, []string{"subscriber"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payhook_dispatch_breaker_state",
			Help: "Circuit breaker per subscriber: 0 closed, 1 half-open, 2 open.",
		}, []string{"subscriber"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payhook_dispatch_subscriber_paused",
			Help: "1 while a subscriber is paused (it answered 410 Gone) until an operator resumes it.",
		}, []string{"subscriber"}),
		strandedHolds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_dispatch_ordering_given_up_total",
			Help: "Orders whose held events were sent before an earlier event of the order, because that event's retry did not come back within AckWait of being due.",
		}, []string{"subscriber"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payhook_dispatch_subscriber_active",
			Help: "1 while this replica is the one delivering the subscriber's events (its consumer is pinned here), 0 while it stands by.",
		}, []string{"subscriber"}),
		missing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payhook_dispatch_consumer_missing",
			Help: "1 while a consumer of the subscriber (events or replay) is gone and not yet recreated.",
		}, []string{"subscriber"}),
		recreated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_dispatch_consumer_recreated_total",
			Help: "Consumers of the subscriber found deleted while the dispatcher ran and recreated from the recorded position.",
		}, []string{"subscriber"}),
		attemptLogErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payhook_dispatch_attempt_log_errors_total",
			Help: "Delivery attempts whose entry in the attempt log (PAYHOOK_TRACE, read by payhookctl trace) could not be stored; the delivery itself is unaffected.",
		}),
		forged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_dispatch_forged_total",
			Help: "Event messages refused because they are not signed by a configured event_signing key (or their webhook-id is not the event's id, or a genuine event is on another event's subject): never delivered, terminated; one per subscriber's copy.",
		}, []string{"subscriber"}),
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.duration, m.attempts, m.deadLetters, m.dlqDepth, m.pending, m.breaker, m.paused, m.strandedHolds, m.active, m.missing, m.recreated, m.forged, m.attemptLogErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// workerMetrics are the children of the metrics a worker updates on every
// delivery, looked up in their vectors (a hash of the labels under a lock)
// once per subscriber rather than per delivery, and only when first used,
// so a series appears in /metrics when it would have.
type workerMetrics struct {
	duration  child[prometheus.Observer]
	attempts  child[prometheus.Observer]
	delivered child[prometheus.Counter]
}

// child is a metric child looked up on first use.
type child[T any] struct {
	p atomic.Pointer[T]
	f func(w *worker) T
}

func (c *child[T]) get(w *worker) T {
	if p := c.p.Load(); p != nil {
		return *p
	}
	v := c.f(w)
	c.p.Store(&v)
	return v
}

func newWorkerMetrics() workerMetrics {
	return workerMetrics{
		duration:  child[prometheus.Observer]{f: func(w *worker) prometheus.Observer { return w.d.m.duration.WithLabelValues(w.id) }},
		attempts:  child[prometheus.Observer]{f: func(w *worker) prometheus.Observer { return w.d.m.attempts.WithLabelValues(w.id) }},
		delivered: child[prometheus.Counter]{f: func(w *worker) prometheus.Counter { return w.d.m.deliveries.WithLabelValues(w.id, OutcomeDelivered) }},
	}
}
