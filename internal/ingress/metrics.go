package ingress

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/pkg/events"
)

type metrics struct {
	callbacks *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	rawErrors prometheus.Counter
	// rateLimited counts rejections answered 429 and not recorded, by
	// provider ("unknown" for an unknown route or provider) and the reason
	// the request was rejected for; never by address.
	rateLimited *prometheus.CounterVec
	// claimsDropped counts refusals whose claimed order id was not written
	// because a claim bucket was empty (the refusal itself was recorded).
	claimsDropped *prometheus.CounterVec
	// rawSkipped counts records of verified requests that stored nothing
	// new (duplicate, stale, conflict) left unwritten because their event
	// id was past its repeat bucket, by provider and verdict.
	rawSkipped *prometheus.CounterVec
	mismatches *prometheus.CounterVec

	// The series New creates up front (every configured provider's kinds
	// and verdicts), read without a lock: a callback's two updates then
	// cost a map read each instead of a label hash, a check of the label
	// values and the vector's lock. Written only by New.
	callbackSeries map[callbackLabels]prometheus.Counter
	durationSeries map[string]prometheus.Observer
}

type callbackLabels struct{ provider, kind, verdict string }

// Latency buckets from 0.5 ms to 5 s: the p99 target is 10 ms, the publish
// timeout 5 s.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		callbackSeries: map[callbackLabels]prometheus.Counter{},
		durationSeries: map[string]prometheus.Observer{},
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_ingress_callbacks_total",
			Help: "Callbacks received, by provider, kind and verdict (accepted, duplicate, stale, conflict, rejected, unavailable).",
		}, []string{"provider", "kind", "verdict"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_ingress_rejected_total",
			Help: "Callbacks rejected with 4xx, by provider and reason (bad_signature, malformed, unknown_account, too_old, ...).",
		}, []string{"provider", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "payhook_ingress_request_duration_seconds",
			Help:    "Time from receiving a callback to answering it, by provider.",
			Buckets: latencyBuckets,
		}, []string{"provider"}),
		rawErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payhook_ingress_raw_publish_errors_total",
			Help: "Raw request records that could not be stored on PAYHOOK_RAW or PAYHOOK_RAW_REJECTED.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_ingress_rate_limited_total",
			Help: "Rejected requests answered 429 and not recorded because their client address was past ingress.rejections_per_second, by provider and rejection reason.",
		}, []string{"provider", "reason"}),
		rawSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_ingress_raw_records_skipped_total",
			Help: "Raw records of verified callbacks that stored nothing new (verdict duplicate, stale or conflict) not written to PAYHOOK_RAW because the same event was repeated past 20 records plus one a minute, by provider and verdict. The callbacks were answered as usual.",
		}, []string{"provider", "verdict"}),
		claimsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_ingress_claims_dropped_total",
			Help: "Rejected requests that did not verify recorded without the order id their bytes claim, because that order's or account's claim bucket was empty (20 per order then 1/min; 2,000 per account then 1 per 4 s), by provider.",
		}, []string{"provider"}),
		mismatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payhook_amount_mismatches_total",
			Help: "Events whose paid amount differs from the requested amount, by provider and kind.",
		}, []string{"provider", "kind"}),
	}
	for _, c := range []prometheus.Collector{m.callbacks, m.rejected, m.duration, m.rawErrors, m.rateLimited, m.rawSkipped, m.claimsDropped, m.mismatches} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// precreate creates every bounded label combination of a configured
// provider and its kinds, so that dashboards and alerts see zeros instead
// of absent series, and keeps them for observe to read on every callback.
func (m *metrics) precreate(provider string, kinds []events.Kind) {
	m.durationSeries[provider] = m.duration.WithLabelValues(provider)
	for _, k := range kinds {
		m.mismatches.WithLabelValues(provider, string(k))
		for _, v := range []string{VerdictAccepted, VerdictDuplicate, VerdictStale, VerdictConflict, VerdictRejected, VerdictUnavailable} {
			m.callbackSeries[callbackLabels{provider, string(k), v}] = m.callbacks.WithLabelValues(provider, string(k), v)
		}
		for _, v := range []string{VerdictDuplicate, VerdictStale, VerdictConflict} {
			m.rawSkipped.WithLabelValues(provider, v)
		}
	}
}

func (m *metrics) observe(o outcome, d time.Duration) {
	c, ok := m.callbackSeries[callbackLabels{o.provider, o.kind, o.verdict}]
	if !ok {
		c = m.callbacks.WithLabelValues(o.provider, o.kind, o.verdict)
	}
	c.Inc()
	if o.verdict == VerdictRejected {
		m.rejected.WithLabelValues(o.provider, string(o.reason)).Inc()
	}
	h, ok := m.durationSeries[o.provider]
	if !ok {
		h = m.duration.WithLabelValues(o.provider)
	}
	h.Observe(d.Seconds())
}
