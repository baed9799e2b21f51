package config

import (
	"slices"
	"time"
)

// Default values and bounds, with the reasoning beside each.
const (
	DefaultBodyLimit = 64 << 10 // callbacks are < 4 KiB; 64 KiB leaves room and bounds abuse

	// MinDedupeWindow: the dedupe window must outlast every provider's
	// retry schedule (cashypro's ~17 h is the longest), and the default
	// max_age leaves a seventh of it for FutureSkew, which takes 21 h.
	MinDedupeWindow = 24 * time.Hour

	// FutureSkew is how far in the future a signed provider timestamp may
	// be and still be accepted: provider clocks drift, and cashypro's
	// completionTime carries no zone (read as WIB, UTC+7; a provider on
	// WIT, UTC+9, would look 2 h ahead). A callback signed further ahead is
	// refused (reason "future_timestamp"): it would stay fresh past the
	// dedupe window.
	FutureSkew = 3 * time.Hour

	// MinAdminTokenBytes: a bearer token guessable by brute force guards nothing.
	MinAdminTokenBytes = 32
)

// DefaultMaxAge is accounts[].max_age when not set: six sevenths of the
// dedupe window (168h → 144h). A callback is accepted only while
// now - signed ≤ max_age, and a signed timestamp is at most FutureSkew
// ahead of the first receipt, so a replay is refused before the dedupe
// store forgets the first copy as long as max_age + FutureSkew ≤ window.
func DefaultMaxAge(window time.Duration) time.Duration { return window - window/7 }

// DefaultSchedule is the reconciler's poll schedule after a watch opens:
// 1m+3m+10m+30m+1h+3h+6h+12h+24h ≈ 46.7 h of chasing, past cashypro's ~17 h
// retry schedule and mpurse's ~2 h, then the watch expires.
var DefaultSchedule = []Duration{
	Duration(time.Minute), Duration(3 * time.Minute), Duration(10 * time.Minute),
	Duration(30 * time.Minute), Duration(time.Hour), Duration(3 * time.Hour),
	Duration(6 * time.Hour), Duration(12 * time.Hour), Duration(24 * time.Hour),
}

// defaults fills every key left out (or zero) with its default. Accounts'
// max_age derives from dedupe.window, so dedupe is filled in before them.
func (c *Config) defaults() {
	c.NATS.defaults()
	if c.Dedupe.Window == 0 {
		c.Dedupe.Window = Duration(7 * 24 * time.Hour)
	}
	c.Ingress.defaults()
	if c.Dispatcher.Listen == "" {
		c.Dispatcher.Listen = "127.0.0.1:8081"
	}
	c.Reconciler.defaults()
	for i := range c.Accounts {
		if a := &c.Accounts[i]; a.MaxAge == 0 {
			a.MaxAge = DefaultMaxAge(c.Dedupe.Window.D())
		}
	}
	for i := range c.Subscribers {
		c.Subscribers[i].defaults()
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
}

func (n *NATS) defaults() {
	if n.Replicas == 0 {
		n.Replicas = 1
	}
	if n.TraceMaxAge == 0 {
		n.TraceMaxAge = Duration(30 * 24 * time.Hour)
	}
	if n.TraceMaxBytes == 0 {
		n.TraceMaxBytes = 2 << 30
	}
	if n.RawMaxAge == 0 {
		n.RawMaxAge = Duration(30 * 24 * time.Hour)
	}
	if n.RawMaxBytes == 0 {
		n.RawMaxBytes = 10 << 30
	}
	if n.RawRejectedMaxBytes == 0 {
		n.RawRejectedMaxBytes = 1 << 30
	}
	if n.EventsMaxAge == 0 {
		n.EventsMaxAge = Duration(90 * 24 * time.Hour)
	}
	if n.DuplicateWindow == 0 {
		// 5 minutes, past the first retry of every provider (cashypro 1 min,
		// mpurse 2 min): a publish whose acknowledgement was lost but which
		// JetStream stored is then absorbed when the provider retries, even
		// if the dedupe store never heard of it. Costs NATS one id per
		// message for 5 minutes (~300k ids at 1,000 callbacks/s).
		n.DuplicateWindow = Duration(5 * time.Minute)
	}
}

func (in *Ingress) defaults() {
	if in.Listen == "" {
		in.Listen = "127.0.0.1:8080"
	}
	if in.BodyLimit == 0 {
		in.BodyLimit = DefaultBodyLimit
	}
	if in.PublishTimeout == 0 {
		in.PublishTimeout = Duration(5 * time.Second)
	}
	if in.RejectionsPerSecond == 0 {
		in.RejectionsPerSecond = 10
	}
	if in.RejectionsBurst == 0 {
		in.RejectionsBurst = 100
	}
}

func (r *Reconciler) defaults() {
	if r.Listen == "" {
		r.Listen = "127.0.0.1:8082"
	}
	if len(r.Schedule) == 0 {
		r.Schedule = slices.Clone(DefaultSchedule)
	}
	if r.RetriggerGrace == 0 {
		r.RetriggerGrace = Duration(2 * time.Minute)
	}
	if r.WatchRetention == 0 {
		r.WatchRetention = Duration(7 * 24 * time.Hour)
	}
	if r.RatePerSecond == 0 {
		r.RatePerSecond = 5
	}
	if r.RateBurst == 0 {
		r.RateBurst = 10
	}
	if r.MaxWatchesPerAccount == 0 {
		r.MaxWatchesPerAccount = DefaultMaxWatchesPerAccount
	}
}

func (s *Subscriber) defaults() {
	if s.MaxAttempts == 0 {
		s.MaxAttempts = 15
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(10 * time.Second)
	}
	if s.BackoffInitial == 0 {
		s.BackoffInitial = Duration(5 * time.Second)
	}
	if s.BackoffMax == 0 {
		s.BackoffMax = Duration(10 * time.Hour)
	}
	if s.Concurrency == 0 {
		s.Concurrency = 16
	}
}
