// Package reconcile is payhook's reconciler: it chases every order a
// merchant opened until the order has a terminal event, recovering lost
// callbacks by asking the provider to resend them (mrnpay), or by
// synthesizing the event from the provider's query answer (jpglo,
// cashypro), and it submits UTRs to fantian without ever offering one bank
// transfer for two orders. docs/reconciler.md explains the design.
//
// A watch's life: announced (payhook.watch.{provider} or POST /v1/watches)
// → one message on PAYHOOK_RECONCILE → at each due time (Schedule), first
// the dedupe store is asked whether the order already has a terminal event
// (then the watch closes without a query), else the provider is queried →
// terminal: event recovered, watch closed; otherwise the next step, until
// the schedule runs out and the watch expires (counted by reason).
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/publisher"
	"github.com/payhook/payhook/internal/retrigger"
	"github.com/payhook/payhook/internal/trace"
	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Deps are the reconciler's collaborators.
type Deps struct {
	Config *config.Config
	JS     jetstream.JetStream
	// Store tells whether an order already has a terminal event. Required.
	Store dedupe.Store
	// References holds UTR claims; nil makes POST /v1/references answer 503.
	References dedupe.References
	// Providers are the providers the reconciler works with, by role: it
	// polls each providers.Querier (a provider without the role cannot be
	// verified: its watches only expire), asks each providers.Retriggerer
	// to resend, fills in what a providers.WatchNeeds says a watch must
	// carry, and submits references to each providers.ReferenceSubmitter
	// (none: POST /v1/references answers 503). Nil: none.
	Providers *providers.Set
	// Publisher stores synthesized events; nil builds one on Store with the
	// same dedupe policy as ingress, registering its metrics on Registry.
	Publisher *publisher.Publisher
	// Signer signs the events the Publisher built here stores (Serve takes
	// it from event_signing); nil stores them unsigned, which the
	// dispatcher refuses unless its checking is disabled too.
	Signer *events.Signer
	// EventKeys, when set, are the keys the closer verifies terminal events
	// under (events.VerifyMessage) before it closes a watch on one: a
	// message not signed by them, or read from a subject other than its
	// event's, closes nothing. Serve sets them from
	// event_signing (public_keys and the private key's own public half);
	// nil (signing disabled, tests) closes on any event.
	EventKeys []events.PublicKey
	// Retrigger, when set, is told of every re-triggered order so that
	// ingress labels the resent callback's event origin "retrigger".
	Retrigger *retrigger.Marks
	Registry  prometheus.Registerer
	Log       *slog.Logger
	Now       func() time.Time
	Options   Options
}

// Options tune the reconciler; zero fields take the defaults named.
type Options struct {
	// Workers is how many delivered watches are triaged at once per
	// replica, and how many polls one account may have in flight on it
	// (default 8; lane.go).
	Workers int
	// AckWait of the shared consumer (default 1m; see ConsumerConfig).
	AckWait time.Duration
	// PollTimeout bounds one provider query (default 20s).
	PollTimeout time.Duration
	// ErrorBase is the first retry delay after a failed poll (default 30s).
	ErrorBase time.Duration
	// MaxRateWait is the longest a due poll waits for its account's rate
	// limit in place; beyond it the watch is put back with that delay (default 1s).
	MaxRateWait time.Duration
	// GaugeInterval is how often watches_open and oldest_watch_age_seconds
	// are refreshed (default 15s).
	GaugeInterval time.Duration
	// DrainTimeout bounds the wait for in-flight watches at shutdown (default 30s).
	DrainTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.AckWait <= 0 {
		o.AckWait = time.Minute
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 20 * time.Second
	}
	if o.ErrorBase <= 0 {
		o.ErrorBase = 30 * time.Second
	}
	if o.MaxRateWait <= 0 {
		o.MaxRateWait = time.Second
	}
	if o.GaugeInterval <= 0 {
		o.GaugeInterval = 15 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
}

// Reconciler chases open orders. Run it with Run; serve its admin API with
// MountAdmin or Handler.
type Reconciler struct {
	cfg        *config.Config
	js         jetstream.JetStream
	store      dedupe.Store
	refs       dedupe.References
	provs      *providers.Set
	queriers   map[string]providers.Querier
	resenders  map[string]providers.Retriggerer
	submitters map[string]providers.ReferenceSubmitter
	pub        *publisher.Publisher
	marks      *retrigger.Marks
	eventKeys  []events.PublicKey
	log        *slog.Logger
	now        func() time.Time
	opt        Options
	m          *metrics

	accounts  map[string]providers.Account
	schedules map[string]Schedule
	lanes     map[string]*lane // by account id
	// queue is PAYHOOK_RECONCILE, set by Run before any message is handled.
	queue jetstream.Stream
	// records is WatchBucket (records.go), set by Run before any message
	// is handled; nil until then (no record is written).
	records atomic.Pointer[kvHandle]

	countMu sync.Mutex
	counts  map[string]*openCount // account id → open watches (lane.go)

	mu      sync.Mutex
	tracked map[string]tracked // watch id → what this replica last saw
	pokes   chan struct{}
}

// tracked is this replica's memory of a watch it handled, for
// oldest_watch_age_seconds: it is forgotten when the watch closes here, when
// its due time has long passed without this replica seeing it again
// (another replica handled it), or when the gauge refresh finds its message
// gone (closed elsewhere: by the closer on another replica).
type tracked struct {
	subject            string
	openedAt, forgetAt time.Time
}

// New builds a reconciler; it does not touch NATS until Run.
func New(d Deps) (*Reconciler, error) {
	if d.Config == nil || d.JS == nil || d.Store == nil {
		return nil, errors.New("reconcile: config, JetStream and dedupe store are required")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Providers == nil {
		d.Providers = providers.NewSet()
	}
	d.Options.defaults()
	queriers := providers.With[providers.Querier](d.Providers)
	submitters := providers.With[providers.ReferenceSubmitter](d.Providers)
	// Every account the reconciler calls out to needs its provider's API:
	// without base_url each poll (or UTR submission) would fail for days.
	for i, a := range d.Config.Accounts {
		_, queries := queriers[a.Provider]
		_, submits := submitters[a.Provider]
		if a.BaseURL == "" && (queries || submits) {
			return nil, &config.Error{Key: fmt.Sprintf("accounts[%d].base_url", i), Msg: "required by the reconciler: the provider's API for queries and submissions"}
		}
	}
	m, err := newMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	if d.Publisher == nil {
		d.Publisher, err = publisher.New(d.JS, publisher.StoreDeduper{Store: d.Store}, 5*time.Second, d.Registry, d.Log, publisher.WithSigner(d.Signer))
		if err != nil {
			return nil, err
		}
	}
	r := &Reconciler{
		cfg: d.Config, js: d.JS, store: d.Store, refs: d.References, provs: d.Providers, queriers: queriers,
		resenders: providers.With[providers.Retriggerer](d.Providers), submitters: submitters, pub: d.Publisher, marks: d.Retrigger, eventKeys: d.EventKeys,
		log: d.Log, now: d.Now, opt: d.Options, m: m,
		accounts: map[string]providers.Account{}, schedules: map[string]Schedule{},
		lanes: map[string]*lane{}, counts: map[string]*openCount{}, tracked: map[string]tracked{}, pokes: make(chan struct{}, 1),
	}
	rc := d.Config.Reconciler
	for _, name := range d.Providers.Names() {
		delays := rc.Schedule
		if o, ok := rc.Providers[name]; ok && len(o.Schedule) > 0 {
			delays = o.Schedule
		}
		if len(delays) == 0 {
			delays = config.DefaultSchedule
		}
		s := Schedule{Grace: rc.RetriggerGrace.D(), ErrorBase: d.Options.ErrorBase}
		for _, x := range delays {
			s.Delays = append(s.Delays, x.D())
		}
		r.schedules[name] = s
	}
	for _, a := range d.Config.Accounts {
		r.accounts[a.ID] = a
		perSec, burst := RateFor(rc, a.Provider)
		r.lanes[a.ID] = newLane(rate.NewLimiter(rate.Limit(perSec), burst))
	}
	return r, nil
}

// RateFor is the token bucket of each account of provider:
// reconciler.providers.{provider}.rate_per_second / rate_burst where set
// (non-zero), else reconciler.rate_per_second / rate_burst (defaults 5/s
// and 10). The buckets are per replica: N replicas allow N× the rate.
func RateFor(rc config.Reconciler, provider string) (perSecond float64, burst int) {
	perSecond, burst = rc.RatePerSecond, rc.RateBurst
	if o := rc.Providers[provider]; o.RatePerSecond > 0 {
		perSecond = o.RatePerSecond
	}
	if o := rc.Providers[provider]; o.RateBurst > 0 {
		burst = o.RateBurst
	}
	if perSecond <= 0 {
		perSecond = 5
	}
	return perSecond, max(burst, 1)
}

// ScheduleFor is the poll schedule of provider's watches.
func (r *Reconciler) ScheduleFor(provider string) Schedule { return r.schedules[provider] }

// Run ensures PAYHOOK_RECONCILE and the consumers, then takes announcements
// and handles due watches until ctx ends. Then it drains: it stops taking
// messages, lets in-flight watches finish (each saved, closed or left to be
// redelivered after AckWait; bounded by DrainTimeout) and returns nil. It
// returns an error only when it cannot start.
func (r *Reconciler) Run(ctx context.Context) error {
	err := r.run(ctx)
	if err != nil && ctx.Err() != nil {
		return nil // stopped while starting: nothing was taken, nothing to drain
	}
	return err
}

func (r *Reconciler) run(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := EnsureQueue(sctx, r.js, r.cfg.NATS)
	if err != nil {
		return err
	}
	sched, err := stream.CreateOrUpdateConsumer(sctx, ConsumerConfig(r.opt.AckWait))
	if err != nil {
		return fmt.Errorf("%w: consumer %s: %v", natsbus.ErrUnavailable, ConsumerSchedule, err)
	}
	intake, err := r.js.CreateOrUpdateConsumer(sctx, natsbus.StreamWatch, IntakeConfig())
	if err != nil {
		return fmt.Errorf("%w: consumer %s: %v", natsbus.ErrUnavailable, ConsumerIntake, err)
	}
	closer, err := r.js.CreateOrUpdateConsumer(sctx, natsbus.StreamEvents, CloserConfig())
	if err != nil {
		return fmt.Errorf("%w: consumer %s: %v", natsbus.ErrUnavailable, ConsumerCloser, err)
	}
	kv, err := WatchKV(sctx, r.js, r.cfg.NATS, r.cfg.Reconciler.WatchRetention.D())
	if err != nil {
		return err
	}
	// The per-order index that payhookctl trace reads: the reconciler owns
	// PAYHOOK_TRACE and indexes events and raw requests into it.
	if err := trace.Ensure(sctx, r.js, r.cfg.NATS); err != nil {
		return err
	}
	indexer, err := trace.StartIndexer(sctx, r.js, r.log)
	if err != nil {
		return err
	}
	defer indexer.Stop()
	cancel()
	r.queue = stream
	r.records.Store(&kvHandle{kv})

	// In-flight work is not cut short by shutdown: a poll that started
	// finishes (bounded by PollTimeout) and its outcome is saved.
	work := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	sem := make(chan struct{}, r.opt.Workers)
	schedCC, err := sched.Consume(func(msg jetstream.Msg) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			// A handler gives its worker back as soon as it goes on to wait
			// for a token or poll (lane.go): workers only triage.
			var once sync.Once
			release := func() { once.Do(func() { <-sem }) }
			defer func() { release(); wg.Done() }()
			r.handle(work, msg, release)
		}()
	}, jetstream.PullMaxMessages(triageBuffer(r.opt.Workers)), jetstream.ConsumeErrHandler(r.consumeErr(ConsumerSchedule)))
	if err != nil {
		return fmt.Errorf("%w: consume %s: %v", natsbus.ErrUnavailable, ConsumerSchedule, err)
	}
	intakeCC, err := intake.Consume(func(msg jetstream.Msg) { r.handleIntake(work, msg) },
		jetstream.PullMaxMessages(64), jetstream.ConsumeErrHandler(r.consumeErr(ConsumerIntake)))
	if err != nil {
		schedCC.Stop()
		return fmt.Errorf("%w: consume %s: %v", natsbus.ErrUnavailable, ConsumerIntake, err)
	}
	closerCC, err := closer.Consume(func(msg jetstream.Msg) { r.handleEvent(work, msg) },
		jetstream.PullMaxMessages(64), jetstream.ConsumeErrHandler(r.consumeErr(ConsumerCloser)))
	if err != nil {
		schedCC.Stop()
		intakeCC.Stop()
		return fmt.Errorf("%w: consume %s: %v", natsbus.ErrUnavailable, ConsumerCloser, err)
	}
	gaugesDone := make(chan struct{})
	go func() {
		defer close(gaugesDone)
		r.refreshGauges(ctx, stream)
	}()
	r.log.Info("reconciler running", "workers", r.opt.Workers)

	<-ctx.Done()
	// Teardown: stop pulling new messages (buffered ones are still handled),
	// wait for the handlers, then stop the gauges. NATS is closed by the caller.
	intakeCC.Drain()
	closerCC.Drain()
	schedCC.Drain()
	done := make(chan struct{})
	go func() {
		<-intakeCC.Closed()
		<-closerCC.Closed()
		<-schedCC.Closed()
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(r.opt.DrainTimeout):
		r.log.Warn("reconciler drain timed out; unfinished watches are redelivered after the ack wait")
	}
	<-gaugesDone
	return nil
}

// consumeErr logs what the pull consumer reports (missed heartbeats, a
// NATS reconnect): the consumer recovers by itself and the watches wait on
// the server meanwhile.
func (r *Reconciler) consumeErr(name string) jetstream.ConsumeErrHandler {
	return func(_ jetstream.ConsumeContext, err error) {
		r.log.Warn("reconciler consumer", "consumer", name, "err", err)
	}
}

// Open opens a watch for req, announced at openedAt (source "subject" or
// "api"). It returns the watch id, and created false when a watch for the
// order was already open (the announcement is idempotent). req must be
// valid (Request.Validate). Errors wrap natsbus.ErrUnavailable.
func (r *Reconciler) Open(ctx context.Context, req Request, openedAt time.Time, source string) (string, bool, error) {
	w := &Watch{
		ID:       WatchID(req.Provider, req.Account, req.Kind, req.MerchantOrderID),
		Provider: req.Provider, Account: req.Account, Kind: req.Kind,
		MerchantOrderID: req.MerchantOrderID, ProviderOrderID: req.ProviderOrderID,
		Source: source, OpenedAt: openedAt.UTC(),
	}
	if req.ExpiresAt != nil {
		w.ExpiresAt = req.ExpiresAt.UTC()
	}
	if req.Amount != "" {
		m, err := req.money(r.accounts[req.Account])
		if err != nil {
			return "", false, fmt.Errorf("%w: amount", ErrInvalidRequest) // Validate lets none through
		}
		w.Amount = &m
	}
	r.schedules[w.Provider].open(w)
	if err := r.admit(ctx, w); err != nil {
		if errors.Is(err, ErrTooManyWatches) {
			r.m.rejected.WithLabelValues(source, RejectedAccountCap).Inc()
		}
		return "", false, err
	}
	err := putWatch(ctx, r.js, w, 0)
	switch {
	case errors.Is(err, errExists):
		return w.ID, false, nil
	case err != nil:
		return "", false, err
	}
	r.opened(w.Account)
	r.m.opened.WithLabelValues(w.Provider, source).Inc()
	r.record(w, StateOpen, "")
	r.poke()
	r.log.Info("watch opened", append(w.attrs(), "source", source)...)
	return w.ID, true, nil
}

// handleIntake turns one payhook.watch.{provider} message into a watch.
func (r *Reconciler) handleIntake(ctx context.Context, msg jetstream.Msg) {
	provider, _ := events.ParseWatchSubject(msg.Subject())
	req, err := ParseRequest(msg.Data())
	if err == nil {
		if req.Provider != "" && req.Provider != provider {
			err = fmt.Errorf("%w: provider %q in the body, %q in the subject", ErrInvalidRequest, truncate(req.Provider, 32), truncate(provider, 32))
		}
		req.Provider = provider
	}
	if err == nil {
		err = req.Validate(r.accounts, r.provs)
	}
	if err != nil {
		r.m.rejected.WithLabelValues("subject", "invalid").Inc()
		r.log.Warn("watch announcement refused", "subject", truncate(msg.Subject(), 64), "err", err)
		_ = msg.TermWithReason("invalid watch")
		return
	}
	openedAt := r.now()
	if md, err := msg.Metadata(); err == nil && md.Timestamp.Before(openedAt) {
		openedAt = md.Timestamp
	}
	// An announcement delivered late (the reconciler was down, or its intake
	// consumer is new on an old stream) is still chased in full: its first
	// poll is due at once, since callbacks are lost in outages too.
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, _, err := r.Open(octx, req, openedAt, "subject"); errors.Is(err, ErrTooManyWatches) {
		r.log.Warn("watch announcement refused: the account's open watches are at reconciler.max_watches_per_account",
			"provider", provider, "account", req.Account, "order_id", req.MerchantOrderID)
		_ = msg.TermWithReason("account watch cap")
		return
	} else if err != nil {
		r.log.Warn("watch not opened; retrying", "provider", provider, "order_id", req.MerchantOrderID, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	_ = msg.Ack()
}

// outcome is what handling a due watch decided.
type outcome struct {
	kind   int // see below
	by     string
	reason string
	delay  time.Duration
}

const (
	outSave   = iota // the watch's state changed: replace its message
	outClose         // the order has its terminal event
	outExpire        // the watch is over without one
	outDefer         // try again after delay, state unchanged
)

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

func (r *Reconciler) apply(ctx context.Context, msg jetstream.Msg, seq uint64, w *Watch, out outcome) {
	switch out.kind {
	case outClose:
		// Deleted by its sequence rather than only acknowledged, so that of
		// this handler and the closer (closer.go) exactly one counts the close.
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
			r.closed(w, out.by, "due")
		} else {
			r.untrack(w.ID) // closed by the closer meanwhile, which counted it
		}
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
}

// step handles a due watch; see the package comment for the order of checks.
func (r *Reconciler) step(ctx context.Context, msg jetstream.Msg, w *Watch, now time.Time, release func()) (out outcome) {
	sched := r.schedules[w.Provider]
	q := r.queriers[w.Provider]
	acct, ok := r.accounts[w.Account]
	ln := r.lanes[w.Account]

	// 0. Its slot in its account's lane (lane.go): a watch whose slot is
	// further than MaxRateWait goes back until then without a store round
	// trip, so a flood of due watches is triaged at the consumer's pace.
	if ln != nil && q != nil && ok {
		if wait := ln.slot(w.ID, now).Sub(now); wait > r.opt.MaxRateWait {
			r.m.rateLimited.WithLabelValues(w.Provider).Inc()
			return outcome{kind: outDefer, delay: wait}
		}
	}
	over := ExpiredSchedule
	if w.Unrecoverable {
		over = ExpiredUnrecoverable
	}
	save := func(reason string) outcome {
		if reason != "" {
			return outcome{kind: outExpire, reason: reason}
		}
		return outcome{kind: outSave}
	}

	// 1. Does the order have its terminal event already (from anyone)?
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	st, err := orderState(dctx, r.store, w)
	cancel()
	if err != nil {
		// Without the store, a synthesized event could duplicate a callback
		// older than JetStream's duplicate window: wait for the store.
		r.log.Warn("dedupe store unavailable; watch deferred", append(w.attrs(), "err", err)...)
		return outcome{kind: outDefer, delay: min(r.opt.ErrorBase, sched.delay(w.Step))}
	}
	if st.Status.Terminal() {
		if ln != nil {
			ln.forget(w.ID)
		}
		return outcome{kind: outClose, by: r.closedBy(w)}
	}

	// 2. Can the provider be asked at all?
	if q == nil || !ok || ln == nil {
		if !ok {
			r.log.Warn("watch for an account no longer configured", w.attrs()...)
		}
		if reason := sched.advance(w, now, ExpiredUnverifiable); reason != "" {
			if reason == ExpiredSchedule || reason == ExpiredExpiresAt {
				reason = ExpiredUnverifiable
			}
			return outcome{kind: outExpire, reason: reason}
		}
		return outcome{kind: outSave}
	}

	// 3. Within the account's rate limit and its lane (lane.go): the
	// slot of step 0 (a store check can take a while: it is looked at
	// again); a place among the account's polls in flight; then the worker
	// is given back.
	at := ln.slot(w.ID, now)
	wait := at.Sub(r.now())
	if wait > r.opt.MaxRateWait {
		r.m.rateLimited.WithLabelValues(w.Provider).Inc()
		return outcome{kind: outDefer, delay: wait}
	}
	if !ln.acquire(r.opt.Workers) {
		// The account's polls are all in flight (a slow provider): back in
		// laneBusyDelay, the slot kept.
		r.m.rateLimited.WithLabelValues(w.Provider).Inc()
		return outcome{kind: outDefer, delay: laneBusyDelay}
	}
	defer ln.done()
	ln.forget(w.ID)
	release()
	if wait > 0 {
		time.Sleep(wait)
	}

	// 4. Ask. A provider that can resend the callback (mrnpay) is asked
	// to, unless we are past a resend's grace period (then we synthesize).
	resender, resends := r.resenders[w.Provider]
	retrigger := resends && !w.AwaitingRetrigger
	// One span per query (payhook.poll, or payhook.resend when the
	// provider is asked to send the callback again); an event stored from
	// its answer carries its trace to the dispatcher.
	ctx, span := startPoll(ctx, w, retrigger)
	defer func() { endPoll(span, w, out) }()
	_ = msg.InProgress()
	qctx, cancel := context.WithTimeout(ctx, r.opt.PollTimeout)
	start := time.Now()
	if retrigger && r.marks != nil {
		if err := r.marks.Mark(qctx, w.Provider, w.Account, w.Kind, w.MerchantOrderID); err != nil {
			r.log.Warn("retrigger mark not stored; the resent event will say origin callback", append(w.attrs(), "err", err)...)
		}
	}
	ans, err := q.Query(qctx, acct, w.Order(), retrigger)
	cancel()
	w.Polls++
	w.LastPollAt = now.UTC()
	if err != nil && !errors.Is(err, providers.ErrNotFound) {
		w.noteError(err, now)
	}
	if retrigger && r.marks != nil && (err != nil || !ans.Found || !resender.Resends(w.Kind, ans.Status)) {
		// No resend is coming (mrnpay resends successes only).
		if err := r.marks.Unmark(context.WithoutCancel(ctx), w.Provider, w.Account, w.Kind, w.MerchantOrderID); err != nil {
			r.log.Debug("retrigger mark not removed", append(w.attrs(), "err", err)...)
		}
	}
	r.m.pollSeconds.WithLabelValues(w.Provider).Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, providers.ErrUnsupported):
		r.m.polls.WithLabelValues(w.Provider, PollUnsupported).Inc()
		return outcome{kind: outExpire, reason: ExpiredUnsupported}
	case errors.Is(err, providers.ErrNotFound):
		ans, err = providers.QueryResult{Found: false}, nil
	case err != nil:
		r.m.polls.WithLabelValues(w.Provider, PollError).Inc()
		r.log.WarnContext(ctx, "poll failed; backing off", append(w.attrs(), "errors", w.Errors+1, "err", err)...)
		return save(sched.retry(w, now))
	}
	if !ans.Found {
		r.m.polls.WithLabelValues(w.Provider, PollNotFound).Inc()
		return save(sched.advance(w, now, over))
	}
	if !ans.Status.Terminal() {
		r.m.polls.WithLabelValues(w.Provider, PollPending).Inc()
		return save(sched.advance(w, now, over))
	}
	r.m.polls.WithLabelValues(w.Provider, PollTerminal).Inc()

	// 5. Terminal, and no event yet.
	if retrigger && resender.Resends(w.Kind, ans.Status) {
		// The provider resends this answer's callback; give it the grace
		// period to come through ingress, the verified path.
		r.m.retriggers.WithLabelValues(w.Provider).Inc()
		r.log.InfoContext(ctx, "callback re-triggered", w.attrs()...)
		sched.awaitRetrigger(w, now)
		return outcome{kind: outSave}
	}
	if ans.Event == nil && w.Amount != nil && needs(r.provs, w.Provider).Amount {
		// No callback is coming: a resend asked for did not arrive within
		// the grace period, or the order failed (mrnpay calls back successes
		// only). The provider vouches for the status, the announcement for
		// the amount (Watch.event).
		ans.Event = w.event(ans.Status, now)
	}
	if ans.Event == nil {
		r.m.unrecoverable.WithLabelValues(w.Provider).Inc()
		if resends && resender.Resends(w.Kind, ans.Status) {
			// The resend asked for did not arrive within the grace period,
			// and the watch has no amount to synthesize the event with: the
			// next step asks again (docs/reconciler.md).
			r.log.WarnContext(ctx, "re-triggered callback not received within the grace period and no amount announced; asking again at the next step",
				append(w.attrs(), "step", w.Step+1)...)
		} else {
			r.log.WarnContext(ctx, "terminal status without an event to synthesize (no amount in the answer nor the watch)", append(w.attrs(), "status", ans.Status)...)
		}
		w.Unrecoverable = true
		return save(sched.advance(w, now, ExpiredUnrecoverable))
	}
	ev := *ans.Event
	ev.Origin = events.OriginPoll
	if ev.Provider != w.Provider || ev.Account != w.Account || ev.Kind != w.Kind {
		r.m.unrecoverable.WithLabelValues(w.Provider).Inc()
		r.log.ErrorContext(ctx, "query answer is about another order; not published", w.attrs()...)
		w.Unrecoverable = true
		return save(sched.advance(w, now, ExpiredUnrecoverable))
	}
	if ev.MerchantOrderID == "" {
		ev.MerchantOrderID = w.MerchantOrderID
	}
	verdict, err := r.pub.Store(ctx, &ev)
	if err != nil {
		r.log.WarnContext(ctx, "synthesized event not stored; retrying", append(w.attrs(), "event_id", ev.ID(), "err", err)...)
		w.noteError(fmt.Errorf("event not stored: %w", err), now)
		return save(sched.retry(w, now))
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
