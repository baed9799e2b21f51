// Package publisher stores events: the one path by which ingress (callbacks)
// and the reconciler (polls) put an event on PAYHOOK_EVENTS, through the same
// dedupe, so a fact learned twice is published once.
//
// Order of operations, and why:
//  1. Check the dedupe store: already published → Duplicate; pending after a
//     terminal status → Stale; the other terminal status → Conflict.
//  2. Run the caller's BeforeRender hooks (labels the check does not read,
//     such as the origin), then publish to JetStream with Nats-Msg-Id =
//     event id, signed (webhook-id, webhook-timestamp, webhook-signature
//     headers; see WithSigner), and wait for the ack.
//     Concurrent identical events (two ingress replicas, a callback racing a
//     poll) both publish; JetStream's duplicate window keeps one.
//  3. Record in the dedupe store (dedupe.Store.RecordPrior). If the publish
//     failed nothing is recorded, so the provider's retry goes through again.
//  4. If step 3 finds that another caller recorded the contradicting
//     terminal status while this one was between steps 1 and 3 (a success
//     and a failure of one order on two replicas at once), publish a
//     follow-up conflict event on payhook.events.{provider}.{kind}.conflict
//     with both facts, id and Nats-Msg-Id events.Event.ConflictFollowUpID
//     (the event id + ":conflict"), count it and return Conflict.
//
// The guarantee, per order, while the dedupe store answers: the first
// terminal status recorded stands; a contradicting terminal status goes out
// as a conflict event — alone when it arrives after the first was recorded,
// or after its own normal event when the two raced — and exactly one
// conflict event is published for it, however many replicas handle it (the
// follow-up's id is deterministic, so JetStream's window collapses copies).
// A pending that raced a terminal status the same way was already published
// on its normal subject; it is left there (it asserts nothing final, and the
// recorded state stays terminal) and counted as raced_stale. If the
// follow-up publish itself fails, the event is still stored: Store logs an
// error, counts the conflict and a publish error, and returns Conflict; a
// retry of the event is then a Duplicate at step 1, so that conflict event
// is not sent later.
//
// A dedupe store that is down never blocks storing: step 1 and 3 are skipped
// (counted as "unavailable") and JetStream's window is the only dedupe; no
// conflict, seen at Check or raced, is detected then.
package publisher

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/tracing"
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
	// Check decides, before the publish, from what is recorded.
	Check(ctx context.Context, e *events.Event) (Decision, error)
	// Record notes e as published, atomically, and decides again from the
	// state it found there: Conflict (with the status that stands) when
	// another caller recorded the contradicting terminal status first,
	// Stale when e is a pending and a terminal status was recorded first,
	// else Accepted or Duplicate.
	Record(ctx context.Context, e *events.Event) (Decision, error)
}

// Publisher stores events.
type Publisher struct {
	js      jetstream.JetStream
	dd      Deduper
	timeout time.Duration
	log     *slog.Logger
	m       *metrics
	now     func() time.Time
	signer  *events.Signer
}

// Option adjusts a Publisher.
type Option func(*Publisher)

// WithSigner signs every event message stored (pkg/events "Signed events on
// the bus"): the dispatcher delivers nothing unsigned. Without it (signing
// disabled) messages go out without the webhook-* headers.
func WithSigner(s *events.Signer) Option { return func(p *Publisher) { p.signer = s } }

// New builds a Publisher; dd may be nil (JetStream window only). timeout
// bounds each wait for a JetStream ack.
func New(js jetstream.JetStream, dd Deduper, timeout time.Duration, reg prometheus.Registerer, log *slog.Logger, opts ...Option) (*Publisher, error) {
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
	p := &Publisher{js: js, dd: dd, timeout: timeout, log: log, m: m, now: time.Now}
	for _, o := range opts {
		o(p)
	}
	return p, nil
}

// StoreOption adjusts one Store call.
type StoreOption struct{ before func(*events.Event) }

// BeforeRender has Store call f on the event once the dedupe check has
// decided to publish it, just before it is rendered and signed; never for
// a duplicate or a stale event. f may set what the check does not read —
// the origin, not the event id's parts (provider, account, kind, order,
// status) — so a caller can finish a lookup while the check is in flight
// (ingress: whether the reconciler asked for this callback, for the
// origin "retrigger").
func BeforeRender(f func(*events.Event)) StoreOption { return StoreOption{before: f} }

// ErrInvalid wraps an event that cannot be rendered (a bug upstream, not an outage).
var ErrInvalid = errors.New("event cannot be published")

// Store publishes ev unless it is a duplicate or stale, and returns the
// verdict. A nil error means the event (or an earlier copy) is durably
// stored, or deliberately dropped as stale: the caller may acknowledge. An
// error wrapping natsbus.ErrUnavailable means nothing was stored: answer 503.
// Conflict means ev contradicts the terminal status that stands and went out
// as a conflict event: instead of its normal event, or after it when the two
// raced (see the package doc). The steps — check, render, publish,
// record — stay in one function because their order is the promise:
// nothing is recorded as stored before the publish is acknowledged.
func (p *Publisher) Store(ctx context.Context, ev *events.Event, opts ...StoreOption) (string, error) {
	// Every path (callbacks and polls) gets the same clean-up and checks
	// before anything is decided: an unusable event must not reach the
	// dedupe store, which would take its refusal for an outage.
	ev.Normalize()
	if err := ev.Validate(); err != nil {
		return "", errors.Join(ErrInvalid, err)
	}
	var before []func(*events.Event)
	for _, o := range opts {
		before = append(before, o.before)
	}
	dec := Decision{Verdict: Accepted}
	if p.dd != nil {
		d, err := p.dd.Check(ctx, ev)
		if err != nil {
			p.m.dedupe.WithLabelValues("unavailable").Inc()
			p.m.fallback.Set(1)
			p.log.WarnContext(ctx, "dedupe unavailable; relying on the JetStream window", append(attrs(ev), "err", err)...)
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
	if len(before) > 0 {
		for _, f := range before {
			f(ev)
		}
		if err := ev.Validate(); err != nil {
			return "", errors.Join(ErrInvalid, err)
		}
	}
	subject := ev.Subject()
	var body []byte
	var err error
	if dec.Verdict == Conflict {
		subject = ev.ConflictSubject()
		body, err = ev.MarshalConflict(dec.PreviousStatus, dec.PreviousEventID)
	} else {
		body, err = ev.MarshalCloudEvent()
	}
	if err != nil {
		return "", errors.Join(ErrInvalid, err)
	}
	dup, err := p.publish(ctx, subject, ev.ID(), body)
	if err != nil {
		return "", err
	}
	if dec.Verdict == Conflict && !dup {
		// Counted once stored, so neither a 503 and its retry nor a second
		// replica with the same callback counts one conflict twice.
		p.m.conflicts.WithLabelValues(ev.Provider, string(ev.Kind)).Inc()
	}
	rec := Decision{Verdict: Accepted}
	if p.dd != nil {
		if rec, err = p.dd.Record(ctx, ev); err != nil {
			// Already stored in JetStream: still a success. A retry inside the
			// JetStream window is a duplicate there.
			p.m.dedupe.WithLabelValues("record_failed").Inc()
			p.log.WarnContext(ctx, "dedupe record failed after publish", append(attrs(ev), "err", err)...)
			rec = Decision{Verdict: Accepted}
		}
	}
	if dec.Verdict == Conflict {
		return Conflict, nil
	}
	if dup {
		p.m.dedupe.WithLabelValues("jetstream_duplicate").Inc()
	}
	switch rec.Verdict {
	case Conflict:
		return p.followUp(ctx, ev, rec), nil
	case Stale:
		p.m.dedupe.WithLabelValues("raced_stale").Inc()
		p.log.InfoContext(ctx, "pending published while a terminal status was recorded (raced); the terminal status stands",
			append(attrs(ev), "standing_status", rec.PreviousStatus, "standing_event_id", rec.PreviousEventID)...)
	}
	if dup {
		return Duplicate, nil
	}
	return Accepted, nil
}

// followUp publishes the conflict event for ev, which has just gone out on
// its normal subject although another caller recorded the contradicting
// terminal status (rec) first. ev is stored either way, so a failure here is
// logged and counted, not returned.
func (p *Publisher) followUp(ctx context.Context, ev *events.Event, rec Decision) string {
	p.m.dedupe.WithLabelValues("raced_conflict").Inc()
	log := p.log.With(append(attrs(ev), "conflict_id", ev.ConflictFollowUpID(),
		"standing_status", rec.PreviousStatus, "standing_event_id", rec.PreviousEventID)...)
	body, err := ev.MarshalConflictFollowUp(rec.PreviousStatus, rec.PreviousEventID)
	if err == nil {
		var dup bool
		if dup, err = p.publish(ctx, ev.ConflictSubject(), ev.ConflictFollowUpID(), body); err == nil && dup {
			return Duplicate // another replica followed up the same event and counted it
		}
	}
	p.m.conflicts.WithLabelValues(ev.Provider, string(ev.Kind)).Inc()
	if err != nil {
		log.ErrorContext(ctx, "conflict follow-up not stored: the contradicting status went out on its normal subject only", "err", err)
	} else {
		log.WarnContext(ctx, "contradicting terminal statuses raced; conflict follow-up published")
	}
	return Conflict
}

// publish stores one message, bounded by the publish timeout, and reports
// whether JetStream already had its Nats-Msg-Id. msgID is the CloudEvent's
// id, so it is also the signed webhook-id.
func (p *Publisher) publish(ctx context.Context, subject, msgID string, body []byte) (bool, error) {
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	start := p.now()
	h := nats.Header{}
	if p.signer != nil {
		p.signer.Sign(h, msgID, start, body)
	}
	// The producer span's context travels as the traceparent header,
	// outside what the signature covers; the dispatcher's deliveries of
	// this event are its children.
	pctx, span := tracing.Start(pctx, "payhook.publish", trace.SpanKindProducer)
	tracing.InjectNATS(pctx, h)
	dup, err := natsbus.Publish(pctx, p.js, subject, msgID, body, h)
	p.m.publish.Observe(p.now().Sub(start).Seconds())
	if err != nil {
		p.m.publishErrors.Inc()
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", subject),
			tracing.AttrEventID.String(msgID), attribute.Bool("payhook.duplicate", dup))
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	return dup, err
}

// attrs are the log attributes that tie a line to its callback or poll:
// provider, account, kind, order id (the merchant's, else the provider's)
// and event id, as ingress and the dispatcher name them.
func attrs(ev *events.Event) []any {
	order := ev.MerchantOrderID
	if order == "" {
		order = ev.ProviderOrderID
	}
	return []any{"provider", ev.Provider, "account", ev.Account, "kind", string(ev.Kind), "order_id", order, "event_id", ev.ID()}
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
			Help: "Dedupe decisions by result: new, duplicate, stale, conflict or unavailable (at Check, one per event stored); then jetstream_duplicate, record_failed, raced_conflict, raced_stale (after the publish, in addition).",
		}, []string{"result"}),
		fallback: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "payhook_dedupe_fallback_active",
			Help: "1 while the dedupe store is unreachable and only JetStream's duplicate window dedupes.",
		}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_conflicts_total",
			Help: "Conflict events stored (a terminal status contradicted by the other one, seen at Check or raced), by provider and kind.",
		}, []string{"provider", "kind"}),
	}
	for _, c := range []prometheus.Collector{m.publish, m.publishErrors, m.dedupe, m.fallback, m.conflicts} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
