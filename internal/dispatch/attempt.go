package dispatch

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/payhook/payhook/internal/config"
)

// deliver runs one attempt of one event in three phases: wait for the
// breaker, a slot and a rate token (abandoned on shutdown or pause), send
// (drained on shutdown, bounded by the subscriber timeout and the drain
// deadline hard), and settle the message by Decide's disposition. Every
// path ends in exactly one done, which frees the order for its next event.
func (w *worker) deliver(ctx, hard context.Context, it *item) {
	defer w.inflight.Done()
	if !it.replay && w.finishedBefore(it.seq) {
		// A copy from a recreated consumer of an event this replica
		// finished (it was held behind the original): not sent again.
		_ = it.msg.Ack()
		w.done(ctx, it, finDone, 0)
		return
	}
	if !w.waitTurn(ctx) {
		w.done(ctx, it, finReleased, 0)
		return
	}
	set := w.settings()
	rctx, cancel := context.WithTimeout(hard, set.sub.Timeout.D())
	rctx, span := w.startAttempt(rctx, it)
	res := Post(rctx, w.client, set.sub.URL, set.signer, it.id, it.body, time.Now())
	cancel()
	<-w.sem
	if res.Err != nil && hard.Err() != nil {
		// Cut off by shutdown: not the subscriber's failure.
		endAttempt(span, res, Retry)
		w.release(ctx, it)
		return
	}
	// The span's context (not its deadline) carries the trace into the
	// settling's log lines. Without a valid span (tracing off) there is
	// nothing to carry: ctx already has whatever span it had.
	if span.SpanContext().IsValid() {
		ctx = trace.ContextWithSpan(ctx, span)
	}
	w.settle(ctx, it, res, set.sub, span)
}

// waitTurn waits until the breaker lets an attempt through, a concurrency
// slot is free and the rate limit gives a token. It reports false, holding
// nothing (no slot, no breaker probe), when the attempt must not happen now:
// Run stops, the subscriber is paused, or the breaker opened meanwhile. On
// true the caller holds a slot of w.sem and must give it back.
func (w *worker) waitTurn(ctx context.Context) bool {
	for {
		if ctx.Err() != nil || w.paused.Load() {
			return false
		}
		ok, wait := w.br.allow()
		if ok {
			break
		}
		sleep(ctx, min(wait, 200*time.Millisecond))
	}
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		w.br.cancelProbe()
		return false
	}
	if l := w.settings().limiter; l != nil {
		if err := l.Wait(ctx); err != nil {
			<-w.sem
			w.br.cancelProbe()
			return false
		}
	}
	if w.paused.Load() || w.br.current() == BreakerOpen {
		// Paused (another attempt got 410 Gone) or the breaker opened (other
		// attempts failed) while this delivery waited for a slot: do not
		// call the subscriber now; the event goes back to JetStream.
		<-w.sem
		w.br.cancelProbe()
		return false
	}
	return true
}

// release gives an event back to JetStream without counting an attempt,
// and gives up the breaker probe the attempt may have held.
func (w *worker) release(ctx context.Context, it *item) {
	w.br.cancelProbe()
	w.done(ctx, it, finReleased, 0)
}

// settle records an attempt's result and acts on Decide's disposition:
// ack, pause, nak with backoff, or dead-letter.
func (w *worker) settle(ctx context.Context, it *item, res Result, sub config.Subscriber, span trace.Span) {
	w.m.duration.get(w).Observe(res.Duration.Seconds())
	attempt := max(it.attempt, 1)
	disp := Decide(res, attempt, sub.MaxAttempts)
	// The history goes into a dead letter; a delivered event's is dropped
	// (finish), so its last attempt is not recorded.
	var hist []Attempt
	if disp != Delivered {
		hist = w.record(it.id, res)
	}
	w.noteAttempt(res)
	w.logAttempt(it, res, attempt, disp)
	endAttempt(span, res, disp)
	switch disp {
	case Delivered:
		w.br.result(true)
		if err := it.msg.Ack(); err != nil {
			w.log.WarnContext(ctx, "ack failed; the event may be delivered again", append(it.attrs(), "err", err)...)
		}
		w.m.delivered.get(w).Inc()
		w.m.attempts.get(w).Observe(float64(attempt))
		if w.log.Enabled(ctx, slog.LevelDebug) {
			w.log.DebugContext(ctx, "delivered", append(it.attrs(), "attempt", attempt, "status", res.Status)...)
		}
		w.finish(ctx, it)
	case Pause:
		w.pause(context.WithoutCancel(ctx))
		w.d.m.deliveries.WithLabelValues(w.id, OutcomePaused).Inc()
		w.release(ctx, it)
	case Retry:
		w.br.result(false)
		delay := Backoff(attempt, sub.BackoffInitial.D(), sub.BackoffMax.D(), res.RetryAfter)
		_ = it.msg.NakWithDelay(delay)
		w.d.m.deliveries.WithLabelValues(w.id, OutcomeRetry).Inc()
		w.log.InfoContext(ctx, "delivery failed; will retry", append(it.attrs(), "attempt", attempt, "status", res.Status, "err", res.Err, "delay", delay)...)
		w.done(ctx, it, finRetry, delay)
	case DeadLettered:
		w.br.result(false)
		w.deadLetter(ctx, it, res, attempt, hist, sub.BackoffInitial.D())
	}
}

// deadLetter stores an event that ran out of attempts in the DLQ and acks
// it; when the DLQ does not take it, the event is kept and tried again
// after backoff_initial.
func (w *worker) deadLetter(ctx context.Context, it *item, res Result, attempt int, hist []Attempt, retryIn time.Duration) {
	dl := DeadLetter{
		Event: json.RawMessage(it.body), EventID: it.id, Subscriber: w.id, Attempts: attempt,
		LastError: res.Err.Error(), LastStatus: res.Status, History: hist, At: time.Now().UTC(), Replays: it.replays,
	}
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	err := PublishDeadLetter(pctx, w.d.js, dl, it.signed)
	pcancel()
	if err != nil {
		w.log.ErrorContext(ctx, "dead letter not stored; retrying", append(it.attrs(), "err", err)...)
		delay := retryIn
		_ = it.msg.NakWithDelay(delay)
		w.done(ctx, it, finRetry, delay)
		return
	}
	_ = it.msg.Ack()
	w.d.m.deliveries.WithLabelValues(w.id, OutcomeDeadLettered).Inc()
	w.d.m.deadLetters.WithLabelValues(w.id).Inc()
	w.m.attempts.get(w).Observe(float64(attempt))
	w.log.WarnContext(ctx, "dead-lettered", append(it.attrs(), "attempts", attempt, "status", res.Status, "err", res.Err)...)
	w.finish(ctx, it)
}

// finish ends an event that was delivered or dead-lettered: it is not sent
// again by this replica, its attempt history is dropped, and its order moves on.
func (w *worker) finish(ctx context.Context, it *item) {
	w.markFinished(it)
	w.forget(it.id)
	w.done(ctx, it, finDone, 0)
}
