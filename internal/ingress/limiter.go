package ingress

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiterMaxAddresses bounds a keyed limiter's memory: a bucket is ~150
// bytes with its map entry (~200 with an event id as its key), so 65,536 of
// them are ~10-13 MiB. Past it, new keys share one overflow bucket (they
// are limited together, more strictly, never less).
const limiterMaxAddresses = 1 << 16

// keyedLimiter is a token bucket per key.
//
// A bucket that has been idle long enough to refill (burst/rate) is the
// same as a new one, so the sweep that runs at most once a minute drops
// those: memory follows the keys charged in the last burst/rate seconds,
// capped at limiterMaxAddresses. A new key that finds the map full goes to
// the overflow bucket at once, without a sweep of its own: a sweep walks
// every bucket under the mutex, and one per new key would serialise every
// caller behind it exactly when the limiter is busiest.
type keyedLimiter[K comparable] struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	buckets   map[K]*rate.Limiter
	overflow  *rate.Limiter
	lastSweep time.Time
}

func newKeyedLimiter[K comparable](limit rate.Limit, burst int) *keyedLimiter[K] {
	return &keyedLimiter[K]{
		limit: limit, burst: burst,
		buckets:  map[K]*rate.Limiter{},
		overflow: rate.NewLimiter(limit, burst),
	}
}

// allow spends one token of key's bucket, reporting whether there was one.
func (l *keyedLimiter[K]) allow(key K, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= time.Minute {
		l.sweep(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= limiterMaxAddresses {
			b = l.overflow
		} else {
			b = rate.NewLimiter(l.limit, l.burst)
			l.buckets[key] = b
		}
	}
	return b.AllowN(now, 1)
}

// sweep drops the buckets that are full again.
func (l *keyedLimiter[K]) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
}

func (l *keyedLimiter[K]) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// rejectLimiter is a token bucket per client address, spent only by
// rejected requests (ingress.rejections_per_second, rejections_burst).
// IPv4 addresses count one by one, IPv6 ones by their /64: one host
// usually has a whole /64 to pick source addresses from.
type rejectLimiter struct {
	*keyedLimiter[netip.Prefix]
}

func newRejectLimiter(perSecond float64, burst int) *rejectLimiter {
	if perSecond <= 0 {
		perSecond = 10 // config.Load's default
	}
	if burst <= 0 {
		burst = 100
	}
	return &rejectLimiter{newKeyedLimiter[netip.Prefix](rate.Limit(perSecond), burst)}
}

// allow spends one token of addr's bucket, reporting whether there was one.
func (l *rejectLimiter) allow(addr string, now time.Time) bool {
	return l.keyedLimiter.allow(limiterKey(addr), now)
}

// Repeat records: a callback that verified but stored nothing new
// (duplicate, stale, conflict) has its raw record written only while its
// event id's bucket has a token: replayBurst at once, then one per
// replayEvery. Providers resend an event a handful of times over hours
// (cashypro at most 11 times in ~17 hours, mpurse 5), and the reconciler's
// re-triggers add a few more: far below it. One captured
// callback replayed at wire speed gets replayBurst records, then one a
// minute (~7 MiB a day at 5 KiB a record), wherever it is sent from.
const (
	replayBurst = 20
	replayEvery = time.Minute
)

// newReplayLimiter is the limiter of repeat records, keyed by event id.
func newReplayLimiter() *keyedLimiter[string] {
	return newKeyedLimiter[string](rate.Every(replayEvery), replayBurst)
}

// limiterKey is the bucket of an address: itself for IPv4, its /64 for
// IPv6, and one shared bucket for anything that does not parse.
func limiterKey(addr string) netip.Prefix {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// Claimed order ids: a refused request that did not verify names the order
// its bytes claim (RawRecord.ClaimedOrderID, which the trace index files it
// under) only while both of its buckets have a token:
//   - its (account, claimed order) bucket: claimBurst at once, then one per
//     claimEvery, as the repeats of one event. A provider sends one order's
//     callback a handful of times (at most 11 for cashypro), so a broken key
//     leaves every one of them listed; a flood of forged callbacks claiming
//     one order lists 20 of them, then one a minute.
//   - its account's bucket: claimAccountBurst at once, then one per
//     claimAccountEvery, for forgeries that claim a new order each time from
//     many addresses (each address is already held to
//     ingress.rejections_per_second). A broken key for an hour at a busy
//     account (~2,000 callbacks) stays within it (2,000 + 900 in the first
//     hour); a flood at the full rate is 21,600 entries a day (~5 MiB of
//     PAYHOOK_TRACE at ~250 bytes each), ~150 MiB over the 30 days of
//     nats.trace_max_age: a small part of nats.trace_max_bytes (2 GiB).
//
// Past either, the refusal is recorded on PAYHOOK_RAW_REJECTED as every
// other, naming no order.
const (
	claimBurst        = replayBurst
	claimEvery        = replayEvery
	claimAccountBurst = 2000
	claimAccountEvery = 4 * time.Second
)

type claimKey struct{ account, order string }

// claimLimiter holds the claim buckets.
type claimLimiter struct {
	orders   *keyedLimiter[claimKey]
	accounts *keyedLimiter[string]
}

func newClaimLimiter() *claimLimiter {
	return &claimLimiter{
		orders:   newKeyedLimiter[claimKey](rate.Every(claimEvery), claimBurst),
		accounts: newKeyedLimiter[string](rate.Every(claimAccountEvery), claimAccountBurst),
	}
}

// allow spends a token of the claim's order bucket and, when it had one, of
// its account's bucket, reporting whether both had one.
func (l *claimLimiter) allow(account, order string, now time.Time) bool {
	return l.orders.allow(claimKey{account, order}, now) && l.accounts.allow(account, now)
}
