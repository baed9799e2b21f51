package dispatch

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// BackoffFactor is the growth of the retry ceiling per attempt.
//
// The delay before attempt n+1 (n = the attempt that just failed, 1-based) is
// drawn uniformly ("full jitter") from [initial, ceil(n)] where
//
//	ceil(n) = min(max, initial × 4^(n-1))
//
// With the defaults (max_attempts 15, backoff_initial 5s, backoff_max 10h)
// there are 14 retries whose ceilings are
//
//	5s, 20s, 80s, 5m20s, 21m20s, 1h25m20s, 5h41m20s, then 10h × 7
//
// which sum to 279,305 s ≈ 77.6 h ≈ 3.2 days: the longest an event can take
// to be dead-lettered, close to Stripe's "up to three days". The expected
// total is the sum of the midpoints (initial+ceil)/2 ≈ 139,688 s ≈ 38.8 h
// ≈ 1.6 days; the theoretical minimum (every draw at the floor) is 14 × 5 s.
// The ceiling reaches the 10 h cap at the 8th retry, so a subscriber that is
// down for a day still gets several attempts spread across that day.
const BackoffFactor = 4

// Backoff returns the delay before the next attempt after attempt n failed.
// retryAfter, when positive (from the receiver's Retry-After), replaces the
// jittered delay but is clamped to [initial, max] so a receiver can neither
// make us hammer it nor park an event forever.
func Backoff(n int, initial, maxDelay, retryAfter time.Duration) time.Duration {
	if initial <= 0 {
		initial = time.Second
	}
	if maxDelay < initial {
		maxDelay = initial
	}
	if retryAfter > 0 {
		return min(max(retryAfter, initial), maxDelay)
	}
	return initial + jitter(Ceiling(n, initial, maxDelay)-initial)
}

// Ceiling is the upper bound of the delay after attempt n failed:
// min(max, initial × BackoffFactor^(n-1)), computed without overflow.
func Ceiling(n int, initial, maxDelay time.Duration) time.Duration {
	c := initial
	for i := 1; i < n; i++ {
		if c >= maxDelay/BackoffFactor {
			return maxDelay
		}
		c *= BackoffFactor
	}
	return min(c, maxDelay)
}

func jitter(span time.Duration) time.Duration {
	if span <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(span) + 1))
}

// parseRetryAfter reads Retry-After as delta-seconds or an HTTP date; zero
// when absent or unparsable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	// Either form is capped at a year; Backoff clamps further to backoff_max.
	const maxRetryAfter = 365 * 24 * time.Hour
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return min(time.Duration(min(s, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}
