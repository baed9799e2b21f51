package dispatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
)

// roster is the dispatcher's workers. It is never changed in place: a
// reload that adds subscribers stores a new one, so readers take a
// snapshot without a lock.
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

// start runs a worker's loops under Run.
func (r *runState) start(w *worker) {
	w.hard = r.hard
	r.bg(func() { w.fetchLoop(r.ctx, false) })
	r.bg(func() { w.fetchLoop(r.ctx, true) })
	r.bg(func() { w.keepAlive(r.ctx) })
}

// ReloadResult says what a reload did with the subscribers of the new config.
type ReloadResult struct {
	// Added are delivering now.
	Added []string
	// Pending changed or were removed; the running dispatcher keeps them as
	// they were until it restarts (changing a running worker would have to
	// drain it).
	Pending []string
}

// Reload applies the subscribers of cfg without stopping anything: a new
// subscriber gets its consumers and starts delivering at once (from its
// `start`, as at a start-up); deliveries in flight are not touched. A
// subscriber whose settings changed, or that is gone from cfg, keeps
// running as it is until the next restart and is listed in Pending (a
// removed subscriber's consumer is kept, as at every start). Only
// subscribers reload; other keys of cfg are ignored.
func (d *Dispatcher) Reload(ctx context.Context, cfg *config.Config) (ReloadResult, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	res := ReloadResult{Added: []string{}, Pending: []string{}}
	cur := d.roster()
	seen := map[string]bool{}
	var add []*worker
	for _, s := range cfg.Subscribers {
		seen[s.ID] = true
		if w := cur.byID[s.ID]; w != nil {
			if !reflect.DeepEqual(w.sub, s) {
				res.Pending = append(res.Pending, s.ID)
			}
			continue
		}
		w, err := d.newWorker(ctx, s)
		if err != nil {
			return res, fmt.Errorf("subscriber %s: %w", s.ID, err)
		}
		add = append(add, w)
		res.Added = append(res.Added, s.ID)
	}
	for _, w := range cur.workers {
		if !seen[w.sub.ID] {
			res.Pending = append(res.Pending, w.sub.ID)
		}
	}
	if len(add) == 0 {
		return res, nil
	}
	next := &roster{workers: append(slices.Clone(cur.workers), add...), byID: maps.Clone(cur.byID)}
	for _, w := range add {
		next.byID[w.sub.ID] = w
		// Its pause, if one was set before it was configured here: the
		// pause watch saw that key before this worker existed.
		if e, err := d.kv.Get(ctx, w.sub.ID); err == nil {
			w.setPaused(true, decodePause(e.Value()))
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			d.log.Warn("pause of an added subscriber not read", "subscriber", w.sub.ID, "err", err)
		}
	}
	// Stored under runMu: either Run has started and this starts the new
	// workers, or Run starts them with the rest.
	d.runMu.Lock()
	d.rost.Store(next)
	if d.run != nil {
		for _, w := range add {
			d.run.start(w)
		}
	}
	d.runMu.Unlock()
	return res, nil
}

// reloadTimeout bounds one reload (consumers of the added subscribers).
const reloadTimeout = 30 * time.Second
