package reconcile

import (
	"time"
)

// Expiry reasons, the reason label of payhook_reconciler_watches_expired_total.
const (
	ExpiredSchedule      = "schedule"       // every scheduled poll found nothing terminal
	ExpiredExpiresAt     = "expires_at"     // the order's own expires_at passed (after one last poll)
	ExpiredUnverifiable  = "unverifiable"   // mpurse, fantian: no query endpoint, no event arrived
	ExpiredUnrecoverable = "unrecoverable"  // the provider said terminal, but its answer cannot make an event
	ExpiredUnsupported   = "unsupported"    // the provider cannot query this kind
	ExpiredProviderError = "provider_error" // the provider kept failing past the error deadline
)

// Schedule is when a watch is polled: Delays[i] is the wait before poll i,
// counted from the open (i = 0) or from the previous poll, so the default
// 1m, 3m, 10m, 30m, 1h, 3h, 6h, 12h, 24h polls at about 1m, 4m, 14m, 44m,
// 1h44m, 4h44m, 10h44m, 22h44m and 46h44m after the open, then expires:
// past cashypro's ~17 h and mpurse's ~2 h retry schedules, so a provider
// that is still retrying gets its own chance first.
type Schedule struct {
	Delays []time.Duration
	// Grace is how long to wait after asking the provider to resend a
	// callback before synthesizing the event from the query (default 2m).
	Grace time.Duration
	// ErrorBase is the first retry delay after a failed poll; it doubles per
	// consecutive failure (30s, 1m, 2m, 4m, …) and never exceeds the current
	// step's own delay, so an error never postpones a poll beyond where the
	// schedule had it. Failures do not consume steps.
	ErrorBase time.Duration
}

// Total is the sum of the delays: how long a watch is chased when every poll answers.
func (s Schedule) Total() time.Duration {
	var t time.Duration
	for _, d := range s.Delays {
		t += d
	}
	return t
}

// errorDeadline bounds a watch whose provider keeps failing: twice the
// schedule's span after the open (≈ 93 h by default), it expires as
// provider_error rather than retrying forever.
func (s Schedule) errorDeadline(w *Watch) time.Time { return w.OpenedAt.Add(2 * s.Total()) }

// capDue keeps a due time at or before the order's expires_at.
func capDue(w *Watch, due time.Time) time.Time {
	if !w.ExpiresAt.IsZero() && w.ExpiresAt.Before(due) {
		return w.ExpiresAt
	}
	return due
}

// open sets a new watch's first due time.
func (s Schedule) open(w *Watch) {
	w.Step = 0
	w.DueAt = capDue(w, w.OpenedAt.Add(s.delay(0)))
}

func (s Schedule) delay(step int) time.Duration {
	if len(s.Delays) == 0 {
		return time.Minute
	}
	if step >= len(s.Delays) {
		return s.Delays[len(s.Delays)-1]
	}
	return s.Delays[step]
}

// advance moves w past a poll at now that found nothing terminal. It
// returns the expiry reason when the watch is over, "" otherwise.
func (s Schedule) advance(w *Watch, now time.Time, overReason string) string {
	w.Errors = 0
	w.AwaitingRetrigger = false
	w.Step++
	if !w.ExpiresAt.IsZero() && !now.Before(w.ExpiresAt) {
		return ExpiredExpiresAt
	}
	if w.Step >= len(s.Delays) {
		return overReason
	}
	w.DueAt = capDue(w, now.Add(s.delay(w.Step)))
	return ""
}

// retry reschedules w after a failed poll at now, without consuming a step;
// it returns ExpiredProviderError once the error deadline has passed.
func (s Schedule) retry(w *Watch, now time.Time) string {
	if !now.Before(s.errorDeadline(w)) {
		return ExpiredProviderError
	}
	w.Errors++
	d := s.ErrorBase
	if d <= 0 {
		d = 30 * time.Second
	}
	for i := 1; i < w.Errors && d < s.delay(w.Step); i++ {
		d *= 2
	}
	d = min(d, s.delay(w.Step))
	w.DueAt = now.Add(d)
	return ""
}

// awaitRetrigger marks that the provider was asked at now to resend the
// callback; the next check is at the end of the grace period.
func (s Schedule) awaitRetrigger(w *Watch, now time.Time) {
	w.Errors = 0
	w.RetriggeredAt = now
	w.AwaitingRetrigger = true
	g := s.Grace
	if g <= 0 {
		g = 2 * time.Minute
	}
	w.DueAt = now.Add(g)
}
