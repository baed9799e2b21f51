package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/pkg/providers"
)

// MountAdmin adds the admin API (docs/interfaces.md "Admin APIs"), guarded by the
// bearer admin_token: POST /v1/watches and POST /v1/references.
func (r *Reconciler) MountAdmin(mux *http.ServeMux) {
	mux.Handle("POST /v1/watches", ops.RequireToken(r.cfg.AdminToken, r.log, admin(r.serveWatch)))
	mux.Handle("POST /v1/references", ops.RequireToken(r.cfg.AdminToken, r.log, admin(r.serveReference)))
}

// admin serves h, answering the error it returns as adminFailure maps it.
func admin(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := h(w, req); err != nil {
			ops.WriteFailure(w, adminFailure(err))
		}
	})
}

// adminFailure is the reconciler admin API's one mapping from an error to
// its answer: an *ops.Error as it is (the handlers classify request errors,
// store failures and the provider's refusal); an account past its watch cap
// 429 "account_watch_cap: ..."; anything else 503.
func adminFailure(err error) error {
	var oe *ops.Error
	switch {
	case errors.As(err, &oe):
		return oe
	case errors.Is(err, ErrTooManyWatches):
		return ops.Fail(ops.CodeTooMany, "account_watch_cap: "+err.Error())
	}
	return ops.Fail(ops.CodeUnavailable, "unavailable, retry")
}

// Checks are the readiness checks: NATS with every stream (including
// PAYHOOK_RECONCILE) must be usable; the dedupe store only degrades (watches
// wait for it; UTR submissions answer 503).
func (r *Reconciler) Checks() []ops.Check {
	return []ops.Check{
		{Name: "nats", Fn: func(ctx context.Context) error {
			if err := natsbus.CheckStreams(ctx, r.js); err != nil {
				return err
			}
			if _, err := r.js.Stream(ctx, StreamReconcile); err != nil {
				return fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, StreamReconcile, err)
			}
			return nil
		}},
		{Name: "dedupe", Degraded: true, Fn: r.store.Ping},
	}
}

// Handler is the reconciler's whole HTTP surface: /healthz, /readyz,
// /metrics (of reg) and the admin API.
func (r *Reconciler) Handler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	ops.Mount(mux, reg, r.Checks()...)
	r.MountAdmin(mux)
	return mux
}

// readBody reads at most MaxRequestBytes of the request body.
func readBody(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxRequestBytes))
	if err != nil {
		return nil, fmt.Errorf("body unreadable or over %d bytes", MaxRequestBytes)
	}
	return b, nil
}

// WatchResponse is the 202 answer of POST /v1/watches.
type WatchResponse struct {
	ID string `json:"id"`
	// Created is false when a watch for the order was already open.
	Created bool `json:"created"`
}

func (r *Reconciler) serveWatch(w http.ResponseWriter, req *http.Request) error {
	b, err := readBody(w, req)
	if err != nil {
		r.m.rejected.WithLabelValues("api", "invalid").Inc()
		return ops.Fail(ops.CodeInvalid, err.Error())
	}
	wr, err := ParseRequest(b)
	if err == nil {
		err = wr.Validate(r.accounts, r.provs)
	}
	if err != nil {
		r.m.rejected.WithLabelValues("api", "invalid").Inc()
		return ops.Fail(ops.CodeInvalid, err.Error())
	}
	ctx, cancel := context.WithTimeout(req.Context(), 5*time.Second)
	defer cancel()
	id, created, err := r.Open(ctx, wr, r.now(), "api")
	if errors.Is(err, ErrTooManyWatches) {
		return err
	}
	if err != nil {
		r.log.Warn("watch not opened", "provider", wr.Provider, "order_id", wr.MerchantOrderID, "err", err)
		return ops.Fail(ops.CodeUnavailable, "watch not stored: NATS unavailable, retry")
	}
	ops.WriteJSON(w, http.StatusAccepted, WatchResponse{ID: id, Created: created})
	return nil
}

// ReferenceRequest is the body of POST /v1/references.
type ReferenceRequest struct {
	Account         string `json:"account"`
	MerchantOrderID string `json:"merchant_order_id"`
	Reference       string `json:"reference"`
}

// ReferenceResponse is the 200 answer of POST /v1/references.
type ReferenceResponse struct {
	Status          string `json:"status"` // "matched"
	Account         string `json:"account"`
	MerchantOrderID string `json:"merchant_order_id"`
	Reference       string `json:"reference"`
}

// ProviderErrorResponse is the 502 answer: the provider's own code and message.
type ProviderErrorResponse struct {
	Error   string `json:"error"` // "not_matched", "provider_error" or "provider_unreachable"
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Released tells whether the reference's claim was released (only when
	// the provider said it did not match).
	Released bool `json:"released"`
}

// maxReference bounds a reference (a UTR is 12 digits, an RRN 12 characters).
const maxReference = 64

// NormalizeReference trims spaces and upper-cases a UTR/RRN, so that the
// same bank transfer typed twice is claimed once. It returns "" when ref is
// not 1..64 letters, digits, '-', '_' or '/'.
func NormalizeReference(ref string) string {
	ref = strings.ToUpper(strings.TrimSpace(ref))
	if ref == "" || len(ref) > maxReference {
		return ""
	}
	for _, c := range ref {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '/') {
			return ""
		}
	}
	return ref
}

// isTransport reports an error without the provider's answer: network
// failure, timeout, or a client's "transport" APIError.
func isTransport(err error, ae *providers.APIError) bool {
	if ae != nil {
		return ae.Code == "transport"
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// parseReference decodes and checks a submission; the error is safe to return.
func (r *Reconciler) parseReference(b []byte) (ReferenceRequest, providers.Account, providers.ReferenceSubmitter, error) {
	var rr ReferenceRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&rr); err != nil || dec.More() {
		return rr, providers.Account{}, nil, errors.New("not a JSON object {account, merchant_order_id, reference}")
	}
	a, ok := r.accounts[rr.Account]
	sub, submits := r.submitters[a.Provider]
	switch {
	case rr.Account == "":
		return rr, a, nil, errors.New("account is required")
	case !ok:
		return rr, a, nil, fmt.Errorf("unknown account %q", truncate(rr.Account, 32))
	case !submits:
		return rr, a, nil, fmt.Errorf("account %q is a %s account: references are submitted to %s only", rr.Account, a.Provider, strings.Join(sortedKeys(r.submitters), ", "))
	case rr.MerchantOrderID == "":
		return rr, a, nil, errors.New("merchant_order_id is required")
	case strings.TrimSpace(rr.Reference) == "":
		return rr, a, nil, errors.New("reference is required")
	}
	norm := NormalizeReference(rr.Reference)
	if norm == "" {
		return rr, a, nil, fmt.Errorf("reference must be 1 to %d letters, digits, '-', '_' or '/'", maxReference)
	}
	if err := sub.CheckReference(rr.MerchantOrderID, norm); err != nil {
		return rr, a, nil, err
	}
	rr.Reference = norm
	return rr, a, sub, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// serveReference submits a UTR. The claim comes first: a reference held by
// another order never reaches the provider. Only the provider's "not
// matched" releases the claim; any other failure keeps it, because the
// provider may have matched the reference even though we did not hear so
// (a timeout after it acted), and offering the same transfer for a second
// order would then credit it twice. Resubmitting the same reference for
// the same order is idempotent at the claim and calls the provider again:
// that is how a submission whose answer was lost is retried.
func (r *Reconciler) serveReference(w http.ResponseWriter, req *http.Request) error {
	b, err := readBody(w, req)
	if err != nil {
		r.m.utr.WithLabelValues(UTRInvalid).Inc()
		return ops.Fail(ops.CodeInvalid, err.Error())
	}
	rr, acct, sub, err := r.parseReference(b)
	if err != nil {
		r.m.utr.WithLabelValues(UTRInvalid).Inc()
		return ops.Fail(ops.CodeInvalid, err.Error())
	}
	if r.refs == nil {
		r.m.utr.WithLabelValues(UTRUnavailable).Inc()
		return ops.Fail(ops.CodeUnavailable, "reference submission is not configured")
	}
	// A client hanging up must not leave a claim without its submission
	// (or the reverse): the rest runs to completion on its own clock.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), r.opt.PollTimeout+5*time.Second)
	defer cancel()
	log := r.log.With("account", rr.Account, "order_id", rr.MerchantOrderID)

	owner, claimed, err := r.refs.ClaimReference(ctx, rr.Account, rr.Reference, rr.MerchantOrderID)
	if err != nil {
		r.m.utr.WithLabelValues(UTRUnavailable).Inc()
		log.Warn("reference claim store unavailable", "err", err)
		return ops.Fail(ops.CodeUnavailable, "reference claim store unavailable, retry")
	}
	if !claimed {
		r.m.utr.WithLabelValues(UTRInUse).Inc()
		log.Warn("reference already used for another order; not submitted", "other_order_id", owner)
		return ops.Fail(ops.CodeConflict, "reference_in_use")
	}

	sctx, scancel := context.WithTimeout(ctx, r.opt.PollTimeout)
	err = sub.SubmitReference(sctx, acct, rr.MerchantOrderID, rr.Reference)
	scancel()
	if err == nil {
		r.m.utr.WithLabelValues(UTRMatched).Inc()
		log.Info("reference matched")
		ops.WriteJSON(w, http.StatusOK, ReferenceResponse{Status: "matched", Account: rr.Account, MerchantOrderID: rr.MerchantOrderID, Reference: rr.Reference})
		return nil
	}
	resp := ProviderErrorResponse{Error: "provider_error"}
	var ae *providers.APIError
	if errors.As(err, &ae) {
		resp.Code, resp.Message = ae.Code, ae.Message
	}
	result := UTRProviderError
	switch {
	case sub.NotMatched(err):
		result, resp.Error = UTRNotMatched, "not_matched"
		if rerr := r.refs.ReleaseReference(ctx, rr.Account, rr.Reference, rr.MerchantOrderID); rerr != nil {
			// The claim stays until its TTL; the next submission for this
			// order still works, another order gets 409 meanwhile.
			log.Warn("reference claim not released", "err", rerr)
		} else {
			resp.Released = true
		}
	case isTransport(err, ae):
		result, resp.Error = UTRTransportError, "provider_unreachable"
		resp.Message = "no answer from the provider"
	case ae == nil:
		resp.Message = "unexpected answer from the provider"
	}
	r.m.utr.WithLabelValues(result).Inc()
	log.Warn("reference not matched by the provider", "result", result, "code", resp.Code)
	return &ops.Error{Code: ops.CodeProvider, Message: resp.Error, Body: resp}
}
