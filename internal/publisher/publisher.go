// Package publisher stores events: the one path by which ingress (callbacks)
// and the reconciler (polls) put an event on PAYHOOK_EVENTS, through the same
// dedupe, so a fact learned twice is published once.
//
// Order of operations, and why:
//  1. Check the dedupe store: already published → Duplicate; pending after a
//     terminal status → Stale; the other terminal status → Conflict.
//  2. Publish to JetStream with Nats-Msg-Id = event id and wait for the ack.
//     Concurrent identical events (two ingress replicas, a callback racing a
//     poll) both publish; JetStream's duplicate window keeps one.
//  3. Record in the dedupe store. If the publish failed nothing is recorded,
//     so the provider's retry goes through again.
//
// A dedupe store that is down never blocks storing: step 1 and 3 are skipped
// (counted as "unavailable") and JetStream's window is the only dedupe.
package publisher

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/pkg/events"
)

// Verdicts of Store.
const (
	Accepted  = "accepted"  // a new event was stored
	Duplicate = "duplicate" // stored before (dedupe store or JetStream window)
	Stale     = "stale"     // pending after a terminal status: not published
	Conflict  = "conflict"  // contradicts the terminal status: stored on the conflict subject
)

// Decision is the dedupe store's opinion of an event before it is published.
type Decision struct {
	Verdict string // Accepted (new), Duplicate, Stale or Conflict
	// For a conflict: the terminal fact that stands.
	PreviousStatus  events.Status
	PreviousEventID string
}

// Deduper is what storing needs from pkg/dedupe. Errors mean the store is
// unavailable.
type Deduper interface {
	Check(ctx context.Context, e *events.Event) (Decision, error)
	Record(ctx context.Context, e *events.Event) error
}

// Publisher stores events.
type Publisher struct {
	js      jetstream.JetStream
	dd      Deduper
	timeout time.Duration
	log     *slog.Logger
	m       *metrics
	now     func() time.Time
}

// New builds a Publisher; dd may be nil (JetStream window only). timeout
// bounds each wait for a JetStream ack.
func New(js jetstream.JetStream, dd Deduper, timeout time.Duration, reg prometheus.Registerer, log *slog.Logger) (*Publisher, error) {
	if log == nil {
		log = slog.Default()
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Publisher{js: js, dd: dd, timeout: timeout, log: log, m: m, now: time.Now}, nil
}

// ErrInvalid wraps an event that cannot be rendered (a bug upstream, not an outage).
var ErrInvalid = errors.New("event cannot be published")

// Store publishes ev unless it is a duplicate or stale, and returns the
// verdict. A nil error means the event (or an earlier copy) is durably
// stored, or deliberately dropped as stale: the caller may acknowledge. An
// error wrapping natsbus.ErrUnavailable means nothing was stored: answer 503.
func (p *Publisher) Store(ctx context.Context, ev *events.Event) (string, error) {
	// Every path (callbacks and polls) gets the same clean-up and checks
	// before anything is decided: an unusable event must not reach the
	// dedupe store, which would take its refusal for an outage.
	ev.Normalize()
	if err := ev.Validate(); err != nil {
		return "", errors.Join(ErrInvalid, err)
	}
	dec := Decision{Verdict: Accepted}
	if p.dd != nil {
		d, err := p.dd.Check(ctx, ev)
		if err != nil {
			p.m.dedupe.WithLabelValues("unavailable").Inc()
			p.m.fallback.Set(1)
			p.log.Warn("dedupe unavailable; relying on the JetStream window", "provider", ev.Provider, "event_id", ev.ID(), "err", err)
		} else {
			p.m.fallback.Set(0)
			dec = d
			p.m.dedupe.WithLabelValues(result(d.Verdict)).Inc()
		}
	}
	switch dec.Verdict {
	case Duplicate, Stale:
		return dec.Verdict, nil
	}
	subject := ev.Subject()
	var body []byte
	var err error
	if dec.Verdict == Conflict {
		subject = ev.ConflictSubject()
		body, err = ev.MarshalConflict(dec.PreviousStatus, dec.PreviousEventID)
		p.m.conflicts.WithLabelValues(ev.Provider, string(ev.Kind)).Inc()
	} else {
		body, err = ev.MarshalCloudEvent()
	}
	if err != nil {
		return "", errors.Join(ErrInvalid, err)
	}
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	start := p.now()
	dup, err := natsbus.Publish(pctx, p.js, subject, ev.ID(), body, nil)
	p.m.publish.Observe(p.now().Sub(start).Seconds())
	if err != nil {
		p.m.publishErrors.Inc()
		return "", err
	}
	if p.dd != nil {
		if err := p.dd.Record(ctx, ev); err != nil {
			// Already stored in JetStream: still a success. A retry inside the
			// JetStream window is a duplicate there.
			p.m.dedupe.WithLabelValues("record_failed").Inc()
			p.log.Warn("dedupe record failed after publish", "provider", ev.Provider, "event_id", ev.ID(), "err", err)
		}
	}
	if dup && dec.Verdict == Accepted {
		p.m.dedupe.WithLabelValues("jetstream_duplicate").Inc()
		return Duplicate, nil
	}
	return dec.Verdict, nil
}

func result(v string) string {
	if v == Accepted {
		return "new"
	}
	return v
}

type metrics struct {
	publish       prometheus.Histogram
	publishErrors prometheus.Counter
	dedupe        *prometheus.CounterVec
	fallback      prometheus.Gauge
	conflicts     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "payhook_publish_duration_seconds",
			Help:    "Time to store one event in JetStream (publish until PubAck).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payhook_publish_errors_total",
			Help: "Events that could not be stored in JetStream (the provider got 503, or the poll is retried).",
		}),
		dedupe: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_dedupe_total",
			Help: "Dedupe decisions by result: new, duplicate, stale, conflict, jetstream_duplicate, unavailable, record_failed.",
		}, []string{"result"}),
		fallback: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "payhook_dedupe_fallback_active",
			Help: "1 while the dedupe store is unreachable and only JetStream's duplicate window dedupes.",
		}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_conflicts_total",
			Help: "Terminal statuses contradicted by a later terminal status, by provider and kind.",
		}, []string{"provider", "kind"}),
	}
	for _, c := range []prometheus.Collector{m.publish, m.publishErrors, m.dedupe, m.fallback, m.conflicts} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
