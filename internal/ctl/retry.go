package ctl

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/payhook/payhook/internal/dispatch"
)

// retryCommand asks the dispatchers (POST /v1/subscribers/{id}/retry,
// admin token) to attempt now the events of a subscriber waiting in
// backoff: the dispatcher it calls passes the request to every replica,
// since only the replica that attempted an event knows it waits.
func retryCommand(ctx context.Context, g *common, args []string) error {
	fs := g.flags("retry")
	subscriber := fs.String("subscriber", "", "subscriber whose events in backoff to attempt now (required)")
	var ids multiFlag
	fs.Var(&ids, "event", "event id to attempt now (repeatable)")
	all := fs.Bool("all", false, "every event of the subscriber waiting in backoff")
	dry := fs.Bool("dry-run", false, "list the events in backoff without attempting them")
	dispatcherURL := fs.String("dispatcher", "", "dispatcher base URL (default http:// + dispatcher.listen)")
	ctx, done, _, err := g.start(ctx, fs, args, 0)
	if err != nil {
		return err
	}
	defer done()
	if *subscriber == "" {
		return usageErr("retry: --subscriber is required")
	}
	if *all == (len(ids) > 0) {
		return usageErr("retry: pass --event ID (repeatable) or --all")
	}
	if _, err := g.subscriber(*subscriber); err != nil {
		return err
	}
	if g.cfg.AdminToken == "" {
		return usageErr("retry: admin_token is empty in the config (the dispatcher's admin API is off without it)")
	}
	base := *dispatcherURL
	if base == "" {
		base = "http://" + g.cfg.Dispatcher.Listen
	}
	req := dispatch.RetryRequest{EventIDs: ids, All: *all, DryRun: *dry}
	var res dispatch.RetryResult
	client := &http.Client{Timeout: 30 * time.Second}
	if err := postJSON(ctx, client, base+"/v1/subscribers/"+url.PathEscape(*subscriber)+"/retry", g.cfg.AdminToken, req, &res); err != nil {
		return err
	}
	return g.emit(res, func(w io.Writer) {
		verb := "attempting now"
		if *dry {
			verb = "waiting in backoff (dry run, nothing attempted)"
		}
		fmt.Fprintf(w, "%s: %d events %s (answers from %d dispatcher replicas)\n", res.Subscriber, len(res.Retried), verb, res.Replicas)
		for _, id := range res.Retried {
			fmt.Fprintf(w, "  %s\n", id)
		}
		if len(ids) > len(res.Retried) && !*dry {
			fmt.Fprintln(w, "events not listed are not waiting in backoff on a running replica (delivered, in flight, dead-lettered, or due anyway)")
		}
	})
}
