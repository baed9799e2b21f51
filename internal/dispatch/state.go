package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/trace"
)

// A subscriber's runtime state is kept in NATS, so every replica and
// payhookctl see the same thing:
//
//   - PauseBucket: one key per paused subscriber, value a PauseRecord. Every
//     replica watches the bucket and stops fetching for a paused subscriber
//     within a fetch wait (1s by default); deleting the key resumes it. The
//     dispatcher writes it on a 410 Gone, an operator with payhookctl
//     subscribers pause (or POST /v1/subscribers/{id}/pause).
//   - StatusBucket: one key per subscriber, value a Status: the breaker and
//     the last failed attempt, written by the replica delivering for the
//     subscriber (the pinned one) at most once per stats interval (5s) and
//     only when something changed.

// StatusBucket is the NATS key-value bucket of subscribers' delivery status.
const StatusBucket = "payhook_dispatch_status"

// Pause reasons written by the dispatcher itself.
const (
	PauseReasonGone = "410 Gone" // the subscriber answered 410 Gone
)

// PauseRecord is the value of a key in PauseBucket.
type PauseRecord struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	// By is who paused: "dispatcher" (410 Gone) or "operator".
	By string `json:"by,omitempty"`
}

// decodePause reads a pause value. A value that is not a PauseRecord (a key
// written by hand with any text) still pauses; its reason is the text.
func decodePause(b []byte) PauseRecord {
	var p PauseRecord
	if json.Unmarshal(b, &p) == nil && p.Reason != "" {
		p.Reason = truncate(p.Reason)
		return p
	}
	txt := truncate(string(b))
	if txt == "" {
		txt = "paused (no reason given)"
	}
	return PauseRecord{Reason: txt, By: "unknown"}
}

// maxPauseReason bounds a pause reason as shown and logged.
const maxPauseReason = 200

func truncate(s string) string {
	if len(s) > maxPauseReason {
		return s[:maxPauseReason]
	}
	return s
}

// Status is the value of a key in StatusBucket.
type Status struct {
	Breaker     string    `json:"breaker"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	LastStatus  int       `json:"last_status,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// PauseKV opens (creating when missing) the pause bucket.
func PauseKV(ctx context.Context, js jetstream.JetStream, cfg config.NATS) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: PauseBucket, Description: "paused subscribers: 410 Gone or an operator", Replicas: max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: kv %s: %v", natsbus.ErrUnavailable, PauseBucket, err)
	}
	return kv, nil
}

// StatusKV opens (creating when missing) the status bucket. Statuses of
// subscribers that no replica delivers for any more age out after a week.
func StatusKV(ctx context.Context, js jetstream.JetStream, cfg config.NATS) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: StatusBucket, Description: "subscribers' breaker and last delivery error",
		Replicas: max(cfg.Replicas, 1), TTL: 7 * 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: kv %s: %v", natsbus.ErrUnavailable, StatusBucket, err)
	}
	return kv, nil
}

// SetPause pauses subscriber id on every replica (by operator, with reason).
func SetPause(ctx context.Context, kv jetstream.KeyValue, id string, p PauseRecord) error {
	if p.At.IsZero() {
		p.At = time.Now().UTC()
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, id, b); err != nil {
		return fmt.Errorf("%w: pause %s: %v", natsbus.ErrUnavailable, id, err)
	}
	return nil
}

// ClearPause resumes subscriber id on every replica.
func ClearPause(ctx context.Context, kv jetstream.KeyValue, id string) error {
	if err := kv.Delete(ctx, id); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: resume %s: %v", natsbus.ErrUnavailable, id, err)
	}
	return nil
}

// Pauses returns every paused subscriber's record.
func Pauses(ctx context.Context, kv jetstream.KeyValue) (map[string]PauseRecord, error) {
	out := map[string]PauseRecord{}
	err := scanKV(ctx, kv, func(e jetstream.KeyValueEntry) { out[e.Key()] = decodePause(e.Value()) })
	return out, err
}

// Statuses returns every subscriber's last written Status.
func Statuses(ctx context.Context, kv jetstream.KeyValue) (map[string]Status, error) {
	out := map[string]Status{}
	err := scanKV(ctx, kv, func(e jetstream.KeyValueEntry) {
		var s Status
		if json.Unmarshal(e.Value(), &s) == nil {
			out[e.Key()] = s
		}
	})
	return out, err
}

// scanKV calls f for each live key of kv, reading the bucket in one pass
// (an ordered consumer), not one request per key.
func scanKV(ctx context.Context, kv jetstream.KeyValue, f func(jetstream.KeyValueEntry)) error {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("%w: kv scan: %v", natsbus.ErrUnavailable, err)
	}
	defer w.Stop()
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return nil // end of the current values
			}
			f(e)
		case <-ctx.Done():
			return fmt.Errorf("%w: kv scan: %v", natsbus.ErrUnavailable, ctx.Err())
		}
	}
}

// noteAttempt records a delivery attempt's result in the worker's status;
// statsLoop writes it to StatusBucket when it changed.
func (w *worker) noteAttempt(res Result) {
	if res.Err == nil {
		return
	}
	w.stMu.Lock()
	defer w.stMu.Unlock()
	w.status.LastError = res.Err.Error()
	w.status.LastStatus = res.Status
	w.status.LastErrorAt = time.Now().UTC()
	w.stDirty = true
}

func (w *worker) noteBreaker(s BreakerState) {
	w.stMu.Lock()
	defer w.stMu.Unlock()
	w.status.Breaker = s.String()
	w.stDirty = true
}

// flushStatus writes the worker's status when it changed since the last write.
func (w *worker) flushStatus(ctx context.Context, kv jetstream.KeyValue) {
	w.stMu.Lock()
	if !w.stDirty {
		w.stMu.Unlock()
		return
	}
	st := w.status
	st.UpdatedAt = time.Now().UTC()
	w.stDirty = false
	w.stMu.Unlock()
	b, _ := json.Marshal(st)
	if _, err := kv.Put(ctx, w.id, b); err != nil {
		w.log.Debug("status not stored", "err", err)
		w.stMu.Lock()
		w.stDirty = true
		w.stMu.Unlock()
	}
}

// attemptOutcome names a disposition in the attempt log.
var attemptOutcome = map[Disposition]string{
	Delivered: OutcomeDelivered, Retry: OutcomeRetry, DeadLettered: OutcomeDeadLettered, Pause: OutcomePaused,
}

// logAttempt writes one delivery attempt to the durable attempt log
// (PAYHOOK_TRACE, under its order's key; package trace) without waiting
// for its acknowledgement: the log is for operators, and a delivery does
// not wait for it to be stored. It is a JetStream publish all the same,
// so that a server falling behind shows: past the client's limit of
// unacknowledged publishes an attempt waits (at most 200 ms) instead of
// its entry being dropped unseen, and an entry that could not be stored
// (the stream missing or full, NATS slow) is lost and counted in
// payhook_dispatch_attempt_log_errors_total.
func (w *worker) logAttempt(it *item, res Result, attempt int, d Disposition) {
	h := it.head
	e := trace.Entry{
		Type: trace.TypeAttempt, At: time.Now().UTC(), EventID: it.id, Kind: string(h.ce.Data.Kind),
		Subscriber: w.id, Attempt: attempt, HTTPStatus: res.Status,
		LatencyMS: float64(res.Duration.Microseconds()) / 1000, Outcome: attemptOutcome[d],
	}
	if res.Err != nil {
		e.Error = res.Err.Error()
	}
	if _, err := w.d.attemptJS.PublishMsgAsync(trace.MessageOn(h.traceSubject, e, "")); err != nil {
		w.d.m.attemptLogErrors.Inc()
		w.log.Debug("attempt not logged", append(it.attrs(), "err", err)...)
	}
}

// attrs are the log attributes that tie a line to its callback: provider,
// account, kind, order id (merchant's, else the provider's) and event id.
func (it *item) attrs() []any {
	h := it.head
	return []any{"event_id", it.id, "provider", h.ce.Data.Provider, "account", h.ce.Data.Account, "kind", string(h.ce.Data.Kind), "order_id", h.order}
}
