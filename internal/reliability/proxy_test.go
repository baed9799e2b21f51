package reliability_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
)

// QueryMode is how queryProxy answers the provider APIs behind it.
type QueryMode int32

// Query modes.
const (
	// Pass forwards every request to the simulator.
	Pass QueryMode = iota
	// Fail answers HTTP 500 without asking the simulator: the provider's API is broken.
	Fail
	// Hang never answers; the request waits until the client gives up.
	Hang
)

// queryProxy sits between the reconciler and the simulator's merchant APIs
// (the accounts' base_url point at it), so a scenario can break a provider's
// query endpoint for every order and then repair it — which the simulator's
// per-order QueryFails/QueryTimeout faults cannot undo. It records every
// request (path and body) it answered with a fault, and counts requests
// naming the ids it is told to watch.
type queryProxy struct {
	srv    *httptest.Server
	target atomic.Value // string: the simulator's root URL
	mode   atomic.Int32
	hc     *http.Client

	mu      sync.Mutex
	faulted []string          // "path body" of each request answered Fail or Hang
	counts  map[string]int    // watched id → requests naming it
	modes   map[QueryMode]int // requests answered in each mode
}

func newQueryProxy() *queryProxy {
	p := &queryProxy{hc: &http.Client{}, counts: map[string]int{}, modes: map[QueryMode]int{}}
	p.srv = httptest.NewServer(p)
	return p
}

// SetMode switches how the following requests are answered.
func (p *queryProxy) SetMode(m QueryMode) { p.mode.Store(int32(m)) }

// Track counts requests whose path or body contains id.
func (p *queryProxy) Track(id string) {
	p.mu.Lock()
	p.counts[id] += 0
	p.mu.Unlock()
}

// Count is how many requests named id (Track it first).
func (p *queryProxy) Count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[id]
}

// Answered is how many requests were answered in mode m.
func (p *queryProxy) Answered(m QueryMode) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.modes[m]
}

// Faulted reports whether a request naming id was answered with a fault.
func (p *queryProxy) Faulted(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.faulted {
		if strings.Contains(f, id) {
			return true
		}
	}
	return false
}

func (p *queryProxy) Close() { p.srv.CloseClientConnections(); p.srv.Close() }

func (p *queryProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	seen := r.URL.RequestURI() + " " + string(body)
	m := QueryMode(p.mode.Load())
	p.mu.Lock()
	p.modes[m]++
	for id := range p.counts {
		if strings.Contains(seen, id) {
			p.counts[id]++
		}
	}
	if m != Pass {
		p.faulted = append(p.faulted, seen)
	}
	p.mu.Unlock()
	switch m {
	case Fail:
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case Hang:
		<-r.Context().Done()
		return
	}
	target, _ := p.target.Load().(string)
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := p.hc.Do(req)
	if err != nil {
		http.Error(w, "upstream failed", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
