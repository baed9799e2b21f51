package dispatch

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/pkg/events"
)

// Forged events. Every event message a producer stores is signed (pkg/events
// "Signed events on the bus"); the dispatcher signs deliveries with each
// subscriber's webhook secret, so it must not sign what no producer made.
// Before anything else is decided about a message (filter, ordering,
// delivery), it is verified under event_signing.public_keys, its
// CloudEvent id must be the signed webhook-id, and a message read from
// PAYHOOK_EVENTS must be on the subject its signed body says
// (events.SubjectOf): the signature does not cover the subject, and the
// subscriber filters read it, so a genuine jpglo success copied onto
// payhook.events.mpurse.payin.failed would otherwise reach a subscriber
// filtered to mpurse failures. (A replayed copy is on payhook.replay.{id};
// its filter is matched on the body's subject, the one it had when it
// matched the subscriber before.) A message that fails is:
//   - never delivered: its copy is terminated on this subscriber's consumer
//     (Term, so JetStream does not redeliver it), and every other
//     subscriber's consumer refuses its own copy the same way;
//   - counted in payhook_dispatch_forged_total{subscriber}, once per
//     subscriber's copy (a forged message on payhook.events.> seen by three
//     subscribers counts 3; the alert fires on any increase);
//   - logged once per message by this replica, with its subject, stream and
//     stream sequence (forgedLog remembers the last forgedLogSize logged).
//
// The check has no timestamp tolerance: events stay 90 days on
// PAYHOOK_EVENTS and are delivered late (a new subscriber with start: all,
// a consumer recreated, a DLQ replay), so an expiring signature would refuse
// genuine events; a replayed genuine event is the same event (same id).

// errIDMismatch: a genuine signature moved onto another event's body.
var errIDMismatch = fmt.Errorf("%w: webhook-id does not match the event id", events.ErrSignature)

// errSubjectMismatch: a genuine event stored on another event's subject.
var errSubjectMismatch = events.ErrSubjectMismatch

// signedHeaders are the headers that carry an event's signature from
// PAYHOOK_EVENTS through the DLQ to PAYHOOK_REPLAY.
var signedHeaders = []string{events.HeaderID, events.HeaderTimestamp, events.HeaderSignature}

// copySigned copies the signature headers of from onto to.
func copySigned(to, from nats.Header) {
	for _, k := range signedHeaders {
		if v := from.Get(k); v != "" {
			to.Set(k, v)
		}
	}
}

// verify returns the signed event id of a message (headers h, body data), or an error wrapping
// events.ErrUnsigned or events.ErrSignature. With signing disabled it
// returns "" and nil.
func (d *Dispatcher) verify(h nats.Header, data []byte) (string, error) {
	if d.keys == nil {
		return "", nil
	}
	key := verifiedKey(h, data)
	if id, ok := d.verified.get(key); ok {
		return id, nil
	}
	// The subscribers' consumers get their copies of a new event at about
	// the same time: one verifies, the others wait for its result.
	if wait := d.verified.begin(key); wait != nil {
		<-wait
		if id, ok := d.verified.get(key); ok {
			return id, nil
		}
		// It did not verify (failures are not cached), or its slot was
		// taken meanwhile: this copy is verified on its own.
		return verifyEvent(d.keys, h, data)
	}
	// Released however the verification ends, so no waiter is left behind.
	defer d.verified.end(key)
	id, err := verifyEvent(d.keys, h, data)
	if err == nil {
		d.verified.put(key, id)
	}
	return id, err
}

// verifyEvent is events.Verify, through which a test counts verifications.
var verifyEvent = events.Verify

// verifiedCache remembers recently verified messages. Every subscriber's
// consumer gets its own copy of each event, and an ed25519 verification
// (~60 µs on the benchmark box, docs/benchmarks.md) per copy would be
// 3 verifications per event with 3 subscribers; with the cache it is one,
// plus a SHA-256 of the message per copy (~2 µs for a 1.3 KB event). The
// key is the SHA-256 of everything Verify reads (the three headers and the
// body, length-prefixed), so a hit is a message byte-for-byte identical to
// one that verified under the same keys, which never change while the
// process runs. Only successes are cached; slots are overwritten freely.
type verifiedCache struct {
	slots [verifiedCacheSlots]verifiedSlot
	// busy are the keys being verified, each with a channel closed when
	// its verification ended. The subscribers' consumers often get their
	// copies of a new event together: a copy that misses the cache while
	// another copy is being verified waits for that result instead of
	// verifying again (with 3 subscribers at ~300 events/s, ~1 verification
	// per event instead of ~1.5).
	busyMu sync.Mutex
	busy   map[[sha256.Size]byte]chan struct{}
}

const verifiedCacheSlots = 1024

type verifiedSlot struct {
	mu  sync.Mutex
	key [sha256.Size]byte
	id  string
}

// keyHashers are SHA-256 states with scratch for the headers, reused
// across messages.
var keyHashers = sync.Pool{New: func() any { return &keyHasher{h: sha256.New()} }}

// maxPooledHeaderBytes is the largest header scratch kept for reuse; genuine
// signature headers take ~150 bytes.
const maxPooledHeaderBytes = 4 << 10

type keyHasher struct {
	h   hash.Hash
	buf []byte
}

func verifiedKey(h nats.Header, data []byte) [sha256.Size]byte {
	kh := keyHashers.Get().(*keyHasher)
	b := kh.buf[:0]
	for _, k := range signedHeaders {
		v := h.Get(k)
		b = binary.BigEndian.AppendUint64(b, uint64(len(v)))
		b = append(b, v...)
	}
	kh.buf = b
	kh.h.Reset()
	kh.h.Write(b)
	kh.h.Write(data)
	var key [sha256.Size]byte
	kh.h.Sum(key[:0])
	if cap(kh.buf) > maxPooledHeaderBytes {
		// The headers are the sender's: one oversized message must not
		// leave a large buffer in the pool for good.
		kh.buf = nil
	}
	keyHashers.Put(kh)
	return key
}

// begin claims the verification of key: nil when the caller is to verify
// (and then call end), else a channel closed when the claimant is done.
func (c *verifiedCache) begin(key [sha256.Size]byte) <-chan struct{} {
	c.busyMu.Lock()
	defer c.busyMu.Unlock()
	if ch, ok := c.busy[key]; ok {
		return ch
	}
	if c.busy == nil {
		c.busy = map[[sha256.Size]byte]chan struct{}{}
	}
	c.busy[key] = make(chan struct{})
	return nil
}

// end releases a key claimed by begin, after its result was put.
func (c *verifiedCache) end(key [sha256.Size]byte) {
	c.busyMu.Lock()
	defer c.busyMu.Unlock()
	close(c.busy[key])
	delete(c.busy, key)
}

func (c *verifiedCache) slot(key [sha256.Size]byte) *verifiedSlot {
	return &c.slots[binary.BigEndian.Uint64(key[:8])%verifiedCacheSlots]
}

func (c *verifiedCache) get(key [sha256.Size]byte) (string, bool) {
	s := c.slot(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.id == "" || s.key != key {
		return "", false
	}
	return s.id, true
}

func (c *verifiedCache) put(key [sha256.Size]byte, id string) {
	s := c.slot(key)
	s.mu.Lock()
	s.key, s.id = key, id
	s.mu.Unlock()
}

// refuseForged terminates a message that did not verify, counts it for the
// subscriber and logs it once per message.
func (w *worker) refuseForged(m jetstream.Msg, meta *jetstream.MsgMetadata, err error) {
	_ = m.TermWithReason("forged: " + forgedReason(err))
	w.d.m.forged.WithLabelValues(w.id).Inc()
	if !w.d.forgedLog.first(meta.Stream, meta.Sequence.Stream) {
		return
	}
	w.d.log.Error("forged event refused: not signed by a configured event_signing key, or not on its own subject; delivered to no subscriber",
		"subject", m.Subject(), "stream", meta.Stream, "stream_seq", meta.Sequence.Stream, "reason", forgedReason(err), "err", err)
}

// forgedReason is the log's reason for a refusal.
func forgedReason(err error) string {
	switch {
	case errors.Is(err, events.ErrUnsigned):
		return "unsigned"
	case errors.Is(err, errIDMismatch):
		return "id_mismatch"
	case errors.Is(err, errSubjectMismatch):
		return "subject_mismatch"
	}
	return "bad_signature"
}

// forgedLogSize bounds forgedLog: a message's copies reach the subscribers'
// consumers within moments of each other, so the last 4096 forged
// messages are plenty to log each once (64 KiB at most).
const forgedLogSize = 4096

// forgedLog remembers which forged messages (stream, sequence) were logged.
type forgedLog struct {
	mu   sync.Mutex
	seen map[forgedKey]struct{}
	ring [forgedLogSize]forgedKey
	next int
}

type forgedKey struct {
	stream string
	seq    uint64
}

// first reports whether (stream, seq) is seen for the first time, and
// remembers it.
func (l *forgedLog) first(stream string, seq uint64) bool {
	k := forgedKey{stream, seq}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[forgedKey]struct{}{}
	}
	if _, ok := l.seen[k]; ok {
		return false
	}
	if old := l.ring[l.next]; old != (forgedKey{}) {
		delete(l.seen, old)
	}
	l.ring[l.next] = k
	l.next = (l.next + 1) % forgedLogSize
	l.seen[k] = struct{}{}
	return true
}
