package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/natsbus"
)

// SubscriberState is one row of subscribers ls.
type SubscriberState struct {
	ID string `json:"id"`
	// Lag is the events not yet delivered: waiting, in flight or in backoff
	// (live and replayed); nil when the subscriber has no consumer yet (no
	// dispatcher has started with it).
	Lag         *uint64               `json:"lag"`
	Paused      bool                  `json:"paused"`
	Pause       *dispatch.PauseRecord `json:"pause,omitempty"`
	Breaker     string                `json:"breaker"`
	LastError   string                `json:"last_error,omitempty"`
	LastErrorAt time.Time             `json:"last_error_at,omitzero"`
	LastStatus  int                   `json:"last_status,omitempty"`
	DeadLetters uint64                `json:"dead_letters"`
}

func subscribersList(ctx context.Context, g *common, args []string) error {
	ctx, done, _, err := g.start(ctx, g.flags("subscribers ls"), args, 0)
	if err != nil {
		return err
	}
	defer done()
	pauses, statuses := map[string]dispatch.PauseRecord{}, map[string]dispatch.Status{}
	if kv, err := g.js.KeyValue(ctx, dispatch.PauseBucket); err == nil {
		if pauses, err = dispatch.Pauses(ctx, kv); err != nil {
			return err
		}
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("%w: kv %s: %v", natsbus.ErrUnavailable, dispatch.PauseBucket, err)
	}
	if kv, err := g.js.KeyValue(ctx, dispatch.StatusBucket); err == nil {
		if statuses, err = dispatch.Statuses(ctx, kv); err != nil {
			return err
		}
	}
	dlq := map[string]uint64{}
	if s, err := g.js.Stream(ctx, natsbus.StreamDLQ); err == nil {
		if info, err := s.Info(ctx, jetstream.WithSubjectFilter(natsbus.SubjectDLQ)); err == nil {
			dlq = info.State.Subjects
		}
	}
	var out []SubscriberState
	for _, s := range g.cfg.Subscribers {
		st := SubscriberState{ID: s.ID, Breaker: dispatch.BreakerClosed.String(), DeadLetters: dlq[dispatch.DLQSubject(s.ID)]}
		if p, ok := pauses[s.ID]; ok {
			st.Paused, st.Pause = true, &p
		}
		if x, ok := statuses[s.ID]; ok {
			st.Breaker, st.LastError, st.LastErrorAt, st.LastStatus = x.Breaker, x.LastError, x.LastErrorAt, x.LastStatus
		}
		st.Lag, err = lag(ctx, g.js, s.ID)
		if err != nil {
			return err
		}
		out = append(out, st)
	}
	if out == nil {
		out = []SubscriberState{}
	}
	return g.emit(map[string]any{"subscribers": out}, func(w io.Writer) {
		fmt.Fprintln(w, "SUBSCRIBER\tLAG\tBREAKER\tPAUSED\tDEAD LETTERS\tLAST ERROR")
		for _, s := range out {
			l := "no consumer"
			if s.Lag != nil {
				l = fmt.Sprint(*s.Lag)
			}
			p := "no"
			if s.Pause != nil {
				p = fmt.Sprintf("since %s: %s", ts(s.Pause.At), s.Pause.Reason)
			}
			e := "-"
			if s.LastError != "" {
				e = ts(s.LastErrorAt) + " " + s.LastError
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", s.ID, l, s.Breaker, p, s.DeadLetters, e)
		}
	})
}

// lag is what the subscriber's consumers have not delivered: pending and
// unacknowledged messages, live and replayed.
func lag(ctx context.Context, js jetstream.JetStream, id string) (*uint64, error) {
	var n uint64
	found := false
	for _, c := range []struct{ stream, name string }{{natsbus.StreamEvents, dispatch.ConsumerName(id)}, {dispatch.StreamReplay, "replay-" + id}} {
		cons, err := js.Consumer(ctx, c.stream, c.name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: consumer %s: %v", natsbus.ErrUnavailable, c.name, err)
		}
		info := cons.CachedInfo()
		n += info.NumPending + uint64(info.NumAckPending)
		found = true
	}
	if !found {
		return nil, nil
	}
	return &n, nil
}

func subscribersPause(ctx context.Context, g *common, args []string) error {
	fs := g.flags("subscribers pause")
	reason := fs.String("reason", "paused by an operator", "why (shown by subscribers ls and logged by the dispatchers)")
	dry := fs.Bool("dry-run", false, "say what would be done, change nothing")
	ctx, done, pos, err := g.start(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	defer done()
	if _, err := g.subscriber(pos[0]); err != nil {
		return err
	}
	if len(*reason) > 200 {
		return usageErr("--reason: at most 200 bytes")
	}
	if !*dry {
		kv, err := g.pauseKV(ctx)
		if err != nil {
			return err
		}
		if err := dispatch.SetPause(ctx, kv, pos[0], dispatch.PauseRecord{Reason: *reason, By: "operator"}); err != nil {
			return err
		}
	}
	res := map[string]any{"subscriber": pos[0], "paused": true, "reason": *reason, "dry_run": *dry}
	return g.emit(res, func(w io.Writer) {
		verb := "paused"
		if *dry {
			verb = "would pause"
		}
		fmt.Fprintf(w, "%s %s on every dispatcher replica (%s); events are kept until payhookctl subscribers resume %s\n", verb, pos[0], *reason, pos[0])
	})
}

func subscribersResume(ctx context.Context, g *common, args []string) error {
	fs := g.flags("subscribers resume")
	dry := fs.Bool("dry-run", false, "say what would be done, change nothing")
	ctx, done, pos, err := g.start(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	defer done()
	if _, err := g.subscriber(pos[0]); err != nil {
		return err
	}
	if !*dry {
		kv, err := g.pauseKV(ctx)
		if err != nil {
			return err
		}
		if err := dispatch.ClearPause(ctx, kv, pos[0]); err != nil {
			return err
		}
	}
	return g.emit(map[string]any{"subscriber": pos[0], "paused": false, "dry_run": *dry}, func(w io.Writer) {
		verb := "resumed"
		if *dry {
			verb = "would resume"
		}
		fmt.Fprintf(w, "%s %s on every dispatcher replica\n", verb, pos[0])
	})
}

// pauseKV opens the pause bucket, creating it only when no dispatcher has
// yet (the operator's NATS user may create it, not change it).
func (g *common) pauseKV(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := g.js.KeyValue(ctx, dispatch.PauseBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return dispatch.PauseKV(ctx, g.js, g.cfg.NATS)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: kv %s: %v", natsbus.ErrUnavailable, dispatch.PauseBucket, err)
	}
	return kv, nil
}
