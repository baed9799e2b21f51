package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/payhook/payhook/internal/natsbus"
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

// ErrTooManyWatches refuses a new watch for an account that has
// reconciler.max_watches_per_account open already (POST /v1/watches: 429).
var ErrTooManyWatches = errors.New("the account has as many open watches as reconciler.max_watches_per_account allows")

// Watch counts per account, for max_watches_per_account. The count is
// JetStream's: the subjects of the account's watches on PAYHOOK_RECONCILE
// (stream info with a subject filter, asked for the total only), shared by
// every replica. It is asked again at most every countTTL; the watches a
// replica opens meanwhile are added to its copy. So replicas can overshoot
// the cap by what the others opened in the last second, and watches stored
// before the account was part of their subject are not counted.
const countTTL = time.Second

type openCount struct {
	n  int
	at time.Time
}

// admit returns nil when w may be opened: its account is under the cap,
// or w is open already (the announcement stays idempotent).
func (r *Reconciler) admit(ctx context.Context, w *Watch) error {
	limit := r.cfg.Reconciler.MaxWatchesPerAccount
	if limit <= 0 {
		return nil
	}
	n, err := r.openWatches(ctx, w.Provider, w.Account)
	if err != nil {
		return err
	}
	if n < limit {
		return nil
	}
	q, err := r.js.Stream(ctx, StreamReconcile)
	if err != nil {
		return fmt.Errorf("%w: %v", natsbus.ErrUnavailable, err)
	}
	if _, err := q.GetLastMsgForSubject(ctx, w.Subject()); err == nil {
		return nil // open already: putWatch says so
	}
	return ErrTooManyWatches
}

// openWatches is account's count of open watches (see countTTL).
func (r *Reconciler) openWatches(ctx context.Context, provider, account string) (int, error) {
	now := r.now()
	r.countMu.Lock()
	c, ok := r.counts[account]
	r.countMu.Unlock()
	if ok && now.Sub(c.at) < countTTL && now.Sub(c.at) >= 0 {
		return c.n, nil
	}
	// The offset past the end makes the server send the total alone, not
	// the subjects (10,000 of them would not fit a message).
	req, _ := json.Marshal(map[string]any{"subjects_filter": accountSubjects(provider, account), "offset": math.MaxInt32})
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	msg, err := r.js.Conn().RequestWithContext(rctx, "$JS.API.STREAM.INFO."+StreamReconcile, req)
	if err != nil {
		return 0, fmt.Errorf("%w: count watches: %v", natsbus.ErrUnavailable, err)
	}
	var resp struct {
		Total int `json:"total"`
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil || resp.Error != nil {
		desc := "unreadable answer"
		if resp.Error != nil {
			desc = resp.Error.Description
		}
		return 0, fmt.Errorf("%w: count watches: %s", natsbus.ErrUnavailable, desc)
	}
	r.countMu.Lock()
	r.counts[account] = &openCount{n: resp.Total, at: now}
	r.countMu.Unlock()
	return resp.Total, nil
}

// opened adds a watch this replica opened to its copy of the account's count.
func (r *Reconciler) opened(account string) {
	r.countMu.Lock()
	if c, ok := r.counts[account]; ok {
		c.n++
	}
	r.countMu.Unlock()
}
