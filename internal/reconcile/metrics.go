package reconcile

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Poll results, the result label of payhook_reconciler_polls_total.
const (
	PollPending     = "pending"     // the provider knows the order; it is not final yet
	PollNotFound    = "not_found"   // the provider does not know the order (yet)
	PollTerminal    = "terminal"    // succeeded or failed
	PollError       = "error"       // the provider (or the network) failed; retried with backoff
	PollUnsupported = "unsupported" // the provider cannot query this kind of order
)

// Reasons of payhook_reconciler_watches_rejected_total.
const (
	RejectedInvalid    = "invalid"     // the announcement does not validate: 400, or terminated on the subject
	RejectedAccountCap = "account_cap" // the account is at max_watches_per_account: 429, or terminated on the subject
)

// UTR submission results, the result label of payhook_reconciler_utr_submissions_total.
const (
	UTRMatched        = "matched"          // the provider matched the reference: 200
	UTRInUse          = "reference_in_use" // claimed by another order: 409, provider not called
	UTRNotMatched     = "not_matched"      // the provider did not match it: 502, claim released
	UTRProviderError  = "provider_error"   // any other provider refusal: 502, claim kept
	UTRTransportError = "transport_error"  // no answer from the provider: 502, claim kept
	UTRInvalid        = "invalid"          // bad request: 400
	UTRUnavailable    = "unavailable"      // the claim store is down: 503, provider not called
)

type metrics struct {
	polls         *prometheus.CounterVec
	pollSeconds   *prometheus.HistogramVec
	retriggers    *prometheus.CounterVec
	recovered     *prometheus.CounterVec
	closed        *prometheus.CounterVec
	opened        *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	expired       *prometheus.CounterVec
	unrecoverable *prometheus.CounterVec
	rateLimited   *prometheus.CounterVec
	open          prometheus.Gauge
	oldest        prometheus.Gauge
	utr           *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "payhook_reconciler_"
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "polls_total",
			Help: "Provider queries by provider and result: pending, not_found, terminal, error, unsupported.",
		}, []string{"provider", "result"}),
		pollSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    ns + "poll_duration_seconds",
			Help:    "Time for one provider query, by provider.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20},
		}, []string{"provider"}),
		retriggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "retriggers_total",
			Help: "Times a provider was asked to resend a callback it had not delivered (mrnpay callback=true).",
		}, []string{"provider"}),
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "recovered_total",
			Help: "Lost callbacks recovered by the reconciler, by provider and origin: retrigger (the resent callback arrived) or poll (synthesized from a query).",
		}, []string{"provider", "origin"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "watches_closed_total",
			Help: "Watches closed because the order's terminal event exists, by provider and by what produced it: callback, retrigger or poll.",
		}, []string{"provider", "by"}),
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "watches_opened_total",
			Help: "Watches opened, by provider and source (subject, api); re-announcements of an open watch are not counted.",
		}, []string{"provider", "source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "watches_rejected_total",
			Help: "Announcements refused, by source (subject, api) and reason (invalid, account_cap: the account is at reconciler.max_watches_per_account).",
		}, []string{"source", "reason"}),
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "watches_expired_total",
			Help: "Watches that ended without a terminal event, by provider and reason: schedule, expires_at, unverifiable, unrecoverable, unsupported, provider_error.",
		}, []string{"provider", "reason"}),
		unrecoverable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "unrecoverable_total",
			Help: "Terminal query answers that could not be turned into an event (no amount in the answer nor the watch), by provider.",
		}, []string{"provider"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "rate_limited_total",
			Help: "Due polls postponed by the per-account rate limit, by provider.",
		}, []string{"provider"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ns + "watches_open",
			Help: "Open watches (messages in PAYHOOK_RECONCILE), refreshed periodically.",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ns + "oldest_watch_age_seconds",
			Help: "Age of the oldest open watch (since it was opened), refreshed periodically; 0 when none is open.",
		}),
		utr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "utr_submissions_total",
			Help: "UTR/RRN submissions (POST /v1/references) by result: matched, reference_in_use, not_matched, provider_error, transport_error, invalid, unavailable.",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.polls, m.pollSeconds, m.retriggers, m.recovered, m.closed, m.opened,
		m.rejected, m.expired, m.unrecoverable, m.rateLimited, m.open, m.oldest, m.utr} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
