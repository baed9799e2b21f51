package dispatch

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// giveBackMargin is how much later than the event they wait for held
// events are made to come back when they are given back to JetStream.
// JetStream queues redeliveries in the order they fall due (stream order
// among those falling due together), so any positive margin brings the
// earlier event back first; a second absorbs the delay between our clock
// at the Nak and the server's.
const giveBackMargin = time.Second

// giveBackIdle gives back to JetStream the held events of every order with
// no delivery started (their earlier event waits in JetStream for its
// retry) for which only(order) is true (every order when only is nil): at
// shutdown, on a pause, on losing the pin. Orders with a delivery started
// give theirs back when it ends (done).
func (w *worker) giveBackIdle(only func(*orderState) bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, st := range w.orders {
		if !st.busy && (only == nil || only(st)) {
			w.giveBackLocked(st)
		}
	}
}

// giveBackLocked gives the held events of an order back to JetStream, in
// stream order. When the earlier event waits in JetStream for its retry,
// they are given back with a delay that makes them due giveBackMargin
// after it, so whichever replica fetches them next gets the earlier event
// first and holds them behind it; otherwise (the earlier event was
// delivered, or was itself just given back) at once.
func (w *worker) giveBackLocked(st *orderState) {
	var delay time.Duration
	if st.retrySeq != 0 {
		delay = max(time.Until(st.retryDue), 0) + giveBackMargin
	}
	for _, q := range st.queue {
		if delay > 0 {
			_ = q.msg.NakWithDelay(delay)
		} else {
			_ = q.msg.Nak()
		}
		delete(w.owned, q)
	}
	st.queue = nil
}

// start runs one delivery; callers hold w.mu.
func (w *worker) start(ctx context.Context, it *item) {
	w.started++
	w.inflight.Add(1)
	go w.deliver(ctx, w.hard, it)
}

// startNextLocked starts the next held event of an order, if any.
func (w *worker) startNextLocked(ctx context.Context, st *orderState) {
	if st.busy || len(st.queue) == 0 {
		return
	}
	next := st.queue[0]
	st.queue = st.queue[1:]
	st.busy = true
	w.start(ctx, next)
}

type finish int

const (
	finDone     finish = iota // acked (delivered, dead-lettered)
	finRetry                  // nak'd with delay
	finReleased               // given back to JetStream without an attempt
)

// done updates the order's state after a delivery and starts the next held
// event of that order when the order is free.
func (w *worker) done(ctx context.Context, it *item, f finish, delay time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.started--
	delete(w.owned, it)
	st := w.orders[it.key]
	if st == nil {
		if f == finReleased {
			_ = it.msg.Nak()
		}
		return
	}
	st.busy = false
	switch f {
	case finDone:
		st.retrySeq = 0
		if ctx.Err() == nil {
			w.startNextLocked(ctx, st)
		}
	case finRetry:
		st.retrySeq = it.seq
		st.retryDue = time.Now().Add(delay)
		st.retryMsg, st.retryID = it.msg, it.id
		// A copy of the event itself held behind it: the consumer was
		// recreated while it was in flight, so its nak went to the old
		// consumer and only the copy will come back. Held, the copy would
		// wait for itself (seq == retrySeq) for as long as keepAlive runs;
		// it takes the retry instead, on its own consumer.
		if i, ok := slices.BinarySearchFunc(st.queue, it.seq, func(q *item, s uint64) int { return cmp.Compare(q.seq, s) }); ok {
			q := st.queue[i]
			st.queue = slices.Delete(st.queue, i, i+1)
			delete(w.owned, q)
			_ = q.msg.NakWithDelay(delay)
		}
		if w.pin(st.replay).standby.Load() {
			// The retry goes to the pinned replica: so do the held events.
			w.giveBackLocked(st)
		}
	case finReleased:
		// Give the event and every later held event of its order back to
		// JetStream, in stream order, so a replica (or this one, after a
		// resume) gets them again, the earlier one first.
		_ = it.msg.Nak()
		st.retrySeq = 0
		w.giveBackLocked(st)
	}
	if ctx.Err() != nil {
		// Shutting down: nothing more starts here.
		w.giveBackLocked(st)
	}
	if !st.busy && st.retrySeq == 0 && len(st.queue) == 0 {
		delete(w.orders, it.key)
	}
}
