package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/pkg/events"
)

// ReplayWindowResult is payhookctl replay's document.
type ReplayWindowResult struct {
	Subscriber string    `json:"subscriber"`
	Since      time.Time `json:"since"`
	Until      time.Time `json:"until"`
	// Scanned counts the events stored in the window (after the subject
	// filters); Matched those that pass the subscriber's filter and the
	// flags; Replayed those queued again (0 on a dry run).
	Scanned  int            `json:"scanned"`
	Matched  int            `json:"matched"`
	Replayed int            `json:"replayed"`
	ByStatus map[string]int `json:"by_status"`
	DryRun   bool           `json:"dry_run"`
}

// parseTime reads an RFC 3339 time or a duration back from now ("2h").
func parseTime(flagName, v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, usageErr(fmt.Sprintf("--%s: an RFC 3339 time (2026-11-23T10:00:00Z) or a duration back from now (2h), got %q", flagName, v))
}

// parseWindow reads the --since and --until flags of command cmd: each an
// RFC 3339 time or a duration back from now; an empty until means now. The
// window must not be empty.
func parseWindow(cmd, sinceF, untilF string) (since, until time.Time, err error) {
	now := time.Now()
	if since, err = parseTime("since", sinceF, now); err != nil {
		return time.Time{}, time.Time{}, err
	}
	until = now.UTC()
	if untilF != "" {
		if until, err = parseTime("until", untilF, now); err != nil {
			return time.Time{}, time.Time{}, err
		}
	}
	if !until.After(since) {
		return time.Time{}, time.Time{}, usageErr(cmd + ": --until must be after --since")
	}
	return since, until, nil
}

// replayStatuses are the statuses --status accepts, in report order.
var replayStatuses = []string{string(events.StatusPending), string(events.StatusSucceeded), string(events.StatusFailed), string(events.StatusConflict)}

// replayCommand is payhookctl replay: it re-sends the events stored in a
// window that pass a subscriber's filter (and the --provider and --status
// flags) to that subscriber, or counts them on a dry run.
func replayCommand(ctx context.Context, g *common, args []string) error {
	fs := g.flags("replay")
	subID := fs.String("subscriber", "", "subscriber to re-send to (required)")
	sinceF := fs.String("since", "", "start of the window: RFC 3339 time or a duration back from now (required)")
	untilF := fs.String("until", "", "end of the window (default now)")
	provider := fs.String("provider", "", "only this provider's events")
	status := fs.String("status", "", "only events of this status: pending, succeeded, failed or conflict")
	dry := fs.Bool("dry-run", false, "count what would be re-sent, send nothing")
	ctx, done, _, err := g.start(ctx, fs, args, 0)
	if err != nil {
		return err
	}
	defer done()
	if *subID == "" || *sinceF == "" {
		return usageErr("replay: --subscriber and --since are required")
	}
	sub, err := g.subscriber(*subID)
	if err != nil {
		return err
	}
	since, until, err := parseWindow("replay", *sinceF, *untilF)
	if err != nil {
		return err
	}
	if *provider != "" && !g.hasProvider(*provider) {
		return usageErr(fmt.Sprintf("--provider: no account of provider %q in the config", *provider))
	}
	if *status != "" && !slices.Contains(replayStatuses, *status) {
		return usageErr("--status: one of " + strings.Join(replayStatuses, ", "))
	}
	res := ReplayWindowResult{Subscriber: sub.ID, Since: since, Until: until, ByStatus: map[string]int{}, DryRun: *dry}
	cons, err := eventsReader(ctx, g.js, *provider, *status, since)
	if err != nil {
		return err
	}
	if err := replayWindow(ctx, g, cons, sub, until, &res); err != nil {
		return err
	}
	return g.emit(res, func(w io.Writer) {
		verb := "re-sent"
		if *dry {
			verb = "would re-send"
		}
		fmt.Fprintf(w, "%s %d of %d events stored %s – %s to %s (same webhook-id)\n", verb, res.Matched, res.Scanned, ts(since), ts(until), sub.ID)
		for _, st := range replayStatuses {
			if res.ByStatus[st] > 0 {
				fmt.Fprintf(w, "  %s\t%d\n", st, res.ByStatus[st])
			}
		}
	})
}

// eventsReader opens a reader of the events stored since since, of one
// provider and one status when given (empty: all).
func eventsReader(ctx context.Context, js jetstream.JetStream, provider, status string, since time.Time) (jetstream.Consumer, error) {
	p, s := "*", "*"
	if provider != "" {
		p = provider
	}
	if status != "" {
		s = status
	}
	stream, err := js.Stream(ctx, natsbus.StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, natsbus.StreamEvents, err)
	}
	// An ephemeral consumer that payhookctl never deletes (the operator's
	// NATS user may not delete consumers of PAYHOOK_EVENTS, which are the
	// services'): the server removes it after a minute idle.
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Name:          "payhookctl-replay-" + nuid.Next(),
		FilterSubject: events.EventFilter(p, events.Any, s),
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: time.Minute, MemoryStorage: true,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: events reader: %v", natsbus.ErrUnavailable, err)
	}
	return cons, nil
}

// replayWindow reads cons up to until (or the end of the stream), counting
// into res what it scans and what matches sub's filter, and re-sends each
// match unless res.DryRun.
func replayWindow(ctx context.Context, g *common, cons jetstream.Consumer, sub config.Subscriber, until time.Time, res *ReplayWindowResult) error {
	last := time.Now()
	for stop := false; !stop; {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("%w: events fetch: %v", natsbus.ErrUnavailable, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Timestamp.After(until) {
				stop = true
				break
			}
			res.Scanned++
			if md.NumPending == 0 {
				stop = true
			}
			ce, ok := routing(m.Data())
			if !ok || !dispatch.Match(sub.Filter, m.Subject(), ce) {
				continue
			}
			res.Matched++
			_, _, status, _ := events.ParseSubject(m.Subject())
			res.ByStatus[string(status)]++
			if res.DryRun {
				continue
			}
			if err := replayOne(ctx, g.js, sub.ID, m, md.Sequence.Stream); err != nil {
				return err
			}
			res.Replayed++
			if time.Since(last) > 2*time.Second {
				g.progress("replay: %d of %d scanned re-sent so far, at %s", res.Replayed, res.Scanned, ts(md.Timestamp))
				last = time.Now()
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: events fetch: %v", natsbus.ErrUnavailable, err)
		}
		if got == 0 {
			stop = true
		}
	}
	return nil
}

// routing decodes the fields a subscriber filter looks at.
func routing(b []byte) (events.Event, bool) {
	var ce events.CloudEvent
	if err := json.Unmarshal(b, &ce); err != nil || ce.ID == "" {
		return events.Event{}, false
	}
	return ce.Data, true
}

// replayOne queues a stored event for subscriber sub on PAYHOOK_REPLAY,
// where the subscriber's replay consumer delivers it with its usual
// retries. The body is the stored one, so the webhook-id is the event id;
// the stored message's own headers (its event signature among them) go
// with it. The message id makes one window replay of one event one copy.
func replayOne(ctx context.Context, js jetstream.JetStream, sub string, m jetstream.Msg, seq uint64) error {
	h := nats.Header{}
	for k, v := range m.Headers() {
		if !strings.HasPrefix(k, "Nats-") {
			h[k] = v
		}
	}
	h.Set(dispatch.HeaderReplay, "1")
	msgID := sub + ":window:" + strconv.FormatUint(seq, 10) + ":" + strconv.FormatInt(time.Now().Unix()/120, 10)
	_, err := natsbus.Publish(ctx, js, dispatch.ReplaySubject(sub), msgID, m.Data(), h)
	return err
}

// hasProvider reports whether the config has an account of provider.
func (g *common) hasProvider(p string) bool {
	for _, a := range g.cfg.Accounts {
		if a.Provider == p {
			return true
		}
	}
	return false
}
