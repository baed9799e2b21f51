package reconcile

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// lane is one account's share of a replica's polling: its token bucket,
// the poll slots handed out from it, and its polls in flight. Lanes are
// what keeps one account's backlog from delaying another account's polls
// (docs/reconciler.md, "Fairness"):
//
//   - A due watch over its account's rate gets a slot — the time of a
//     token reserved for it — and is put back until then (NakWithDelay),
//     once. Coming back at its slot it polls without another token. So
//     20,000 due watches at 5/s are each delivered twice, spread over
//     67 min, instead of being put back for a second and redelivered over
//     and over, which kept the shared consumer's redelivery queue
//     thousands deep and every other account's due watch at its tail.
//   - Waiting for a token (at most MaxRateWait) and the query itself run
//     outside the replica's Workers: those only triage deliveries (decode,
//     dedupe check, slot), so a slow or throttled account cannot hold them.
//   - At most Workers polls per account at once: an account whose provider
//     hangs fills its own lane, and its due watches are put back (keeping
//     their slots) until a poll ends, while the other lanes poll on.
type lane struct {
	limiter *rate.Limiter

	mu       sync.Mutex
	slots    map[string]time.Time // watch id → its reserved token's time
	adds     int
	inflight int
}

// slotForget is how long past its time an unused slot is kept: a watch
// that went to another replica, or was closed meanwhile, never comes back
// for it here.
const slotForget = 10 * time.Minute

// laneBusyDelay is how long a due watch whose account has Workers polls in
// flight is put back for: long enough that a hung provider (polls of up to
// PollTimeout, 20 s) costs a few redeliveries per watch, not a stream of them.
const laneBusyDelay = 2 * time.Second

// triageBuffer is how many messages the schedule consumer pulls ahead for
// workers Workers: triage takes a millisecond or so per message, so a flood
// of due watches is worked through in batches rather than a round trip per
// Workers messages. Each waits at most a few batches' triage, far below
// the consumer's AckWait (1 min).
func triageBuffer(workers int) int { return max(16*workers, 64) }

func newLane(l *rate.Limiter) *lane { return &lane{limiter: l, slots: map[string]time.Time{}} }

// slot returns when watch id may poll: the slot reserved for it earlier,
// or a new one from the bucket.
func (l *lane) slot(id string, now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at, ok := l.slots[id]; ok {
		return at
	}
	if l.adds++; l.adds%1024 == 0 {
		for k, at := range l.slots {
			if now.Sub(at) > slotForget {
				delete(l.slots, k)
			}
		}
	}
	at := now.Add(l.limiter.ReserveN(now, 1).DelayFrom(now))
	l.slots[id] = at
	return at
}

// reserved returns watch id's slot, if it has one.
func (l *lane) reserved(id string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.slots[id]
	return at, ok
}

// forget drops watch id's slot: it polled, closed or expired.
func (l *lane) forget(id string) {
	l.mu.Lock()
	delete(l.slots, id)
	l.mu.Unlock()
}

// acquire takes a place for one poll when fewer than limit run; done
// gives it back.
func (l *lane) acquire(limit int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight >= limit {
		return false
	}
	l.inflight++
	return true
}

func (l *lane) done() {
	l.mu.Lock()
	l.inflight--
	l.mu.Unlock()
}
