// Package retrigger remembers, for a short while, which orders the
// reconciler asked a provider to call back again (mrnpay's callback=true),
// so that ingress can label the resent callback's event origin "retrigger"
// (CONTRACT.md) instead of "callback". The marks live in a NATS key-value
// bucket shared by every replica; losing one only mislabels an origin.
package retrigger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Bucket is the key-value bucket holding the marks.
const Bucket = "payhook_retrigger"

// DefaultTTL is how long a mark lives: a resend comes within seconds or
// minutes; an hour also covers the provider's own retries of the resend.
const DefaultTTL = time.Hour

// Providers lists the providers whose query can ask for the callback again.
var Providers = map[string]bool{providers.Mrnpay: true}

// Marks is the shared set of re-triggered orders.
type Marks struct {
	kv  jetstream.KeyValue
	ttl time.Duration

	// The local mirror (Mirror): key → when it was marked. Marked reads it
	// instead of asking NATS while the mirror is live.
	mu     sync.RWMutex
	live   bool
	marked map[string]time.Time
}

// Open creates (or updates) the bucket.
func Open(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (*Marks, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "orders whose callback the reconciler asked to be resent",
		TTL: ttl, History: 1, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, err
	}
	return &Marks{kv: kv, ttl: ttl}, nil
}

// Mirror keeps a local copy of the marks, fed by a watch of the bucket,
// until ctx ends: ingress asks Marked for every mrnpay callback, and a
// lookup in memory spares NATS a request per callback (a KV Get was ~2 % of
// ingress CPU and a round trip on the callback's path). Until the watch has
// delivered the bucket's current contents, and after it ends, Marked asks
// NATS as before. The mirror lags the bucket by the watch's delivery time
// (well under a millisecond on one host), while a resend follows a mark by
// at least the provider's own round trip; a mark missed anyway only
// mislabels one event's origin. Marks expire by age (the bucket's TTL), as
// the bucket's own copies do, since expiry sends no watch update.
func (m *Marks) Mirror(ctx context.Context) error {
	w, err := m.kv.WatchAll(ctx, jetstream.MetaOnly())
	if err != nil {
		return err
	}
	go func() {
		defer func() {
			_ = w.Stop()
			m.mu.Lock()
			m.live, m.marked = false, nil
			m.mu.Unlock()
		}()
		marked := map[string]time.Time{}
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				m.mu.Lock()
				switch {
				case e == nil: // the bucket's current contents are in
					m.marked, m.live = marked, true
				case e.Operation() == jetstream.KeyValuePut:
					marked[e.Key()] = e.Created()
				default: // deleted or purged
					delete(marked, e.Key())
				}
				m.sweep(marked)
				m.mu.Unlock()
			}
		}
	}()
	return nil
}

// sweep drops marks older than the TTL when the map has grown: expiry in
// the bucket sends no update. Called with m.mu held.
func (m *Marks) sweep(marked map[string]time.Time) {
	if len(marked) < 1024 || len(marked)%1024 != 0 {
		return
	}
	cutoff := time.Now().Add(-m.ttl)
	for k, t := range marked {
		if t.Before(cutoff) {
			delete(marked, k)
		}
	}
}

func key(provider, account string, kind events.Kind, order string) string {
	h := sha256.New()
	for _, p := range []string{provider, account, string(kind), order} {
		h.Write([]byte(strconv.Itoa(len(p)) + ":" + p + "|"))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Mark records that the order's callback was asked for again.
func (m *Marks) Mark(ctx context.Context, provider, account string, kind events.Kind, order string) error {
	_, err := m.kv.Put(ctx, key(provider, account, kind, order), []byte(time.Now().UTC().Format(time.RFC3339)))
	return err
}

// Unmark forgets the mark, when the provider's answer means it will not
// resend (not succeeded, or the query failed), so that a later genuine
// callback is not labelled a retrigger.
func (m *Marks) Unmark(ctx context.Context, provider, account string, kind events.Kind, order string) error {
	return m.kv.Delete(ctx, key(provider, account, kind, order))
}

// Marked reports whether the event's order was re-triggered recently. Any
// error (bucket unreachable) answers false: the origin then stays "callback".
func (m *Marks) Marked(ctx context.Context, e *events.Event) bool {
	if m == nil || !Providers[e.Provider] {
		return false
	}
	k := key(e.Provider, e.Account, e.Kind, e.MerchantOrderID)
	m.mu.RLock()
	live := m.live
	at, ok := m.marked[k]
	m.mu.RUnlock()
	if live {
		return ok && time.Since(at) < m.ttl
	}
	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err := m.kv.Get(ctx, k)
	return err == nil
}
