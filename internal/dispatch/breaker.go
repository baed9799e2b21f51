package dispatch

import (
	"sync"
	"time"
)

// BreakerState is a circuit breaker state; its value is the metric value.
type BreakerState int

// Breaker states.
const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

func (s BreakerState) String() string {
	switch s {
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "closed"
}

// breaker backs a failing subscriber off as a whole. After threshold
// consecutive failures it opens for a cool-down (first coolMin, doubling on
// every failed probe up to coolMax: 5s, 10s, 20s, … 5m by default); when the
// cool-down is over one probe delivery is let through (half-open); success
// closes it, failure re-opens it with the longer cool-down.
//
// It is not github.com/sony/gobreaker: that breaker's open state lasts a
// fixed Timeout (no doubling per failed probe), it does not say when the
// open state ends (the fetch loop sleeps exactly that long instead of
// polling), and a half-open probe taken but not sent (shutdown, pause)
// cannot be given back without counting as a success or failure.
type breaker struct {
	mu        sync.Mutex
	threshold int
	coolMin   time.Duration
	coolMax   time.Duration
	now       func() time.Time
	onChange  func(BreakerState)

	state    BreakerState
	failures int
	cool     time.Duration
	until    time.Time
	probing  bool
}

func newBreaker(threshold int, coolMin, coolMax time.Duration, onChange func(BreakerState)) *breaker {
	if onChange == nil {
		onChange = func(BreakerState) {}
	}
	return &breaker{threshold: max(threshold, 1), coolMin: coolMin, coolMax: max(coolMax, coolMin), now: time.Now, onChange: onChange}
}

// allow reports whether a delivery may be sent now; when not, wait says how
// long until asking again is useful.
func (b *breaker) allow() (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return true, 0
	case BreakerOpen:
		if d := b.until.Sub(b.now()); d > 0 {
			return false, d
		}
		b.set(BreakerHalfOpen)
		fallthrough
	default: // half-open: exactly one probe at a time
		if b.probing {
			return false, 50 * time.Millisecond
		}
		b.probing = true
		return true, 0
	}
}

// blockedFor is how long fetching should pause (0 when closed or half-open).
func (b *breaker) blockedFor() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != BreakerOpen {
		return 0
	}
	return max(b.until.Sub(b.now()), 0)
}

// result records the outcome of a delivery that allow let through.
func (b *breaker) result(success bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	wasProbe := b.probing
	b.probing = false
	if success {
		b.failures = 0
		b.cool = 0
		if b.state != BreakerClosed {
			b.set(BreakerClosed)
		}
		return
	}
	b.failures++
	if b.state == BreakerHalfOpen && wasProbe || b.state == BreakerClosed && b.failures >= b.threshold {
		if b.cool == 0 {
			b.cool = b.coolMin
		} else {
			b.cool = min(b.cool*2, b.coolMax)
		}
		b.until = b.now().Add(b.cool)
		b.set(BreakerOpen)
	}
}

// cancelProbe gives back a probe slot that was not used.
func (b *breaker) cancelProbe() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

func (b *breaker) current() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

func (b *breaker) set(s BreakerState) {
	b.state = s
	b.onChange(s)
}
