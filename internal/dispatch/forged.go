package dispatch

import (
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/pkg/events"
)

// Forged events. Every event message a producer stores is signed (pkg/events
// "Signed events on the bus"); the dispatcher signs deliveries with each
// subscriber's webhook secret, so it must not sign what no producer made.
// Before anything else is decided about a message (filter, ordering,
// delivery), it is verified under event_signing.public_keys, and its
// CloudEvent id must be the signed webhook-id. A message that fails is:
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

// verify returns the signed event id of m, or an error wrapping
// events.ErrUnsigned or events.ErrSignature. With signing disabled it
// returns "" and nil.
func (d *Dispatcher) verify(m jetstream.Msg) (string, error) {
	if d.keys == nil {
		return "", nil
	}
	return events.Verify(d.keys, m.Headers(), m.Data())
}

// refuseForged terminates a message that did not verify, counts it for the
// subscriber and logs it once per message.
func (w *worker) refuseForged(m jetstream.Msg, meta *jetstream.MsgMetadata, err error) {
	_ = m.TermWithReason("forged: signature does not verify")
	w.d.m.forged.WithLabelValues(w.sub.ID).Inc()
	if !w.d.forgedLog.first(meta.Stream, meta.Sequence.Stream) {
		return
	}
	reason := "bad_signature"
	switch {
	case errors.Is(err, events.ErrUnsigned):
		reason = "unsigned"
	case errors.Is(err, errIDMismatch):
		reason = "id_mismatch"
	}
	w.d.log.Error("forged event refused: not signed by a configured event_signing key; delivered to no subscriber",
		"subject", m.Subject(), "stream", meta.Stream, "stream_seq", meta.Sequence.Stream, "reason", reason, "err", err)
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
