package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
)

// Watch records: PAYHOOK_RECONCILE holds only open watches (a closed
// watch's message is gone), so what operators ask about a watch — its
// state, polls, next poll, last error, and how it ended — is also kept in
// the key-value bucket WatchBucket, one key per watch id, rewritten at
// every change and kept for reconciler.watch_retention (7 days by default)
// after the last one. Listing every watch is one scan of that bucket (an
// ordered consumer over its stream), never one request per subject.
//
// The record is the operator's view, written after the queue changed; a
// record that could not be written is logged and overwritten by the next
// change. The queue stays the truth for what is polled.

// WatchBucket is the key-value bucket of watch records.
const WatchBucket = "payhook_watches"

// Watch states in a WatchRecord.
const (
	StateOpen      = "open"
	StateClosed    = "closed"    // the order has its terminal event
	StateExpired   = "expired"   // the schedule ran out (or expires_at passed) without one
	StateCancelled = "cancelled" // an operator cancelled it
)

// WatchRecord is the value of a key in WatchBucket.
type WatchRecord struct {
	Watch
	State string `json:"state"`
	// NextPoll is when the watch is due next (open watches only).
	NextPoll time.Time `json:"next_poll,omitzero"`
	// Outcome says how a watch ended: closed by callback, retrigger or
	// poll; the expiry reason; or the operator's cancel reason.
	Outcome  string    `json:"outcome,omitempty"`
	ClosedAt time.Time `json:"closed_at,omitzero"`
}

// ErrWatchNotFound is returned for a watch that is not open (PollNow,
// Cancel) or has no record (GetRecord).
var ErrWatchNotFound = errors.New("watch not found")

// WatchKV opens (creating or updating) the record bucket with retention ttl.
func WatchKV(ctx context.Context, js jetstream.JetStream, cfg config.NATS, ttl time.Duration) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: WatchBucket, Description: "payhook reconciler: every watch's state and outcome, kept after it ends",
		Replicas: max(cfg.Replicas, 1), TTL: ttl,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: kv %s: %v", natsbus.ErrUnavailable, WatchBucket, err)
	}
	return kv, nil
}

// putRecord stores rec under its watch id.
func putRecord(ctx context.Context, kv jetstream.KeyValue, rec WatchRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, rec.ID, b); err != nil {
		return fmt.Errorf("%w: watch record: %v", natsbus.ErrUnavailable, err)
	}
	return nil
}

// kvHandle holds the record bucket for an atomic pointer.
type kvHandle struct{ kv jetstream.KeyValue }

// record writes w's record in state with outcome (best effort: logged).
func (r *Reconciler) record(w *Watch, state, outcome string) {
	h := r.records.Load()
	if h == nil {
		return
	}
	rec := WatchRecord{Watch: *w, State: state, Outcome: outcome}
	if state == StateOpen {
		rec.NextPoll = w.DueAt
	} else {
		rec.ClosedAt = r.now().UTC()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := putRecord(ctx, h.kv, rec); err != nil {
		r.log.Warn("watch record not stored", append(w.attrs(), "err", err)...)
	}
}

// GetRecord returns the record of watch id.
func GetRecord(ctx context.Context, kv jetstream.KeyValue, id string) (WatchRecord, error) {
	e, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return WatchRecord{}, fmt.Errorf("%w: %s", ErrWatchNotFound, id)
	}
	if err != nil {
		return WatchRecord{}, fmt.Errorf("%w: watch record: %v", natsbus.ErrUnavailable, err)
	}
	var rec WatchRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return WatchRecord{}, fmt.Errorf("watch record %s: %v", id, err)
	}
	return rec, nil
}

// ListRecords calls f with every watch record, in one scan of the bucket.
func ListRecords(ctx context.Context, kv jetstream.KeyValue, f func(WatchRecord)) error {
	kw, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("%w: watch records: %v", natsbus.ErrUnavailable, err)
	}
	defer kw.Stop()
	for {
		select {
		case e := <-kw.Updates():
			if e == nil {
				return nil
			}
			var rec WatchRecord
			if json.Unmarshal(e.Value(), &rec) == nil {
				f(rec)
			}
		case <-ctx.Done():
			return fmt.Errorf("%w: watch records: %v", natsbus.ErrUnavailable, ctx.Err())
		}
	}
}

// openWatch reads the open watch id of provider and account, and its
// sequence: on its subject, or on the subject watches had before the
// account was part of it (such a watch keeps its subject).
func openWatch(ctx context.Context, queue jetstream.Stream, provider, account, id string) (*Watch, uint64, error) {
	for _, subj := range []string{watchSubject(provider, account, id), legacyWatchSubject(provider, id)} {
		raw, err := queue.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%w: look up watch: %v", natsbus.ErrUnavailable, err)
		}
		w, err := decodeWatch(raw.Data)
		if err != nil {
			return nil, 0, err
		}
		w.subject = subj
		return w, raw.Sequence, nil
	}
	return nil, 0, fmt.Errorf("%w: no open watch %s", ErrWatchNotFound, id)
}

// PollNow makes the open watch id of provider and account due now: its message is
// replaced by one due at once (the queue's compare-and-set, as any state
// change), and whichever reconciler replica gets it polls the provider.
// The schedule is otherwise unchanged. It returns the watch as saved.
func PollNow(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, provider, account, id string, now time.Time) (*Watch, error) {
	return changeOpenWatch(ctx, js, provider, account, id, func(_ jetstream.Stream, w *Watch, seq uint64) (bool, error) {
		w.DueAt = now.UTC()
		if kv != nil {
			// Written before the watch is due: the reconciler that polls it
			// writes the record after, and its record wins.
			_ = putRecord(ctx, kv, WatchRecord{Watch: *w, State: StateOpen, NextPoll: w.DueAt})
		}
		switch err := putWatch(ctx, js, w, seq); {
		case errors.Is(err, errSuperseded):
			return false, nil // changed meanwhile: read it again
		case err != nil:
			return false, err
		}
		return true, nil
	})
}

// Cancel closes the open watch id of provider and account without an event: it is
// deleted from the queue and its record says cancelled, with reason.
func Cancel(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, provider, account, id, reason string, now time.Time) (*Watch, error) {
	return changeOpenWatch(ctx, js, provider, account, id, func(queue jetstream.Stream, w *Watch, seq uint64) (bool, error) {
		err := queue.DeleteMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) || errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil // replaced or closed meanwhile
		}
		if err != nil {
			return false, fmt.Errorf("%w: delete watch: %v", natsbus.ErrUnavailable, err)
		}
		if kv != nil {
			return true, putRecord(ctx, kv, WatchRecord{Watch: *w, State: StateCancelled, Outcome: reason, ClosedAt: now.UTC()})
		}
		return true, nil
	})
}

// OpenWatch returns the open watch id of provider and account as it is in the queue.
func OpenWatch(ctx context.Context, js jetstream.JetStream, provider, account, id string) (*Watch, error) {
	queue, err := reconcileQueue(ctx, js)
	if err != nil {
		return nil, err
	}
	w, _, err := openWatch(ctx, queue, provider, account, id)
	return w, err
}

// reconcileQueue is the schedule queue; before any reconciler created it no
// watch exists (ErrWatchNotFound).
func reconcileQueue(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	queue, err := js.Stream(ctx, StreamReconcile)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: no reconciler has run", ErrWatchNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, StreamReconcile, err)
	}
	return queue, nil
}

// changeOpenWatch reads the open watch id and applies change to it, again
// (up to 3 times) while change reports that the watch changed under it
// (done false, nil error). It returns the watch as change left it.
func changeOpenWatch(ctx context.Context, js jetstream.JetStream, provider, account, id string, change func(queue jetstream.Stream, w *Watch, seq uint64) (done bool, err error)) (*Watch, error) {
	queue, err := reconcileQueue(ctx, js)
	if err != nil {
		return nil, err
	}
	for range 3 {
		w, seq, err := openWatch(ctx, queue, provider, account, id)
		if err != nil {
			return nil, err
		}
		done, err := change(queue, w, seq)
		if err != nil {
			return w, err
		}
		if done {
			return w, nil
		}
	}
	return nil, fmt.Errorf("%w: watch %s kept changing", natsbus.ErrUnavailable, id)
}
