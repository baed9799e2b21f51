package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/publisher"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// outcomeKind is what becomes of a handled watch's message (apply).
type outcomeKind int

const (
	outSave   outcomeKind = iota // the watch's state changed: replace its message
	outClose                     // the order has its terminal event
	outExpire                    // the watch is over without one
	outDefer                     // try again after delay, state unchanged
)

// outcome is what handling a due watch decided.
type outcome struct {
	kind   outcomeKind
	by     string        // outClose: who delivered the terminal event (closedBy, "poll")
	reason string        // outExpire: the expired_total reason
	delay  time.Duration // outDefer
}

// saveOrExpire is the outcome of a schedule move (Schedule.advance,
// Schedule.retry): a non-empty reason means the schedule ran out.
func saveOrExpire(reason string) outcome {
	if reason != "" {
		return outcome{kind: outExpire, reason: reason}
	}
	return outcome{kind: outSave}
}

// handle is the one place that decides what happens to a delivered watch
// message: not due → NakWithDelay; due → step; then the outcome is applied.
// release gives the handler's worker back (step calls it before waiting for
// a token or polling).
func (r *Reconciler) handle(ctx context.Context, msg jetstream.Msg, release func()) {
	md, err := msg.Metadata()
	if err != nil {
		_ = msg.Nak()
		return
	}
	w, err := decodeWatch(msg.Data())
	if err != nil {
		r.log.Error("watch message dropped", "subject", truncate(msg.Subject(), 80), "err", err)
		_ = msg.TermWithReason("undecodable watch")
		return
	}
	w.subject = msg.Subject()
	now := r.now()
	if d := w.DueAt.Sub(now); d > 0 {
		r.track(w, w.DueAt)
		_ = msg.NakWithDelay(d)
		return
	}
	out := r.step(ctx, msg, w, now, release)
	r.apply(ctx, msg, md.Sequence.Stream, w, out)
}

// apply carries out a step's outcome on the watch's message.
func (r *Reconciler) apply(ctx context.Context, msg jetstream.Msg, seq uint64, w *Watch, out outcome) {
	switch out.kind {
	case outClose:
		r.applyClose(ctx, msg, seq, w, out.by)
	case outExpire:
		r.untrack(w.ID)
		r.poke()
		r.m.expired.WithLabelValues(w.Provider, out.reason).Inc()
		r.log.Warn("watch expired", append(w.attrs(), "reason", out.reason)...)
		_ = msg.TermWithReason("expired: " + out.reason)
		r.record(w, StateExpired, out.reason)
	case outDefer:
		r.track(w, r.now().Add(out.delay))
		_ = msg.NakWithDelay(out.delay)
	case outSave:
		r.applySave(ctx, msg, seq, w)
	}
}

// applyClose deletes a closed watch's message by its sequence rather than
// only acknowledging it, so that of this handler and the closer (closer.go)
// exactly one counts the close.
func (r *Reconciler) applyClose(ctx context.Context, msg jetstream.Msg, seq uint64, w *Watch, by string) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	removed, err := r.remove(dctx, seq)
	cancel()
	if err != nil {
		// The Ack below removes it just as well; count it as ours.
		r.log.Debug("watch not deleted; acknowledged", append(w.attrs(), "err", err)...)
		removed = true
	}
	_ = msg.Ack()
	if removed {
		r.closed(w, by, "due")
	} else {
		r.untrack(w.ID) // closed by the closer meanwhile, which counted it
	}
}

// applySave replaces the watch's message with its new state, unless the
// message changed since it was read.
func (r *Reconciler) applySave(ctx context.Context, msg jetstream.Msg, seq uint64, w *Watch) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := putWatch(pctx, r.js, w, seq)
	cancel()
	switch {
	case err == nil:
		r.track(w, w.DueAt)
		r.record(w, StateOpen, "")
		_ = msg.Ack()
	case errors.Is(err, errSuperseded):
		// Someone else changed the watch meanwhile, or closed it (the
		// closer deleted it): either way this copy is done, and whoever
		// holds the watch now tracks it.
		r.untrack(w.ID)
		_ = msg.Ack()
	default:
		// Not saved: the old state comes back soon and the step is redone.
		r.log.Warn("watch state not saved; retrying", append(w.attrs(), "err", err)...)
		_ = msg.NakWithDelay(time.Second)
	}
}

// due is one due watch with what step needs to know about it: its
// provider's schedule and querier (nil: the provider cannot be asked), its
// account (known false: no longer configured) and the account's lane.
type due struct {
	w     *Watch
	now   time.Time
	sched Schedule
	q     providers.Querier
	acct  providers.Account
	known bool
	lane  *lane
}

// step handles a due watch, in the order the package comment gives:
//
//  0. triage: a watch whose rate-limit slot is far off goes back at once;
//  1. the dedupe store: an order with its terminal event closes the watch;
//  2. a provider (or account) that cannot be asked: the schedule moves on;
//  3. the account's turn: its slot and a place among its polls in flight;
//  4. the poll: ask the provider (or ask it to resend the callback);
//  5. a terminal answer: wait for the resend, or store the event.
//
// Each stage returns done true when it decided the outcome.
func (r *Reconciler) step(ctx context.Context, msg jetstream.Msg, w *Watch, now time.Time, release func()) (out outcome) {
	d := due{w: w, now: now, sched: r.schedules[w.Provider], q: r.queriers[w.Provider], lane: r.lanes[w.Account]}
	d.acct, d.known = r.accounts[w.Account]
	if out, done := r.triage(d); done {
		return out
	}
	if out, done := r.checkStore(ctx, d); done {
		return out
	}
	if d.q == nil || !d.known || d.lane == nil {
		return r.unverifiable(d)
	}
	if out, done := r.takeTurn(d, release); done {
		return out
	}
	defer d.lane.done()
	// A provider that can resend the callback (mrnpay) is asked to, unless
	// we are past a resend's grace period (then we synthesize).
	var a answer
	a.resender, a.resends = r.resenders[w.Provider]
	a.retriggered = a.resends && !w.AwaitingRetrigger
	// One span per query (payhook.poll, or payhook.resend when the
	// provider is asked to send the callback again); an event stored from
	// its answer carries its trace to the dispatcher.
	ctx, span := startPoll(ctx, w, a.retriggered)
	defer func() { endPoll(span, w, out) }()
	if out, done := r.poll(ctx, msg, d, &a); done {
		return out
	}
	return r.recoverEvent(ctx, d, a)
}

// triage (stage 0) looks at the watch's slot in its account's lane
// (lane.go): a watch whose slot is further than MaxRateWait goes back until
// then without a store round trip, so a flood of due watches is triaged at
// the consumer's pace.
func (r *Reconciler) triage(d due) (outcome, bool) {
	if d.lane != nil && d.q != nil && d.known {
		if wait := d.lane.slot(d.w.ID, d.now).Sub(d.now); wait > r.opt.MaxRateWait {
			r.m.rateLimited.WithLabelValues(d.w.Provider).Inc()
			return outcome{kind: outDefer, delay: wait}, true
		}
	}
	return outcome{}, false
}

// checkStore (stage 1) asks whether the order has its terminal event
// already, from anyone.
func (r *Reconciler) checkStore(ctx context.Context, d due) (outcome, bool) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	st, err := orderState(dctx, r.store, d.w)
	cancel()
	if err != nil {
		// Without the store, a synthesized event could duplicate a callback
		// older than JetStream's duplicate window: wait for the store.
		r.log.Warn("dedupe store unavailable; watch deferred", append(d.w.attrs(), "err", err)...)
		return outcome{kind: outDefer, delay: min(r.opt.ErrorBase, d.sched.delay(d.w.Step))}, true
	}
	if st.Status.Terminal() {
		if d.lane != nil {
			d.lane.forget(d.w.ID)
		}
		return outcome{kind: outClose, by: r.closedBy(d.w)}, true
	}
	return outcome{}, false
}

// unverifiable (stage 2) moves on the schedule of a watch whose provider
// cannot be asked (no providers.Querier) or whose account is gone; when it
// runs out the watch expires as unverifiable.
func (r *Reconciler) unverifiable(d due) outcome {
	if !d.known {
		r.log.Warn("watch for an account no longer configured", d.w.attrs()...)
	}
	if reason := d.sched.advance(d.w, d.now, ExpiredUnverifiable); reason != "" {
		if reason == ExpiredSchedule || reason == ExpiredExpiresAt {
			reason = ExpiredUnverifiable
		}
		return outcome{kind: outExpire, reason: reason}
	}
	return outcome{kind: outSave}
}

// takeTurn (stage 3) waits for the account's rate limit and lane (lane.go):
// the slot of stage 0 (a store check can take a while: it is looked at
// again); a place among the account's polls in flight; then the worker is
// given back. When it returns done false the caller holds a place in the
// lane and must call lane.done.
func (r *Reconciler) takeTurn(d due, release func()) (outcome, bool) {
	at := d.lane.slot(d.w.ID, d.now)
	wait := at.Sub(r.now())
	if wait > r.opt.MaxRateWait {
		r.m.rateLimited.WithLabelValues(d.w.Provider).Inc()
		return outcome{kind: outDefer, delay: wait}, true
	}
	if !d.lane.acquire(r.opt.Workers) {
		// The account's polls are all in flight (a slow provider): back in
		// laneBusyDelay, the slot kept.
		r.m.rateLimited.WithLabelValues(d.w.Provider).Inc()
		return outcome{kind: outDefer, delay: laneBusyDelay}, true
	}
	d.lane.forget(d.w.ID)
	release()
	if wait > 0 {
		time.Sleep(wait)
	}
	return outcome{}, false
}

// answer is a poll's result: the provider's answer, and whether the
// provider was asked to resend the order's callback.
type answer struct {
	providers.QueryResult
	resender    providers.Retriggerer
	resends     bool // the provider can resend callbacks (resender is set)
	retriggered bool // this poll asked it to
}

// poll (stage 4) asks the provider, asking it to resend the callback when
// a.retriggered, and fills in a with the answer. It returns done false only
// for a terminal answer.
func (r *Reconciler) poll(ctx context.Context, msg jetstream.Msg, d due, a *answer) (outcome, bool) {
	w, now := d.w, d.now
	over := ExpiredSchedule
	if w.Unrecoverable {
		over = ExpiredUnrecoverable
	}
	_ = msg.InProgress()
	qctx, cancel := context.WithTimeout(ctx, r.opt.PollTimeout)
	start := time.Now()
	if a.retriggered && r.marks != nil {
		if err := r.marks.Mark(qctx, w.Provider, w.Account, w.Kind, w.MerchantOrderID); err != nil {
			r.log.Warn("retrigger mark not stored; the resent event will say origin callback", append(w.attrs(), "err", err)...)
		}
	}
	ans, err := d.q.Query(qctx, d.acct, w.Order(), a.retriggered)
	cancel()
	w.Polls++
	w.LastPollAt = now.UTC()
	if err != nil && !errors.Is(err, providers.ErrNotFound) {
		w.noteError(err, now)
	}
	if a.retriggered && r.marks != nil && (err != nil || !ans.Found || !a.resender.Resends(w.Kind, ans.Status)) {
		// No resend is coming (mrnpay resends successes only).
		if err := r.marks.Unmark(context.WithoutCancel(ctx), w.Provider, w.Account, w.Kind, w.MerchantOrderID); err != nil {
			r.log.Debug("retrigger mark not removed", append(w.attrs(), "err", err)...)
		}
	}
	r.m.pollSeconds.WithLabelValues(w.Provider).Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, providers.ErrUnsupported):
		r.m.polls.WithLabelValues(w.Provider, PollUnsupported).Inc()
		return outcome{kind: outExpire, reason: ExpiredUnsupported}, true
	case errors.Is(err, providers.ErrNotFound):
		ans = providers.QueryResult{Found: false}
	case err != nil:
		r.m.polls.WithLabelValues(w.Provider, PollError).Inc()
		r.log.WarnContext(ctx, "poll failed; backing off", append(w.attrs(), "errors", w.Errors+1, "err", err)...)
		return saveOrExpire(d.sched.retry(w, now)), true
	}
	if !ans.Found {
		r.m.polls.WithLabelValues(w.Provider, PollNotFound).Inc()
		return saveOrExpire(d.sched.advance(w, now, over)), true
	}
	if !ans.Status.Terminal() {
		r.m.polls.WithLabelValues(w.Provider, PollPending).Inc()
		return saveOrExpire(d.sched.advance(w, now, over)), true
	}
	r.m.polls.WithLabelValues(w.Provider, PollTerminal).Inc()
	a.QueryResult = ans
	return outcome{}, false
}

// recoverEvent (stage 5) handles a terminal answer for an order with no
// terminal event yet: it waits for a resent callback, or stores the event
// the answer carries (or the watch's announcement lets it synthesize).
func (r *Reconciler) recoverEvent(ctx context.Context, d due, a answer) outcome {
	w, now := d.w, d.now
	if a.retriggered && a.resender.Resends(w.Kind, a.Status) {
		// The provider resends this answer's callback; give it the grace
		// period to come through ingress, the verified path.
		r.m.retriggers.WithLabelValues(w.Provider).Inc()
		r.log.InfoContext(ctx, "callback re-triggered", w.attrs()...)
		d.sched.awaitRetrigger(w, now)
		return outcome{kind: outSave}
	}
	if a.Event == nil && w.Amount != nil && needs(r.provs, w.Provider).Amount {
		// No callback is coming: a resend asked for did not arrive within
		// the grace period, or the order failed (mrnpay calls back successes
		// only). The provider vouches for the status, the announcement for
		// the amount (Watch.event).
		a.Event = w.event(a.Status, now)
	}
	if a.Event == nil {
		r.m.unrecoverable.WithLabelValues(w.Provider).Inc()
		if a.resends && a.resender.Resends(w.Kind, a.Status) {
			// The resend asked for did not arrive within the grace period,
			// and the watch has no amount to synthesize the event with: the
			// next step asks again (docs/reconciler.md).
			r.log.WarnContext(ctx, "re-triggered callback not received within the grace period and no amount announced; asking again at the next step",
				append(w.attrs(), "step", w.Step+1)...)
		} else {
			r.log.WarnContext(ctx, "terminal status without an event to synthesize (no amount in the answer nor the watch)", append(w.attrs(), "status", a.Status)...)
		}
		w.Unrecoverable = true
		return saveOrExpire(d.sched.advance(w, now, ExpiredUnrecoverable))
	}
	ev := *a.Event
	ev.Origin = events.OriginPoll
	if ev.Provider != w.Provider || ev.Account != w.Account || ev.Kind != w.Kind {
		r.m.unrecoverable.WithLabelValues(w.Provider).Inc()
		r.log.ErrorContext(ctx, "query answer is about another order; not published", w.attrs()...)
		w.Unrecoverable = true
		return saveOrExpire(d.sched.advance(w, now, ExpiredUnrecoverable))
	}
	if ev.MerchantOrderID == "" {
		ev.MerchantOrderID = w.MerchantOrderID
	}
	return r.storeRecovered(ctx, d, &ev)
}

// storeRecovered publishes a recovered event and closes the watch.
func (r *Reconciler) storeRecovered(ctx context.Context, d due, ev *events.Event) outcome {
	w := d.w
	verdict, err := r.pub.Store(ctx, ev)
	if err != nil {
		r.log.WarnContext(ctx, "synthesized event not stored; retrying", append(w.attrs(), "event_id", ev.ID(), "err", err)...)
		w.noteError(fmt.Errorf("event not stored: %w", err), d.now)
		return saveOrExpire(d.sched.retry(w, d.now))
	}
	switch verdict {
	case publisher.Accepted:
		r.log.InfoContext(ctx, "event recovered by poll", append(w.attrs(), "event_id", ev.ID())...)
		return outcome{kind: outClose, by: "poll"}
	case publisher.Conflict:
		r.log.WarnContext(ctx, "poll contradicts the recorded terminal status; conflict published", append(w.attrs(), "event_id", ev.ID())...)
	}
	// Duplicate (a callback got there first) or conflict: the order already
	// had its terminal event.
	return outcome{kind: outClose, by: r.closedBy(w)}
}

// closedBy attributes an existing terminal event: to the resend we asked
// for, if we asked, else to the provider's own callback.
func (r *Reconciler) closedBy(w *Watch) string {
	if !w.RetriggeredAt.IsZero() {
		return "retrigger"
	}
	return "callback"
}
