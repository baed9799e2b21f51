// Package retrigger remembers, for a short while, which orders the
// reconciler asked a provider to call back again (a providers.Retriggerer),
// so that ingress can label the resent callback's event origin "retrigger"
// (docs/interfaces.md) instead of "callback". The marks live in a NATS key-value
// bucket shared by every replica; losing one only mislabels an origin.
package retrigger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
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

// Marks is the shared set of re-triggered orders.
type Marks struct {
	kv    jetstream.KeyValue
	provs *providers.Set
}

// Open creates (or updates) the bucket. provs tells which providers resend
// which callbacks when asked (their providers.Retriggerer role).
func Open(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int, provs *providers.Set) (*Marks, error) {
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
	return &Marks{kv: kv, provs: provs}, nil
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

// Applies reports whether Marked would look e up at all: only what the
// provider resends (without a lookup, for a caller that wants to run the
// lookup beside other work).
func (m *Marks) Applies(e *events.Event) bool {
	if m == nil {
		return false
	}
	rt, ok := providers.Role[providers.Retriggerer](m.provs, e.Provider)
	return ok && rt.Resends(e.Kind, e.Status)
}

// Marked reports whether the event's order was re-triggered recently. Any
// error (bucket unreachable) answers false: the origin then stays "callback".
//
// Only what the provider resends is looked up (mrnpay: successes only,
// providers.Retriggerer.Resends), and the reconciler unmarks an order whose
// answer was anything else. The lookup is
// a KV Get, read from the stream after the reconciler's acknowledged Put, so
// a resend that arrives right after the mark still finds it. (A local mirror
// fed by a watch of the bucket was tried to spare the Get; the provider
// simulator resends within milliseconds of the query, and under load the
// mirror had not yet seen the mark: the event went out as "callback".)
func (m *Marks) Marked(ctx context.Context, e *events.Event) bool {
	if !m.Applies(e) {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err := m.kv.Get(ctx, key(e.Provider, e.Account, e.Kind, e.MerchantOrderID))
	return err == nil
}
