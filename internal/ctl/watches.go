package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/reconcile"
	"github.com/payhook/payhook/pkg/events"
)

// watchStates are the states watches ls --state accepts.
var watchStates = []string{reconcile.StateOpen, reconcile.StateClosed, reconcile.StateExpired, reconcile.StateCancelled}

// records opens the watch record bucket; ok is false when it does not
// exist yet (no reconciler has run).
func (g *common) records(ctx context.Context) (jetstream.KeyValue, bool, error) {
	kv, err := g.js.KeyValue(ctx, reconcile.WatchBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: kv %s: %v", natsbus.ErrUnavailable, reconcile.WatchBucket, err)
	}
	return kv, true, nil
}

func watchesList(ctx context.Context, g *common, args []string) error {
	fs := g.flags("watches ls")
	provider := fs.String("provider", "", "only this provider's watches")
	account := fs.String("account", "", "only this account's watches")
	state := fs.String("state", "", "only watches in this state: "+strings.Join(watchStates, ", "))
	ctx, done, _, err := g.start(ctx, fs, args, 0)
	if err != nil {
		return err
	}
	defer done()
	if *state != "" && !slices.Contains(watchStates, *state) {
		return usageErr("--state: one of " + strings.Join(watchStates, ", "))
	}
	out := []reconcile.WatchRecord{}
	kv, ok, err := g.records(ctx)
	if err != nil {
		return err
	}
	if ok {
		err = reconcile.ListRecords(ctx, kv, func(rec reconcile.WatchRecord) {
			if (*provider == "" || rec.Provider == *provider) && (*account == "" || rec.Account == *account) && (*state == "" || rec.State == *state) {
				out = append(out, rec)
			}
		})
		if err != nil {
			return err
		}
	}
	slices.SortFunc(out, func(a, b reconcile.WatchRecord) int { return a.OpenedAt.Compare(b.OpenedAt) })
	counts := map[string]int{}
	for _, r := range out {
		counts[r.State]++
	}
	return g.emit(map[string]any{"watches": out, "counts": counts}, func(w io.Writer) {
		fmt.Fprintln(w, "WATCH ID\tPROVIDER\tACCOUNT\tKIND\tORDER\tSTATE\tPOLLS\tNEXT POLL\tOUTCOME\tLAST ERROR")
		for _, r := range out {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.ID, r.Provider, r.Account, r.Kind, r.MerchantOrderID,
				r.State, r.Polls, ts(r.NextPoll), dash(r.Outcome), dash(r.LastError))
		}
		fmt.Fprintf(w, "%d watches", len(out))
		for _, s := range watchStates {
			if counts[s] > 0 {
				fmt.Fprintf(w, ", %d %s", counts[s], s)
			}
		}
		fmt.Fprintln(w)
	})
}

// watchRef is a watch named on the command line: by id, or by provider,
// account and merchant order id (with --kind).
type watchRef struct {
	id, provider, account string
}

func watchFlags(fs *flag.FlagSet) *string {
	return fs.String("kind", string(events.KindPayin), "order kind when the watch is named by order: payin, payout or appeal")
}

// resolve turns the positional arguments into a watch reference. A bare
// watch id is looked up in the records for its provider.
func (g *common) resolve(ctx context.Context, pos []string, kind string) (watchRef, error) {
	switch len(pos) {
	case 3:
		if !g.hasAccount(pos[0], pos[1]) {
			return watchRef{}, usageErr(fmt.Sprintf("no account %q of provider %q in the config", pos[1], pos[0]))
		}
		k := events.Kind(kind)
		if !k.Valid() {
			return watchRef{}, usageErr("--kind: payin, payout or appeal")
		}
		return watchRef{id: reconcile.WatchID(pos[0], pos[1], k, pos[2]), provider: pos[0], account: pos[1]}, nil
	case 1:
		if !watchIDPattern.MatchString(pos[0]) {
			return watchRef{}, usageErr("a watch id is wch_ and 32 hex digits (or name the watch by PROVIDER ACCOUNT ORDER_ID)")
		}
		kv, ok, err := g.records(ctx)
		if err != nil {
			return watchRef{}, err
		}
		if !ok {
			return watchRef{}, fmt.Errorf("%w: %s (no watch record yet; name it by PROVIDER ACCOUNT ORDER_ID)", reconcile.ErrWatchNotFound, pos[0])
		}
		rec, err := reconcile.GetRecord(ctx, kv, pos[0])
		if err != nil {
			return watchRef{}, err
		}
		return watchRef{id: rec.ID, provider: rec.Provider, account: rec.Account}, nil
	}
	return watchRef{}, usageErr("name the watch: WATCH_ID, or PROVIDER ACCOUNT MERCHANT_ORDER_ID [--kind K]")
}

var watchIDPattern = regexp.MustCompile(`^wch_[0-9a-f]{32}$`)

// hasAccount reports whether the config has account id of provider.
func (g *common) hasAccount(provider, id string) bool {
	for _, a := range g.cfg.Accounts {
		if a.ID == id && a.Provider == provider {
			return true
		}
	}
	return false
}

func watchesGet(ctx context.Context, g *common, args []string) error {
	fs := g.flags("watches get")
	kind := watchFlags(fs)
	ctx, done, pos, err := g.start(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	ref, err := g.resolve(ctx, pos, *kind)
	if err != nil {
		return err
	}
	rec, err := g.watchRecord(ctx, ref)
	if err != nil {
		return err
	}
	return g.emit(rec, func(w io.Writer) { printWatch(w, rec) })
}

// watchRecord returns the record of ref; an open watch without a record
// yet (opened before records were kept) is read from the queue.
func (g *common) watchRecord(ctx context.Context, ref watchRef) (reconcile.WatchRecord, error) {
	kv, ok, err := g.records(ctx)
	if err != nil {
		return reconcile.WatchRecord{}, err
	}
	if ok {
		rec, err := reconcile.GetRecord(ctx, kv, ref.id)
		if err == nil || !errors.Is(err, reconcile.ErrWatchNotFound) {
			return rec, err
		}
	}
	w, err := reconcile.OpenWatch(ctx, g.js, ref.provider, ref.account, ref.id)
	if err != nil {
		return reconcile.WatchRecord{}, err
	}
	return reconcile.WatchRecord{Watch: *w, State: reconcile.StateOpen, NextPoll: w.DueAt}, nil
}

func printWatch(w io.Writer, r reconcile.WatchRecord) {
	row := func(k, v string) { fmt.Fprintf(w, "%s\t%s\n", k, v) }
	row("watch", r.ID)
	row("order", fmt.Sprintf("%s/%s %s %s", r.Provider, r.Account, r.Kind, r.MerchantOrderID))
	row("state", r.State)
	row("opened", ts(r.OpenedAt)+" ("+r.Source+")")
	row("polls", fmt.Sprintf("%d, last %s", r.Polls, ts(r.LastPollAt)))
	if r.State == reconcile.StateOpen {
		row("next poll", ts(r.NextPoll))
	} else {
		row("ended", ts(r.ClosedAt)+": "+dash(r.Outcome))
	}
	if r.LastError != "" {
		row("last error", ts(r.LastErrorAt)+" "+r.LastError)
	}
	if !r.RetriggeredAt.IsZero() {
		row("retriggered", ts(r.RetriggeredAt))
	}
}

func watchesPollNow(ctx context.Context, g *common, args []string) error {
	fs := g.flags("watches poll-now")
	kind := watchFlags(fs)
	dry := fs.Bool("dry-run", false, "show the watch, change nothing")
	ctx, done, pos, err := g.start(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	ref, err := g.resolve(ctx, pos, *kind)
	if err != nil {
		return err
	}
	kv, _, err := g.records(ctx)
	if err != nil {
		return err
	}
	var w *reconcile.Watch
	if *dry {
		w, err = reconcile.OpenWatch(ctx, g.js, ref.provider, ref.account, ref.id)
	} else {
		w, err = reconcile.PollNow(ctx, g.js, kv, ref.provider, ref.account, ref.id, time.Now())
	}
	if err != nil {
		return err
	}
	return g.emit(map[string]any{"watch_id": w.ID, "due_at": w.DueAt, "dry_run": *dry}, func(out io.Writer) {
		if *dry {
			fmt.Fprintf(out, "would make watch %s due now (it is due %s)\n", w.ID, ts(w.DueAt))
			return
		}
		fmt.Fprintf(out, "watch %s is due now: a reconciler polls %s for order %s within seconds\n", w.ID, w.Provider, w.MerchantOrderID)
	})
}

func watchesCancel(ctx context.Context, g *common, args []string) error {
	fs := g.flags("watches cancel")
	kind := watchFlags(fs)
	reason := fs.String("reason", "cancelled by an operator", "why (kept in the watch record)")
	dry := fs.Bool("dry-run", false, "show the watch, change nothing")
	ctx, done, pos, err := g.start(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	if len(*reason) > 200 {
		return usageErr("--reason: at most 200 bytes")
	}
	ref, err := g.resolve(ctx, pos, *kind)
	if err != nil {
		return err
	}
	kv, _, err := g.records(ctx) // nil without records: the cancel is then not recorded
	if err != nil {
		return err
	}
	var w *reconcile.Watch
	if *dry {
		w, err = reconcile.OpenWatch(ctx, g.js, ref.provider, ref.account, ref.id)
	} else {
		w, err = reconcile.Cancel(ctx, g.js, kv, ref.provider, ref.account, ref.id, *reason, time.Now())
	}
	if err != nil {
		return err
	}
	return g.emit(map[string]any{"watch_id": w.ID, "cancelled": !*dry, "reason": *reason, "dry_run": *dry}, func(out io.Writer) {
		verb := "cancelled"
		if *dry {
			verb = "would cancel"
		}
		fmt.Fprintf(out, "%s watch %s (%s/%s %s): %s\n", verb, w.ID, w.Provider, w.Account, w.MerchantOrderID, *reason)
	})
}
