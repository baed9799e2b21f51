package dispatch

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// fetchLoop pulls messages while the subscriber is not paused, its breaker
// is not open and fewer than maxStarted deliveries are started.
//
// A fetch that fails (the consumer was deleted: "no responders", consumer
// not found or deleted) is looked into at once: checkConsumer recreates a
// consumer that is gone.
func (w *worker) fetchLoop(ctx context.Context, replay bool) {
	for ctx.Err() == nil {
		if w.paused.Load() {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		if wait := w.br.blockedFor(); wait > 0 {
			sleep(ctx, min(wait, time.Second))
			continue
		}
		w.mu.Lock()
		free := w.maxStarted - w.started
		w.mu.Unlock()
		if free <= 0 {
			sleep(ctx, 20*time.Millisecond)
			continue
		}
		want := min(free, cap(w.sem))
		began := time.Now()
		c := w.consumer(replay)
		batch, err := c.Fetch(want, jetstream.FetchMaxWait(w.d.o.fetchWait), jetstream.FetchPriorityGroup(PinGroup))
		if err != nil {
			if ctx.Err() == nil && !w.checkConsumer(ctx, replay) {
				w.log.Warn("fetch", "err", err)
				sleep(ctx, 500*time.Millisecond)
			}
			continue
		}
		got := 0
		for m := range batch.Messages() {
			if got == 0 { // one message of the batch tells the pin
				w.pin(replay).got(m)
				if !replay {
					w.d.m.active.WithLabelValues(w.id).Set(1)
				}
			}
			got++
			w.accept(ctx, m, replay)
		}
		if err := batch.Error(); errors.Is(err, jetstream.ErrPinIDMismatch) {
			// Another replica delivers for this subscriber now: give back
			// what waits here behind a retry that will go to it.
			if !w.pin(replay).standby.Swap(true) {
				w.log.Info("another replica now delivers this subscriber's events; standing by", "replay", replay)
				if !replay {
					w.d.m.active.WithLabelValues(w.id).Set(0)
				}
			}
			w.giveBackIdle(func(st *orderState) bool { return st.replay == replay })
			continue
		} else if err != nil {
			// A pull that failed (consumer deleted, no responders, ...)
			// fails at once: do not spin on it.
			if ctx.Err() == nil && !w.checkConsumer(ctx, replay) {
				w.log.Warn("fetch", "err", err)
				sleep(ctx, 500*time.Millisecond)
			}
			continue
		}
		if got < want && ctx.Err() == nil {
			w.releaseStranded(ctx, replay, began)
		}
	}
}

// releaseStranded runs after a fetch begun at began came back with fewer
// messages than it asked for: JetStream had nothing more for this replica.
// JetStream hands out due redeliveries before new messages, and even at
// MaxAckPending, so an earlier event that has been due for its redelivery
// since before began and is not back here was handed to another replica:
// the events held behind it would otherwise wait for ever, and are sent.
// The AckWait of margin covers a redelivery that reached this replica in a
// fetch it gave up on (the message is then redelivered after AckWait). Not
// fetching at all (pause, open breaker, every slot busy) never gets here.
func (w *worker) releaseStranded(ctx context.Context, replay bool, began time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, st := range w.orders {
		if st.replay != replay || st.busy || st.retrySeq == 0 || began.Before(st.retryDue.Add(w.settings().ackWait)) {
			continue
		}
		if len(st.queue) > 0 {
			w.log.Warn("the earlier event of an order went to another replica; sending the events held behind it",
				append(st.queue[0].attrs(), "stream_seq", st.retrySeq, "held", len(st.queue))...)
			w.d.m.strandedHolds.WithLabelValues(w.id).Inc()
		}
		st.retrySeq = 0
		w.startNextLocked(ctx, st)
		if !st.busy && len(st.queue) == 0 {
			delete(w.orders, key)
		}
	}
}

// keepAlive extends AckWait for every message this replica holds, and
// gives back held events that arrived while the subscriber is paused.
func (w *worker) keepAlive(ctx context.Context) {
	// The period is read afresh each time: a reload may shorten AckWait.
	t := time.NewTimer(max(w.settings().ackWait/3, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(max(w.settings().ackWait/3, 100*time.Millisecond))
		if w.paused.Load() {
			w.giveBackIdle(nil)
		}
		w.mu.Lock()
		for it := range w.owned {
			_ = it.msg.InProgress()
		}
		w.mu.Unlock()
	}
}

func (w *worker) accept(ctx context.Context, m jetstream.Msg, replay bool) {
	meta, err := m.Metadata()
	if err != nil {
		_ = m.Nak()
		return
	}
	// Verified before it is decoded: nothing about a forged message is
	// acted on (forged.go).
	signedID, err := w.d.verify(m.Headers(), m.Data())
	if err != nil {
		w.refuseForged(m, meta, err)
		return
	}
	head, err := w.d.heads.parse(m.Data())
	if err != nil {
		w.log.Error("not a CloudEvent: terminated", "stream_seq", meta.Sequence.Stream)
		_ = m.Term()
		w.d.m.deliveries.WithLabelValues(w.id, OutcomeInvalid).Inc()
		return
	}
	ce := &head.ce
	if w.d.keys != nil && ce.ID != signedID {
		w.refuseForged(m, meta, errIDMismatch)
		return
	}
	// The signature covers the body, not the subject: the subject the
	// filter reads is the one the signed body says (forged.go).
	subject := head.subject
	if w.d.keys != nil && !replay && m.Subject() != subject {
		w.refuseForged(m, meta, errSubjectMismatch)
		return
	}
	if !replay && w.finishedBefore(meta.Sequence.Stream) {
		_ = m.Ack()
		return
	}
	if !Match(w.settings().sub.Filter, subject, ce.Data) {
		_ = m.Ack()
		w.d.m.deliveries.WithLabelValues(w.id, OutcomeFiltered).Inc()
		return
	}
	it := &item{msg: m, replay: replay, signed: m.Headers(), seq: meta.Sequence.Stream, attempt: int(meta.NumDelivered), id: ce.ID, key: head.key, head: head, body: m.Data()}
	if replay {
		it.key = "replay|" + it.key
		it.replays, _ = strconv.Atoi(m.Headers().Get(HeaderReplay))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.orders[it.key]
	if st == nil {
		st = &orderState{replay: replay}
		w.orders[it.key] = st
	}
	for i, q := range st.queue {
		if q.seq == it.seq { // redelivered while held: keep the newer handle
			delete(w.owned, q)
			st.queue[i] = it
			w.owned[it] = struct{}{}
			return
		}
	}
	// Held: behind a started delivery of the order, or behind an earlier
	// event of it waiting in JetStream for its retry (that one, when it
	// comes back, has seq == retrySeq and is started).
	held := st.busy || (st.retrySeq != 0 && it.seq > st.retrySeq)
	w.owned[it] = struct{}{}
	if held {
		i, _ := slices.BinarySearchFunc(st.queue, it.seq, func(q *item, s uint64) int { return cmp.Compare(q.seq, s) })
		st.queue = slices.Insert(st.queue, i, it)
		return
	}
	st.busy = true
	w.start(ctx, it)
}
