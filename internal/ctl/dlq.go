package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/dispatch"
)

func usageErr(msg string) error { return &cli.UsageError{Err: errors.New(msg)} }

// subscriberArg is the subscriber named by --subscriber or the one
// positional argument; it must be one of the config's subscribers.
func (g *common) subscriberArg(flagVal string, pos []string) (string, error) {
	var sub string
	switch {
	case flagVal != "" && len(pos) == 0:
		sub = flagVal
	case flagVal == "" && len(pos) == 1:
		sub = pos[0]
	default:
		return "", usageErr("name one subscriber (SUBSCRIBER or --subscriber S)")
	}
	if _, err := g.subscriber(sub); err != nil {
		return "", err
	}
	return sub, nil
}

func dlqList(ctx context.Context, g *common, args []string) error {
	fs := g.flags("dlq ls")
	subFlag := fs.String("subscriber", "", "subscriber id")
	ctx, done, pos, err := g.start(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	sub, err := g.subscriberArg(*subFlag, pos)
	if err != nil {
		return err
	}
	dls, err := dispatch.ListDLQ(ctx, g.js, sub)
	if err != nil {
		return err
	}
	if dls == nil {
		dls = []dispatch.DeadLetter{}
	}
	return g.emit(map[string]any{"subscriber": sub, "dead_letters": dls}, func(w io.Writer) {
		fmt.Fprintln(w, "EVENT ID\tDEAD-LETTERED\tATTEMPTS\tLAST STATUS\tLAST ERROR\tREPLAYS")
		for _, dl := range dls {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%d\n", dl.EventID, ts(dl.At), dl.Attempts, dl.LastStatus, dash(dl.LastError), dl.Replays)
		}
	})
}

func dlqReplay(ctx context.Context, g *common, args []string) error {
	fs := g.flags("dlq replay")
	subFlag := fs.String("subscriber", "", "subscriber id")
	var ids multiFlag
	fs.Var(&ids, "event-id", "event id to replay (repeatable; default every dead letter of the subscriber)")
	dry := fs.Bool("dry-run", false, "list what would be replayed, change nothing")
	ctx, done, pos, err := g.start(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	sub, err := g.subscriberArg(*subFlag, pos)
	if err != nil {
		return err
	}
	var res dispatch.ReplayResult
	if *dry {
		dls, err := dispatch.ListDLQ(ctx, g.js, sub)
		if err != nil {
			return err
		}
		res.Missing = []string{}
		seen := map[string]bool{}
		for _, dl := range dls {
			if (len(ids) == 0 || slices.Contains(ids, dl.EventID)) && !seen[dl.EventID] {
				seen[dl.EventID] = true
				res.Replayed++
			}
		}
		for _, id := range ids {
			if !seen[id] {
				res.Missing = append(res.Missing, id)
			}
		}
	} else {
		if res, err = dispatch.Replay(ctx, g.js, sub, ids); err != nil {
			return err
		}
	}
	return g.emit(map[string]any{"subscriber": sub, "replayed": res.Replayed, "missing": res.Missing, "dry_run": *dry}, func(w io.Writer) {
		verb := "replayed"
		if *dry {
			verb = "would replay"
		}
		fmt.Fprintf(w, "%s %d dead letters of %s (same webhook-id)\n", verb, res.Replayed, sub)
		for _, id := range res.Missing {
			fmt.Fprintf(w, "no dead letter for %s\n", id)
		}
	})
}
