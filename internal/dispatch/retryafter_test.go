package dispatch

import (
	"net/http"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

// A receiver answering 503 with Retry-After gets the next attempt no
// sooner than it asked, clamped to [backoff_initial, backoff_max] (Backoff).
// Without the header the first retry would come after backoff_initial.
func TestRetryAfterOverHTTP(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter func() string
		initial    time.Duration
		max        time.Duration
		lo, hi     time.Duration // the gap between the two attempts
	}{
		{
			name:       "delta-seconds honored",
			retryAfter: func() string { return "2" },
			initial:    20 * time.Millisecond, max: 10 * time.Second,
			lo: 2 * time.Second, hi: 5 * time.Second,
		},
		{
			name: "HTTP date honored",
			// Whole seconds: the date is 2 to 3 s ahead when it is read.
			retryAfter: func() string { return time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat) },
			initial:    20 * time.Millisecond, max: 10 * time.Second,
			lo: 2 * time.Second, hi: 6 * time.Second,
		},
		{
			name:       "clamped down to backoff_max",
			retryAfter: func() string { return "3600" },
			initial:    20 * time.Millisecond, max: 1500 * time.Millisecond,
			lo: 1500 * time.Millisecond, hi: 4 * time.Second,
		},
		{
			name:       "clamped up to backoff_initial",
			retryAfter: func() string { return "1" },
			initial:    2 * time.Second, max: 10 * time.Second,
			lo: 2 * time.Second, hi: 5 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, func(_ *http.Request, _ string, n int) int {
				if n == 0 {
					return http.StatusServiceUnavailable
				}
				return 200
			})
			rc.headers = func(_ string, n int, h http.Header) {
				if n == 0 {
					h.Set("Retry-After", tt.retryAfter())
				}
			}
			s := sub(t, "ra", rc.srv.URL)
			s.BackoffInitial, s.BackoffMax = config.Duration(tt.initial), config.Duration(tt.max)
			h := newHarness(t, s)
			h.start(t)
			h.publish(t, event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o1"))
			testenv.Eventually(t, 15*time.Second, func() bool { return len(rc.delivered()) == 1 }, "not delivered (%d attempts)", rc.count())
			hits := rc.allHits()
			if len(hits) != 2 || hits[0].status != http.StatusServiceUnavailable {
				t.Fatalf("want a 503 then a 200, got %d attempts", len(hits))
			}
			if gap := hits[1].at.Sub(hits[0].at); gap < tt.lo || gap > tt.hi {
				t.Fatalf("second attempt %s after the 503, want within [%s, %s]", gap.Round(10*time.Millisecond), tt.lo, tt.hi)
			}
		})
	}
}
