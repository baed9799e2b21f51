// Package ops serves what every payhook binary exposes to operators:
// /healthz (the process is alive), /readyz (its dependencies are usable, with
// per-check detail), /metrics (Prometheus text), and bearer-token auth for
// admin APIs. It uses net/http; only ingress's callback path uses echo.
package ops

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness probe. A nil error is ready. Degraded checks report
// but do not fail readiness (e.g. Redis down while the JetStream fallback works).
type Check struct {
	Name     string
	Degraded bool // failure degrades instead of failing /readyz
	Fn       func(ctx context.Context) error
}

// NewRegistry returns a registry with the Go and process collectors, the
// one every binary passes down to its parts (no global registration).
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Mount adds /healthz, /readyz and /metrics to mux.
func Mount(mux *http.ServeMux, reg *prometheus.Registry, checks ...Check) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.Handle("GET /readyz", ReadyHandler(checks...))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
}

// ReadyHandler runs every check (each bounded to 2 s) and answers 200 when
// none failed that is not Degraded, else 503, with a JSON body:
// {"status":"ready|degraded|unready","checks":{"nats":"ok","redis":"error: ..."}}.
func ReadyHandler(checks ...Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, detail := RunChecks(r.Context(), checks...)
		w.Header().Set("Content-Type", "application/json")
		if status == "unready" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": detail})
	})
}

// RunChecks runs checks and summarizes: "ready", "degraded" or "unready".
func RunChecks(ctx context.Context, checks ...Check) (string, map[string]string) {
	status := "ready"
	detail := make(map[string]string, len(checks))
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.Fn(cctx)
		cancel()
		if err == nil {
			detail[c.Name] = "ok"
			continue
		}
		detail[c.Name] = "error: " + err.Error()
		if c.Degraded {
			if status == "ready" {
				status = "degraded"
			}
		} else {
			status = "unready"
		}
	}
	return status, detail
}

// RequireToken guards an admin handler with "Authorization: Bearer TOKEN",
// compared in constant time. An empty token disables the API (404, see
// docs/interfaces.md "Admin APIs"); a missing or wrong token is 401 and a warning on log
// (the service's logger, so log.format and log.level apply; nil: slog.Default()).
func RequireToken(token string, log *slog.Logger, h http.Handler) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" {
			WriteError(w, http.StatusNotFound, "admin API disabled: admin_token is empty")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			// Logged (never the presented token) so that probing shows up.
			log.Warn("admin request refused: missing or wrong bearer token",
				"method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="payhook"`)
			WriteError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// WriteError writes {"error": msg} with status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"error": msg})
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// SortedKeys is a small helper for stable output of map-keyed detail.
func SortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
