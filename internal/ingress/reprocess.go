package ingress

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// ReprocessRequest is the body of POST /v1/reprocess: the rejected
// requests of provider (and account, and reject reason, when given)
// received in [since, until) are run through today's verification.
type ReprocessRequest struct {
	Provider string     `json:"provider"`
	Account  string     `json:"account,omitempty"`
	Since    time.Time  `json:"since"`
	Until    *time.Time `json:"until,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	DryRun   bool       `json:"dry_run,omitempty"`
}

// ReprocessResult counts what reprocessing did, by outcome: a verdict of
// the storing path (accepted, duplicate, stale, conflict, unavailable),
// "verifies" on a dry run, "rejected:<reason>" for a request that still
// does not verify, "skipped:<why>" for one that cannot be run again.
type ReprocessResult struct {
	Scanned  int            `json:"scanned"`
	Matched  int            `json:"matched"`
	Outcomes map[string]int `json:"outcomes"`
	DryRun   bool           `json:"dry_run"`
}

// maxReprocessWindow bounds one request, so that it answers within the
// HTTP write timeout: a longer incident is reprocessed window by window.
const maxReprocessWindow = 24 * time.Hour

// serveReprocess is POST /v1/reprocess (admin token); its failures are
// answered as adminFailure maps them.
func (s *Server) serveReprocess(w http.ResponseWriter, r *http.Request) {
	if err := s.reprocessRequest(w, r); err != nil {
		ops.WriteFailure(w, s.adminFailure(err))
	}
}

// adminFailure is the ingress admin API's one mapping from an error to its
// answer: an *ops.Error as it is (a request that is not valid, 400); any
// other error is NATS failing while reading or storing, logged and
// answered 503.
func (s *Server) adminFailure(err error) error {
	var oe *ops.Error
	if errors.As(err, &oe) {
		return oe
	}
	s.log.Error("reprocess", "err", err)
	return ops.Fail(ops.CodeUnavailable, "reprocess failed: NATS unavailable")
}

func (s *Server) reprocessRequest(w http.ResponseWriter, r *http.Request) error {
	var req ReprocessRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return ops.Fail(ops.CodeInvalid, "body must be JSON {\"provider\",\"account\"?,\"since\",\"until\"?,\"reason\"?,\"dry_run\"?}")
	}
	until := s.now().UTC()
	if req.Until != nil {
		until = req.Until.UTC()
	}
	switch {
	case s.providers[req.Provider] == nil:
		return ops.Fail(ops.CodeInvalid, "provider: not one of this ingress's providers")
	case req.Account != "" && s.accounts[req.Account].Provider != req.Provider:
		return ops.Fail(ops.CodeInvalid, "account: no such account of this provider")
	case req.Since.IsZero() || !until.After(req.Since):
		return ops.Fail(ops.CodeInvalid, "since: required, before until")
	case until.Sub(req.Since) > maxReprocessWindow:
		return ops.Fail(ops.CodeInvalid, "window over 24h: reprocess a longer incident day by day")
	}
	res, err := s.Reprocess(r.Context(), req, until)
	if err != nil {
		return fmt.Errorf("provider %s: %w", req.Provider, err)
	}
	s.log.Info("reprocessed rejected requests", "provider", req.Provider, "account", req.Account, "since", req.Since, "until", until,
		"dry_run", req.DryRun, "matched", res.Matched, "outcomes", res.Outcomes)
	ops.WriteJSON(w, http.StatusOK, res)
	return nil
}

// Reprocess reads the rejected requests of req from PAYHOOK_RAW_REJECTED
// and runs each through reprocessOne.
func (s *Server) Reprocess(ctx context.Context, req ReprocessRequest, until time.Time) (ReprocessResult, error) {
	res := ReprocessResult{Outcomes: map[string]int{}, DryRun: req.DryRun}
	stream, err := s.js.Stream(ctx, natsbus.StreamRawRejected)
	if err != nil {
		return res, fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, natsbus.StreamRawRejected, err)
	}
	since := req.Since
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Name:          "payhook-reprocess-" + nuid.Next(),
		FilterSubject: events.RawSubject(req.Provider, VerdictRejected),
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: time.Minute, MemoryStorage: true,
	})
	if err != nil {
		return res, fmt.Errorf("%w: rejected records reader: %v", natsbus.ErrUnavailable, err)
	}
	defer func() { _ = stream.DeleteConsumer(context.WithoutCancel(ctx), cons.CachedInfo().Name) }()
	for {
		batch, err := cons.Fetch(128, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return res, fmt.Errorf("%w: fetch: %v", natsbus.ErrUnavailable, err)
		}
		got, done := 0, false
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if !md.Timestamp.Before(until) {
				done = true
				break
			}
			done = md.NumPending == 0
			res.Scanned++
			rec, err := DecodeRawRecord(m.Headers(), m.Data())
			if err != nil {
				res.Outcomes["skipped:undecodable"]++
				continue
			}
			if (req.Account != "" && rec.Account != req.Account) || (req.Reason != "" && rec.Reason != req.Reason) {
				continue
			}
			res.Matched++
			res.Outcomes[s.reprocessOne(ctx, rec, req.DryRun)]++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return res, fmt.Errorf("%w: fetch: %v", natsbus.ErrUnavailable, err)
		}
		if got == 0 || done {
			return res, nil
		}
	}
}

// reprocessOne runs one rejected request through the verification a
// callback gets today (provider, account, kind, signature or decryption,
// decoding, the signed-time check against when it was received) and, when
// it now verifies, through the storing path with origin "reprocess": the
// same dedupe, so a request stored meanwhile (the provider's retry) is a
// duplicate. allow_ips is not asked: the request is not new, its address
// was judged when it came. It returns the outcome label.
func (s *Server) reprocessOne(ctx context.Context, rec RawRecord, dry bool) string {
	p, ok := s.providers[rec.Provider]
	acct, aok := s.accounts[rec.Account]
	kind := events.Kind(rec.Kind)
	switch {
	case !ok || !aok || acct.Provider != rec.Provider:
		return "skipped:unknown_account"
	case !kind.Valid() || !slices.Contains(s.kinds[rec.Provider], kind):
		return "skipped:wrong_kind"
	case rec.BodyTruncated || int64(len(rec.Body)) != rec.BodyLength:
		return "skipped:body_not_kept"
	}
	ev, err := safeParse(p, acct.Account, providers.Request{
		Kind: kind, Header: rec.Headers, Body: rec.Body, RemoteAddr: rec.RemoteAddr, ReceivedAt: rec.ReceivedAt,
	})
	if err != nil {
		return "rejected:" + string(providers.ReasonOf(err))
	}
	if err := checkAge(acct.MaxAge, ev.SignedAt, rec.ReceivedAt); err != nil {
		_, reason, _ := answer(err)
		return "rejected:" + string(reason)
	}
	if dry {
		return "verifies"
	}
	ev.Origin = events.OriginReprocess
	o := s.store(ctx, outcome{provider: rec.Provider, account: rec.Account, kind: rec.Kind, eventID: ev.ID(), orderID: cmp.Or(ev.MerchantOrderID, ev.ProviderOrderID)}, p, &ev)
	if o.verdict == VerdictRejected {
		return "rejected:" + string(o.reason)
	}
	s.log.Info("rejected request reprocessed", "provider", rec.Provider, "account", rec.Account, "kind", rec.Kind,
		"order_id", o.orderID, "event_id", ev.ID(), "verdict", o.verdict)
	return o.verdict
}
