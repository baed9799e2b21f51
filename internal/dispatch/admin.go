package dispatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/payhook/payhook/internal/ops"
)

// ReplayRequest is the body of POST /v1/dlq/replay.
type ReplayRequest struct {
	Subscriber string   `json:"subscriber"`
	EventIDs   []string `json:"event_ids,omitempty"`
}

// Handler serves the admin API behind the bearer admin_token (404 when the
// token is empty, 401 when missing or wrong):
//
//	POST /v1/dlq/replay                  {"subscriber","event_ids"?} → {"replayed","missing"}
//	GET  /v1/dlq?subscriber=ID           → {"dead_letters":[...]}
//	POST /v1/subscribers/{id}/pause      {"reason"?} → {"subscriber","paused":true}
//	POST /v1/subscribers/{id}/resume     → {"subscriber","paused":false}
//	DELETE /v1/subscribers/{id}          → RetireResult (409 while configured here)
//	POST /v1/subscribers/{id}/retry      RetryRequest → RetryResult: events in backoff attempted now, on every replica
func (d *Dispatcher) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/dlq/replay", d.admin("replay", d.handleReplay))
	mux.Handle("GET /v1/dlq", d.admin("list", d.handleList))
	mux.Handle("POST /v1/subscribers/{id}/resume", d.admin("resume", d.handleResume))
	mux.Handle("DELETE /v1/subscribers/{id}", d.admin("retire", d.handleRetire))
	mux.Handle("POST /v1/subscribers/{id}/pause", d.admin("pause", d.handlePause))
	mux.Handle("POST /v1/subscribers/{id}/retry", d.admin("retry", d.handleRetry))
	d.reloadMu.Lock()
	token := d.cfg.AdminToken // a reload never changes it (restartKeys)
	d.reloadMu.Unlock()
	return ops.RequireToken(token, d.log, mux)
}

// admin serves h, answering the error it returns as adminFailure maps it.
func (d *Dispatcher) admin(op string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			ops.WriteFailure(w, d.adminFailure(op, err))
		}
	})
}

// adminFailure is the dispatcher admin API's one mapping from an error to
// its answer: an *ops.Error as it is; a subscriber that is not configured
// (for retire: of which nothing is kept) 404; retiring a subscriber still
// configured here 409; a retry-now request no replica answered 503 saying
// why; anything else is NATS failing under op, logged and answered 503.
func (d *Dispatcher) adminFailure(op string, err error) error {
	var oe *ops.Error
	switch {
	case errors.As(err, &oe):
		return oe
	case errors.Is(err, ErrConfigured):
		return ops.Fail(ops.CodeConflict, "subscriber is in this dispatcher's config: remove it from every dispatcher's config first, or its consumer is recreated")
	case errors.Is(err, ErrUnknownSubscriber) && op == "retire":
		return ops.Fail(ops.CodeNotFound, "nothing is kept for this subscriber")
	case errors.Is(err, ErrUnknownSubscriber):
		return ops.Fail(ops.CodeNotFound, "unknown subscriber")
	case errors.Is(err, ErrNoReplicaAnswered):
		d.log.Error(op, "err", err)
		return ops.Fail(ops.CodeUnavailable, "no dispatcher replica answered, not even this one: retry-now requests and answers travel on NATS subjects payhook.dispatch.>, which the dispatcher's NATS user must be allowed to publish and subscribe to (deploy/nats/auth.conf); events may have been made due by replicas whose answers were lost, a dry run shows what still waits")
	}
	d.log.Error(op, "err", err)
	return ops.Fail(ops.CodeUnavailable, op+" failed: NATS unavailable")
}

func (d *Dispatcher) handleReplay(w http.ResponseWriter, r *http.Request) error {
	var req ReplayRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return ops.Fail(ops.CodeInvalid, "body must be JSON {\"subscriber\": \"id\", \"event_ids\": [...]}")
	}
	if d.roster().byID[req.Subscriber] == nil {
		return ErrUnknownSubscriber
	}
	if len(req.EventIDs) > 10000 {
		return ops.Fail(ops.CodeInvalid, "at most 10000 event_ids per request")
	}
	res, err := Replay(r.Context(), d.js, req.Subscriber, req.EventIDs)
	if err != nil {
		return fmt.Errorf("subscriber %s: %w", req.Subscriber, err)
	}
	d.log.Info("dlq replayed", "subscriber", req.Subscriber, "replayed", res.Replayed, "missing", len(res.Missing))
	ops.WriteJSON(w, http.StatusOK, res)
	return nil
}

func (d *Dispatcher) handleList(w http.ResponseWriter, r *http.Request) error {
	sub := r.URL.Query().Get("subscriber")
	if d.roster().byID[sub] == nil {
		return ErrUnknownSubscriber
	}
	dls, err := ListDLQ(r.Context(), d.js, sub)
	if err != nil {
		return fmt.Errorf("subscriber %s: %w", sub, err)
	}
	if dls == nil {
		dls = []DeadLetter{}
	}
	ops.WriteJSON(w, http.StatusOK, map[string]any{"dead_letters": dls})
	return nil
}

func (d *Dispatcher) handleResume(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := d.Resume(r.Context(), id); err != nil {
		return fmt.Errorf("subscriber %s: %w", id, err)
	}
	ops.WriteJSON(w, http.StatusOK, map[string]any{"subscriber": id, "paused": false})
	return nil
}

func (d *Dispatcher) handleRetire(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	res, err := d.Retire(r.Context(), id)
	if err != nil {
		return fmt.Errorf("subscriber %s: %w", id, err)
	}
	ops.WriteJSON(w, http.StatusOK, res)
	return nil
}

func (d *Dispatcher) handlePause(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req struct {
		Reason string `json:"reason"`
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
	if len(b) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || len(req.Reason) > 200 {
			return ops.Fail(ops.CodeInvalid, "body must be JSON {\"reason\": \"text of at most 200 bytes\"}")
		}
	}
	if req.Reason == "" {
		req.Reason = "paused by an operator"
	}
	if err := d.Pause(r.Context(), id, req.Reason); err != nil {
		return fmt.Errorf("subscriber %s: %w", id, err)
	}
	d.log.Info("subscriber paused by an operator", "subscriber", id, "reason", req.Reason)
	ops.WriteJSON(w, http.StatusOK, map[string]any{"subscriber": id, "paused": true})
	return nil
}

func (d *Dispatcher) handleRetry(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req RetryRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || len(req.EventIDs) > 10000 {
		return ops.Fail(ops.CodeInvalid, "body must be JSON {\"event_ids\": [at most 10000 ids]} or {\"all\": true}, with \"dry_run\" optional")
	}
	res, err := d.RetryNow(r.Context(), id, req)
	if errors.Is(err, errBadRetry) {
		return ops.Fail(ops.CodeInvalid, err.Error())
	}
	if err != nil {
		return fmt.Errorf("subscriber %s: %w", id, err)
	}
	d.log.Info("retry now requested", "subscriber", id, "dry_run", req.DryRun, "events", len(res.Retried), "replicas", res.Replicas)
	ops.WriteJSON(w, http.StatusOK, res)
	return nil
}
