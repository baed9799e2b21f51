package dispatch

import (
	"bytes"
	"encoding/json"
	"errors"
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
	mux.HandleFunc("POST /v1/dlq/replay", d.handleReplay)
	mux.HandleFunc("GET /v1/dlq", d.handleList)
	mux.HandleFunc("POST /v1/subscribers/{id}/resume", d.handleResume)
	mux.HandleFunc("DELETE /v1/subscribers/{id}", d.handleRetire)
	mux.HandleFunc("POST /v1/subscribers/{id}/pause", d.handlePause)
	mux.HandleFunc("POST /v1/subscribers/{id}/retry", d.handleRetry)
	return ops.RequireToken(d.cfg.AdminToken, d.log, mux)
}

func (d *Dispatcher) handleReplay(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		ops.WriteError(w, http.StatusBadRequest, "body must be JSON {\"subscriber\": \"id\", \"event_ids\": [...]}")
		return
	}
	if d.roster().byID[req.Subscriber] == nil {
		ops.WriteError(w, http.StatusNotFound, "unknown subscriber")
		return
	}
	if len(req.EventIDs) > 10000 {
		ops.WriteError(w, http.StatusBadRequest, "at most 10000 event_ids per request")
		return
	}
	res, err := Replay(r.Context(), d.js, req.Subscriber, req.EventIDs)
	if err != nil {
		d.log.Error("replay", "subscriber", req.Subscriber, "err", err)
		ops.WriteError(w, http.StatusServiceUnavailable, "replay failed: NATS unavailable")
		return
	}
	d.log.Info("dlq replayed", "subscriber", req.Subscriber, "replayed", res.Replayed, "missing", len(res.Missing))
	ops.WriteJSON(w, http.StatusOK, res)
}

func (d *Dispatcher) handleList(w http.ResponseWriter, r *http.Request) {
	sub := r.URL.Query().Get("subscriber")
	if d.roster().byID[sub] == nil {
		ops.WriteError(w, http.StatusNotFound, "unknown subscriber")
		return
	}
	dls, err := ListDLQ(r.Context(), d.js, sub)
	if err != nil {
		ops.WriteError(w, http.StatusServiceUnavailable, "list failed: NATS unavailable")
		return
	}
	if dls == nil {
		dls = []DeadLetter{}
	}
	ops.WriteJSON(w, http.StatusOK, map[string]any{"dead_letters": dls})
}

func (d *Dispatcher) handleResume(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := d.Resume(r.Context(), id)
	switch {
	case errors.Is(err, ErrUnknownSubscriber):
		ops.WriteError(w, http.StatusNotFound, "unknown subscriber")
	case err != nil:
		ops.WriteError(w, http.StatusServiceUnavailable, "resume failed: NATS unavailable")
	default:
		ops.WriteJSON(w, http.StatusOK, map[string]any{"subscriber": id, "paused": false})
	}
}

func (d *Dispatcher) handleRetire(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	res, err := d.Retire(r.Context(), id)
	switch {
	case errors.Is(err, ErrConfigured):
		ops.WriteError(w, http.StatusConflict, "subscriber is in this dispatcher's config: remove it from every dispatcher's config first, or its consumer is recreated")
	case errors.Is(err, ErrUnknownSubscriber):
		ops.WriteError(w, http.StatusNotFound, "nothing is kept for this subscriber")
	case err != nil:
		d.log.Error("retire", "subscriber", id, "err", err)
		ops.WriteError(w, http.StatusServiceUnavailable, "retire failed: NATS unavailable")
	default:
		ops.WriteJSON(w, http.StatusOK, res)
	}
}

func (d *Dispatcher) handlePause(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req struct {
		Reason string `json:"reason"`
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
	if len(b) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || len(req.Reason) > 200 {
			ops.WriteError(w, http.StatusBadRequest, "body must be JSON {\"reason\": \"text of at most 200 bytes\"}")
			return
		}
	}
	if req.Reason == "" {
		req.Reason = "paused by an operator"
	}
	err := d.Pause(r.Context(), id, req.Reason)
	switch {
	case errors.Is(err, ErrUnknownSubscriber):
		ops.WriteError(w, http.StatusNotFound, "unknown subscriber")
	case err != nil:
		ops.WriteError(w, http.StatusServiceUnavailable, "pause failed: NATS unavailable")
	default:
		d.log.Info("subscriber paused by an operator", "subscriber", id, "reason", req.Reason)
		ops.WriteJSON(w, http.StatusOK, map[string]any{"subscriber": id, "paused": true})
	}
}

func (d *Dispatcher) handleRetry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req RetryRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || len(req.EventIDs) > 10000 {
		ops.WriteError(w, http.StatusBadRequest, "body must be JSON {\"event_ids\": [at most 10000 ids]} or {\"all\": true}, with \"dry_run\" optional")
		return
	}
	res, err := d.RetryNow(r.Context(), id, req)
	switch {
	case errors.Is(err, ErrUnknownSubscriber):
		ops.WriteError(w, http.StatusNotFound, "unknown subscriber")
	case errors.Is(err, errBadRetry):
		ops.WriteError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		d.log.Error("retry now", "subscriber", id, "err", err)
		ops.WriteError(w, http.StatusServiceUnavailable, "retry failed: NATS unavailable")
	default:
		d.log.Info("retry now requested", "subscriber", id, "dry_run", req.DryRun, "events", len(res.Retried), "replicas", res.Replicas)
		ops.WriteJSON(w, http.StatusOK, res)
	}
}
