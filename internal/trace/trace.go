// Package trace is payhook's per-order index and delivery-attempt log: what
// payhookctl trace reads to answer "what happened to order X" in one look.
//
// # The index
//
// Stream PAYHOOK_TRACE holds small JSON entries (Entry, ~200 bytes) on
// subjects payhook.trace.{key}, one subject per key:
//
//   - OrderIndexKey(provider, account, merchant order id): the order's events
//     (written by the Indexer from PAYHOOK_EVENTS) and every delivery
//     attempt of them to every subscriber (written by the dispatcher as it
//     makes them, with time, HTTP status, latency, error and outcome);
//   - EventIndexKey(event id): the raw requests that carried the event (written
//     by the Indexer from PAYHOOK_RAW, whose verified records name their
//     event id but not the order).
//
// The order's key also holds, from PAYHOOK_RAW_REJECTED, the refusals that
// verified before they were refused (too_old, future_timestamp,
// invalid_event: ingress names their order in the record) and, marked
// Unverified, the refusals of requests that did not verify whose bytes
// claim the order (ingress names it as claimed, within bounds).
//
// A key is a hash, so any order id makes a valid subject token, and
// JetStream's per-subject index finds a key's entries without reading the
// rest of the stream: a trace costs one lookup for the order and one per
// event (a few), whatever the stream holds (docs/benchmarks.md measures it
// with 1,000,000 events). Retention is bounded by nats.trace_max_age
// (30 days) and nats.trace_max_bytes (2 GiB), oldest first.
//
// A refusal of bytes that did not verify (bad_signature, malformed, ...)
// is in the index only as what it is: a claim. Ingress reads the order id
// the bytes claim without trusting it, writes it only for a configured
// account and within a bucket per (account, claimed order) and one per
// account, and the entry says Unverified, so a forger can neither fill the
// index nor make a claim look like a fact. A refusal of an unknown
// account, or past the buckets, is only on PAYHOOK_RAW_REJECTED;
// payhookctl reprocess finds it by provider, account and time.
package trace

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/pkg/events"
)

// Stream and subjects of the index.
const (
	Stream   = "PAYHOOK_TRACE"
	Subjects = events.TraceSubjects
)

// Entry types.
const (
	TypeRaw     = "raw"
	TypeEvent   = "event"
	TypeAttempt = "attempt"
)

// Entry is one fact about an order. Type says which fields are set.
type Entry struct {
	Type string    `json:"type"`
	At   time.Time `json:"at"`
	// raw: the record's place, verdict, reason and HTTP status answered.
	RawStream string `json:"raw_stream,omitempty"`
	RawSeq    uint64 `json:"raw_seq,omitempty"`
	Verdict   string `json:"verdict,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Unverified: a refusal filed under the order its unverified bytes
	// claim (Payhook-Claimed-Order-Id), not one that verified as the
	// order's.
	Unverified bool `json:"unverified,omitempty"`
	// event (and raw, attempt: the event concerned).
	EventID     string `json:"event_id,omitempty"`
	Kind        string `json:"kind,omitempty"`
	EventStatus string `json:"event_status,omitempty"`
	Origin      string `json:"origin,omitempty"`
	EventSeq    uint64 `json:"event_seq,omitempty"`
	// attempt.
	Subscriber string  `json:"subscriber,omitempty"`
	Attempt    int     `json:"attempt,omitempty"`
	HTTPStatus int     `json:"http_status,omitempty"`
	LatencyMS  float64 `json:"latency_ms,omitempty"`
	Error      string  `json:"error,omitempty"`
	// Outcome of an attempt: delivered, retry, dead_lettered or paused.
	Outcome string `json:"outcome,omitempty"`
	// Status of a raw request: the HTTP status ingress answered.
	Status int `json:"status,omitempty"`
}

func hashKey(prefix string, parts ...string) string {
	var buf [256]byte
	b := buf[:0]
	for _, p := range parts {
		b = strconv.AppendInt(b, int64(len(p)), 10)
		b = append(b, ':')
		b = append(b, p...)
		b = append(b, '|')
	}
	sum := sha256.Sum256(b)
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return prefix + string(out[:])
}

// OrderIndexKey is the index key of a merchant order: "o" and 32 hex digits of
// SHA-256 over provider, account and merchant order id (every kind).
func OrderIndexKey(provider, account, merchantOrderID string) string {
	return hashKey("o", provider, account, merchantOrderID)
}

// EventIndexKey is the index key of an event's raw requests.
func EventIndexKey(eventID string) string { return hashKey("e", eventID) }

// Subject is payhook.trace.{key}.
func Subject(key string) string { return events.TraceSubject(key) }

// StreamConfig is PAYHOOK_TRACE for cfg: file storage, limits retention
// bounded by age and bytes, oldest discarded.
func StreamConfig(cfg config.NATS) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Stream,
		Subjects:    []string{Subjects},
		Description: "payhook: per-order index (events, raw requests) and delivery-attempt log",
		Storage:     jetstream.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.TraceMaxAge.D(),
		MaxBytes:    cfg.TraceMaxBytes,
		Duplicates:  2 * time.Minute,
	}
}

// Ensure creates or updates PAYHOOK_TRACE.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg config.NATS) error {
	if _, err := js.CreateOrUpdateStream(ctx, StreamConfig(cfg)); err != nil {
		return fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, Stream, err)
	}
	return nil
}

// Message renders e as the message for key; msgID, when set, lets
// JetStream drop a copy written twice (an indexer's redelivery).
func Message(key string, e Entry, msgID string) *nats.Msg {
	return MessageOn(Subject(key), e, msgID)
}

// MessageOn is Message with the key's subject (Subject(key)) worked out
// by the caller, who may reuse it for many entries.
func MessageOn(subject string, e Entry, msgID string) *nats.Msg {
	m := &nats.Msg{Subject: subject, Data: e.marshal(), Header: nats.Header{}}
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	return m
}

// Lookup returns the entries of key, oldest first: one stream info (the
// subject's count, from JetStream's per-subject index) and, when there are
// any, an ordered consumer filtered on the subject.
func Lookup(ctx context.Context, js jetstream.JetStream, key string) ([]Entry, error) {
	s, err := js.Stream(ctx, Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, Stream, err)
	}
	subj := Subject(key)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return nil, fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, Stream, err)
	}
	n := info.State.Subjects[subj]
	if n == 0 {
		return nil, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return nil, fmt.Errorf("%w: trace reader: %v", natsbus.ErrUnavailable, err)
	}
	out := make([]Entry, 0, n)
	for {
		batch, err := c.Fetch(int(min(n, 256)), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("%w: trace fetch: %v", natsbus.ErrUnavailable, err)
		}
		got := 0
		var pending uint64
		for m := range batch.Messages() {
			got++
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
			var e Entry
			if json.Unmarshal(m.Data(), &e) == nil {
				out = append(out, e)
			}
		}
		if got == 0 || pending == 0 {
			return out, nil
		}
	}
}
