package dispatch

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
)

// roster is the dispatcher's workers. It is never changed in place: a
// reload stores a new one, so readers take a snapshot without a lock.
type roster struct {
	workers []*worker
	byID    map[string]*worker
}

func (d *Dispatcher) roster() *roster { return d.rost.Load() }

// runState is what Run lends the workers that a reload adds while it runs.
type runState struct {
	ctx  context.Context
	hard context.Context
	bg   func(func())
}

// start runs a worker's loops under Run, in a context of the worker's own
// so that a reload can stop it alone (stopWorker).
func (r *runState) start(w *worker) {
	ctx, cancel := context.WithCancel(r.ctx)
	w.hard, w.stop = r.hard, cancel
	for _, f := range []func(){
		func() { w.fetchLoop(ctx, false) },
		func() { w.fetchLoop(ctx, true) },
		func() { w.keepAlive(ctx) },
	} {
		w.loops.Add(1)
		r.bg(func() { defer w.loops.Done(); f() })
	}
}

// ReloadResult says what a reload did with the subscribers of the new config.
type ReloadResult struct {
	// Added are delivering now, from their start.
	Added []string
	// Changed deliver with their new settings from now on: attempts that
	// begin after the reload use the new url, secrets, timeout, backoff,
	// max_attempts and rate limit; the filter applies to events fetched
	// from now on. Attempts in flight finish as they began.
	Changed []string
	// Removed are no longer delivered to by this replica. Their consumers,
	// position, pause and dead letters are kept (see Retire).
	Removed []string
}

// RestartError refuses a reload that changes keys only a restart applies.
type RestartError struct {
	Keys []string
}

func (e *RestartError) Error() string {
	return "these keys change only with a restart: " + strings.Join(e.Keys, ", ")
}

// restartKeys lists the keys the dispatcher reads once, at start, that
// differ between the running config and next. Keys that only other
// services read (accounts, ingress, reconciler, redis, dedupe) are not
// compared: the services share one file. A subscriber's concurrency sizes
// its worker's slots and fetch cap when the worker is made, so it is
// compared with the running worker's: a subscriber not running here (new,
// or removed by an earlier reload) may have any.
func restartKeys(running *config.Config, cur *roster, next *config.Config) []string {
	var keys []string
	for _, k := range []struct {
		key  string
		a, b any
	}{
		{"nats", running.NATS, next.NATS},
		{"dispatcher", running.Dispatcher, next.Dispatcher},
		{"admin_token", running.AdminToken, next.AdminToken},
		{"event_signing", running.EventSigning, next.EventSigning},
		{"log", running.Log, next.Log},
		{"tracing", running.Tracing, next.Tracing}, // cmd/dispatcher starts the exporter once
	} {
		if !reflect.DeepEqual(k.a, k.b) {
			keys = append(keys, k.key)
		}
	}
	for i, s := range next.Subscribers {
		if w := cur.byID[s.ID]; w != nil && w.concurrency() != s.Concurrency {
			keys = append(keys, fmt.Sprintf("subscribers[%d].concurrency (%s)", i, s.ID))
		}
	}
	return keys
}

// Reload applies cfg to the running dispatcher without draining anything:
//   - a new subscriber gets its consumers and starts delivering at once,
//     from its `start`, as at a start-up;
//   - a changed subscriber gets its new settings for the attempts that
//     begin from now on, and its consumers are updated in place (filter
//     subjects, AckWait); in-flight attempts finish as they began;
//   - a subscriber gone from cfg stops being delivered to by this replica:
//     it stops fetching, gives back what it held, lets its in-flight
//     attempts finish, and hands its pin over. Its consumers are kept, as
//     at every start (a dispatcher never deletes a consumer because its
//     config lacks the subscriber).
//
// A cfg that changes a key read only at start (nats, dispatcher,
// admin_token, event_signing, log, tracing, the concurrency of a subscriber
// running here) is refused whole with a *RestartError, and so is one whose
// subscriber secrets do not decode: nothing is changed then. A reload that
// went through becomes the running config the next one is compared with.
func (d *Dispatcher) Reload(ctx context.Context, cfg *config.Config) (ReloadResult, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	res := ReloadResult{Added: []string{}, Changed: []string{}, Removed: []string{}}
	cur := d.roster()
	if keys := restartKeys(d.cfg, cur, cfg); len(keys) > 0 {
		return res, &RestartError{Keys: keys}
	}
	p, err := planReload(cur, cfg)
	if err != nil {
		return res, err
	}
	var add []*worker
	for _, s := range p.fresh {
		w, err := d.newWorker(ctx, s)
		if err != nil {
			return res, fmt.Errorf("subscriber %s: %w", s.ID, err)
		}
		add = append(add, w)
		res.Added = append(res.Added, s.ID)
	}
	for _, c := range p.changes {
		c.w.apply(ctx, c.set)
		res.Changed = append(res.Changed, c.w.id)
	}
	next := &roster{byID: map[string]*worker{}}
	var gone []*worker
	for _, w := range cur.workers {
		if !p.seen[w.id] {
			gone = append(gone, w)
			res.Removed = append(res.Removed, w.id)
			continue
		}
		next.workers = append(next.workers, w)
		next.byID[w.id] = w
	}
	for _, w := range add {
		next.workers = append(next.workers, w)
		next.byID[w.id] = w
		// Its pause, if one was set before it was configured here: the
		// pause watch saw that key before this worker existed.
		if e, err := d.kv.Get(ctx, w.id); err == nil {
			w.setPaused(true, decodePause(e.Value()))
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			d.log.Warn("pause of an added subscriber not read", "subscriber", w.id, "err", err)
		}
	}
	// Stored under runMu: either Run has started and this starts and stops
	// workers, or Run starts the new roster.
	d.runMu.Lock()
	d.rost.Store(next)
	if d.run != nil {
		for _, w := range add {
			d.run.start(w)
		}
		for _, w := range gone {
			d.stopWorker(w)
		}
	}
	d.runMu.Unlock()
	d.cfg = cfg
	return res, nil
}

// reloadPlan is what a config changes in the roster.
type reloadPlan struct {
	fresh   []config.Subscriber // not running here yet
	changes []settingsChange
	seen    map[string]bool // every subscriber id of the config
}

type settingsChange struct {
	w   *worker
	set *settings
}

// planReload compares cfg's subscribers with the running ones. It builds
// every new and changed subscriber's settings first, so a secret that does
// not decode refuses the reload before anything changes.
func planReload(cur *roster, cfg *config.Config) (reloadPlan, error) {
	p := reloadPlan{seen: map[string]bool{}}
	for _, s := range cfg.Subscribers {
		p.seen[s.ID] = true
		w := cur.byID[s.ID]
		if w != nil && reflect.DeepEqual(w.settings().sub, s) {
			continue
		}
		set, err := newSettings(s)
		if err != nil {
			return p, err
		}
		if w == nil {
			p.fresh = append(p.fresh, s)
		} else {
			p.changes = append(p.changes, settingsChange{w, set})
		}
	}
	return p, nil
}

// apply gives a running worker new settings, for the attempts that begin
// from now on, and updates its consumers in place (filter subjects,
// AckWait). A consumer found gone is recreated as checkConsumer does, and
// one reported missing stops being reported once it exists.
func (w *worker) apply(ctx context.Context, set *settings) {
	w.set.Store(set)
	for _, replay := range []bool{false, true} {
		w.fix.Lock()
		_, err := w.fixConsumer(ctx, replay)
		w.fix.Unlock()
		if err != nil {
			// The settings apply anyway; the consumer keeps its filter
			// subjects and AckWait until it is next updated.
			w.log.Warn("reload: consumer not updated", "replay", replay, "err", err)
		}
	}
}

// stopWorker stops a running worker whose subscriber a reload removed;
// callers hold runMu while Run runs. Its in-flight attempts finish (Run
// waits for them at shutdown too); what it held goes back to JetStream.
// It is in d.stopped until then, and dropped from it once stopped, so
// that its maps go with it.
func (d *Dispatcher) stopWorker(w *worker) {
	w.stop()
	d.stopped = append(d.stopped, w)
	go func() {
		w.loops.Wait()
		w.giveBackIdle(nil)
		w.inflight.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		w.unpin(ctx)
		d.runMu.Lock()
		if d.roster().byID[w.id] == nil {
			// Not re-added meanwhile: a new worker of the same id owns
			// the gauge from its first fetch.
			d.m.active.WithLabelValues(w.id).Set(0)
		}
		d.stopped = slices.DeleteFunc(d.stopped, func(x *worker) bool { return x == w })
		d.runMu.Unlock()
		w.log.Info("subscriber removed from the config: no longer delivered by this replica; its consumers are kept")
	}()
}

// allWorkers is the roster's workers and those a reload is stopping while
// Run runs, whose in-flight attempts the drain also waits for.
func (d *Dispatcher) allWorkers() []*worker {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	return append(slices.Clone(d.roster().workers), d.stopped...)
}

// reloadTimeout bounds one reload (consumers of the added subscribers).
const reloadTimeout = 30 * time.Second
