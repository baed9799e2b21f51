package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/tracing"
	"github.com/payhook/payhook/pkg/events"
)

// The replay stream belongs to the dispatcher: replayed dead letters are put
// here, one subject per subscriber, and the subscriber's replay consumer
// delivers them with the same retries as live events. Work-queue retention:
// a replay is gone once delivered or dead-lettered again.
const (
	StreamReplay  = "PAYHOOK_REPLAY"
	SubjectReplay = events.ReplaySubjects
)

// Headers the dispatcher adds to its own messages.
const (
	// HeaderReplay counts how often an event was replayed from the DLQ; it
	// makes each dead-lettering's Nats-Msg-Id distinct.
	HeaderReplay = "Payhook-Replay"
)

// Streams are the producers' streams the dispatcher reads or writes: it
// waits for these to exist at start and its readiness checks them, and no
// other (PAYHOOK_RAW_REJECTED, say, exists only once a recent ingress has
// run, and the dispatcher may be upgraded first). PAYHOOK_REPLAY is its own.
var Streams = []string{natsbus.StreamEvents, natsbus.StreamDLQ}

// DLQSubject is payhook.dlq.{subscriber}.
func DLQSubject(sub string) string { return events.DLQSubject(sub) }

// ReplaySubject is payhook.replay.{subscriber}.
func ReplaySubject(sub string) string { return events.ReplaySubject(sub) }

// Attempt is one delivery attempt in a dead letter's history.
type Attempt struct {
	At       time.Time `json:"at"`
	Status   int       `json:"status,omitempty"`
	Error    string    `json:"error,omitempty"`
	Duration float64   `json:"duration"` // seconds
}

// DeadLetter is the JSON record on payhook.dlq.{subscriber}. History holds
// the attempts this dispatcher replica saw (bounded, in memory: JetStream
// cannot change a message's headers on NAK); Attempts is the true count.
type DeadLetter struct {
	Event      json.RawMessage `json:"event"`
	EventID    string          `json:"event_id"`
	Subscriber string          `json:"subscriber"`
	Attempts   int             `json:"attempts"`
	LastError  string          `json:"last_error"`
	LastStatus int             `json:"last_status,omitempty"`
	History    []Attempt       `json:"history"`
	At         time.Time       `json:"dead_lettered_at"`
	Replays    int             `json:"replays,omitempty"`

	// Seq is the record's sequence in PAYHOOK_DLQ (not serialized in the record).
	Seq uint64 `json:"seq,omitempty"`
	// Signed holds the event's signature headers (webhook-id,
	// webhook-timestamp, webhook-signature) and its trace context
	// (traceparent, tracestate, when the producer traced it), carried as
	// NATS headers of the DLQ record and put on the replayed copy, whose body
	// is Event byte for byte: the replay consumer verifies it like a live
	// event, and its delivery continues the producer's trace.
	Signed nats.Header `json:"-"`
}

// dlqMsgID is "<subscriber>:<event id>:dlq", with ":r<n>" after the n-th
// replay so a replayed event that dies again is not swallowed by the
// duplicate window.
func dlqMsgID(sub, eventID string, replays int) string {
	id := sub + ":" + eventID + ":dlq"
	if replays > 0 {
		id += ":r" + strconv.Itoa(replays)
	}
	return id
}

// PublishDeadLetter stores dl on payhook.dlq.{subscriber}, with the
// signature headers of the event's message (signed) as its own headers.
func PublishDeadLetter(ctx context.Context, js jetstream.JetStream, dl DeadLetter, signed nats.Header) error {
	dl.Seq = 0
	b, err := encodeDeadLetter(dl)
	if err != nil {
		return fmt.Errorf("dispatch: encode dead letter: %w", err)
	}
	h := nats.Header{}
	h.Set(HeaderReplay, strconv.Itoa(dl.Replays))
	copyCarried(h, signed)
	_, err = natsbus.Publish(ctx, js, DLQSubject(dl.Subscriber), dlqMsgID(dl.Subscriber, dl.EventID, dl.Replays), b, h)
	return err
}

// encodeDeadLetter is json.Marshal without HTML escaping: Event must stay
// the signed bytes exactly (json.Marshal would rewrite a "<" or "&" inside
// the event, e.g. in a provider field, as \u003c, and the replayed copy
// would no longer verify). Events are compact JSON, which the encoder
// copies unchanged.
func encodeDeadLetter(dl DeadLetter) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(dl); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// EnsureReplayStream creates or updates PAYHOOK_REPLAY.
func EnsureReplayStream(ctx context.Context, js jetstream.JetStream, cfg config.NATS) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: StreamReplay, Subjects: []string{SubjectReplay},
		Description: "dead letters re-queued for delivery by an operator",
		Storage:     jetstream.FileStorage, Replicas: max(cfg.Replicas, 1),
		Retention: jetstream.WorkQueuePolicy, MaxAge: 90 * 24 * time.Hour,
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, StreamReplay, err)
	}
	return nil
}

// ListDLQ returns the dead letters of subscriber sub, oldest first.
func ListDLQ(ctx context.Context, js jetstream.JetStream, sub string) ([]DeadLetter, error) {
	stream, err := js.Stream(ctx, natsbus.StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, natsbus.StreamDLQ, err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(DLQSubject(sub)))
	if err != nil {
		return nil, fmt.Errorf("%w: stream info: %v", natsbus.ErrUnavailable, err)
	}
	if info.State.Subjects[DLQSubject(sub)] == 0 {
		return nil, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{DLQSubject(sub)}})
	if err != nil {
		return nil, fmt.Errorf("%w: dlq reader: %v", natsbus.ErrUnavailable, err)
	}
	var out []DeadLetter
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("%w: dlq fetch: %v", natsbus.ErrUnavailable, err)
		}
		n := 0
		var pending uint64
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			pending = meta.NumPending
			var dl DeadLetter
			if json.Unmarshal(m.Data(), &dl) != nil {
				continue // not ours; leave it
			}
			dl.Seq = meta.Sequence.Stream
			dl.Signed = nats.Header{}
			copyCarried(dl.Signed, m.Headers())
			out = append(out, dl)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: dlq fetch: %v", natsbus.ErrUnavailable, err)
		}
		if n == 0 || pending == 0 {
			return out, nil
		}
	}
}

// ReplayResult answers POST /v1/dlq/replay.
type ReplayResult struct {
	Replayed int      `json:"replayed"`
	Missing  []string `json:"missing"`
}

// Replay re-queues the dead letters of sub (all, or only eventIDs) for
// delivery and removes them from the DLQ. The event body and id are kept, so
// the receiver sees the same webhook-id. Requested ids without a dead letter
// are listed in Missing.
func Replay(ctx context.Context, js jetstream.JetStream, sub string, eventIDs []string) (ReplayResult, error) {
	res := ReplayResult{Missing: []string{}}
	dls, err := ListDLQ(ctx, js, sub)
	if err != nil {
		return res, err
	}
	stream, err := js.Stream(ctx, natsbus.StreamDLQ)
	if err != nil {
		return res, fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, natsbus.StreamDLQ, err)
	}
	found := map[string]bool{}
	for _, dl := range dls {
		if len(eventIDs) > 0 && !slices.Contains(eventIDs, dl.EventID) {
			continue
		}
		if found[dl.EventID] {
			// Several dead letters of one event: one replay is enough.
			_ = stream.DeleteMsg(ctx, dl.Seq)
			continue
		}
		h := nats.Header{}
		h.Set(HeaderReplay, strconv.Itoa(dl.Replays+1))
		copyCarried(h, dl.Signed)
		msgID := sub + ":" + dl.EventID + ":replay:" + strconv.FormatUint(dl.Seq, 10)
		if _, err := natsbus.Publish(ctx, js, ReplaySubject(sub), msgID, dl.Event, h); err != nil {
			return res, err
		}
		// Removed only after the replay is stored: a crash in between
		// replays twice (same webhook-id), never zero times.
		if err := stream.DeleteMsg(ctx, dl.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return res, fmt.Errorf("%w: remove dead letter: %v", natsbus.ErrUnavailable, err)
		}
		found[dl.EventID] = true
		res.Replayed++
	}
	for _, id := range eventIDs {
		if !found[id] && !slices.Contains(res.Missing, id) {
			res.Missing = append(res.Missing, id)
		}
	}
	return res, nil
}

// carriedHeaders are the trace-context headers a dead letter keeps beside
// the signature headers; they are outside what the signature covers.
var carriedHeaders = []string{tracing.HeaderTraceparent, "tracestate"}

// copyCarried copies what a dead letter and its replay carry of the event's
// message: the signature headers and the trace context.
func copyCarried(to, from nats.Header) {
	copySigned(to, from)
	for _, k := range carriedHeaders {
		if v := from.Get(k); v != "" {
			to.Set(k, v)
		}
	}
}
