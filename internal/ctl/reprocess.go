package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/payhook/payhook/internal/ingress"
)

// ReprocessSummary is payhookctl reprocess's document.
type ReprocessSummary struct {
	Provider string         `json:"provider"`
	Account  string         `json:"account,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Since    time.Time      `json:"since"`
	Until    time.Time      `json:"until"`
	Scanned  int            `json:"scanned"`
	Matched  int            `json:"matched"`
	Outcomes map[string]int `json:"outcomes"`
	DryRun   bool           `json:"dry_run"`
}

// reprocessCommand asks ingress (POST /v1/reprocess, admin token) to run
// the rejected requests of a window through today's verification, one day
// at a time. Ingress does the work because it holds the provider keys and
// the event signing key, and is the one storing path for callbacks.
func reprocessCommand(ctx context.Context, g *common, args []string) error {
	fs := g.flags("reprocess")
	provider := fs.String("provider", "", "provider whose rejected requests to run again (required)")
	account := fs.String("account", "", "only this account's")
	sinceF := fs.String("since", "", "start of the window: RFC 3339 time or a duration back from now (required)")
	untilF := fs.String("until", "", "end of the window (default now)")
	reason := fs.String("reason", "", "only requests rejected for this reason (bad_signature, too_old, ...)")
	dry := fs.Bool("dry-run", false, "count outcomes without storing anything")
	ingressURL := fs.String("ingress", "", "ingress base URL (default http:// + ingress.listen)")
	ctx, done, _, err := g.start(ctx, fs, args, 0)
	if err != nil {
		return err
	}
	defer done()
	if *provider == "" || *sinceF == "" {
		return usageErr("reprocess: --provider and --since are required")
	}
	if !g.hasProvider(*provider) {
		return usageErr(fmt.Sprintf("--provider: no account of provider %q in the config", *provider))
	}
	if *account != "" && !g.hasAccount(*provider, *account) {
		return usageErr(fmt.Sprintf("--account: no account %q of provider %q in the config", *account, *provider))
	}
	if g.cfg.AdminToken == "" {
		return usageErr("reprocess: admin_token is empty in the config (ingress's admin API is off without it)")
	}
	since, until, err := parseWindow("reprocess", *sinceF, *untilF)
	if err != nil {
		return err
	}
	base := *ingressURL
	if base == "" {
		base = "http://" + g.cfg.Ingress.Listen
	}
	sum := ReprocessSummary{Provider: *provider, Account: *account, Reason: *reason, Since: since, Until: until, Outcomes: map[string]int{}, DryRun: *dry}
	client := &http.Client{Timeout: 55 * time.Second}
	for from := since; from.Before(until); from = from.Add(24 * time.Hour) {
		to := from.Add(24 * time.Hour)
		if to.After(until) {
			to = until
		}
		req := ingress.ReprocessRequest{Provider: *provider, Account: *account, Since: from, Until: &to, Reason: *reason, DryRun: *dry}
		var res ingress.ReprocessResult
		if err := postJSON(ctx, client, base+"/v1/reprocess", g.cfg.AdminToken, req, &res); err != nil {
			return err
		}
		sum.Scanned += res.Scanned
		sum.Matched += res.Matched
		for k, v := range res.Outcomes {
			sum.Outcomes[k] += v
		}
		if until.Sub(since) > 24*time.Hour {
			g.progress("reprocess: %s – %s: %d matched", ts(from), ts(to), res.Matched)
		}
	}
	return g.emit(sum, func(w io.Writer) {
		verb := "reprocessed"
		if *dry {
			verb = "dry run:"
		}
		fmt.Fprintf(w, "%s %d of %d rejected %s requests received %s – %s\n", verb, sum.Matched, sum.Scanned, sum.Provider, ts(since), ts(until))
		keys := make([]string, 0, len(sum.Outcomes))
		for k := range sum.Outcomes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s\t%d\n", k, sum.Outcomes[k])
		}
	})
}

// postJSON posts v with the admin token and decodes a 200 answer into out;
// any other answer is an error quoting it.
func postJSON(ctx context.Context, c *http.Client, url, token string, v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return usageErr("service URL: " + err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, out)
}
