package providersim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// maxRequest bounds a control request body.
const maxRequest = 64 << 10

// Handler serves every account's merchant API under /{provider}/{account}/
// (see the package doc for the routing scheme): the rest of the path goes
// to the provider's simulated side (providers.Simulated.SimServe, or
// SimServeDesk), which answers it or reports a 404.
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	if len(parts) < 3 {
		http.NotFound(w, r)
		return
	}
	acct, ok := s.accounts[parts[0]+"/"+parts[1]]
	sp, simulated := simulated[acct.Provider]
	if !ok || !simulated || !s.serveSimulated(sp, w, r, acct, "/"+parts[2]) {
		http.NotFound(w, r)
		return
	}
	s.count(acct.Provider, func(st *ProviderStats) { st.Requests++ })
}

func (s *Sim) count(provider string, f func(*ProviderStats)) {
	s.mu.Lock()
	f(s.stats[provider])
	s.mu.Unlock()
}

func (s *Sim) badSignature(provider string) {
	s.count(provider, func(st *ProviderStats) { st.BadSignatures++ })
}

// queryFaults applies ord's query faults before an answer: QueryTimeout
// hangs until the client or the simulator gives up, QueryFails answers with
// fail. It reports whether the caller should answer normally (and then
// counts the query).
func (s *Sim) queryFaults(w http.ResponseWriter, r *http.Request, ord *order, fail func()) bool {
	s.mu.Lock()
	f := ord.o.Faults
	s.mu.Unlock()
	if f.QueryTimeout {
		// Hang until the client gives up or the simulator closes; never answer.
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
		}
		return false
	}
	if f.QueryFails {
		fail()
		return false
	}
	s.mu.Lock()
	ord.o.Queries++
	s.mu.Unlock()
	return true
}

func (s *Sim) find(id string) *order {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orders[id]
}

func (s *Sim) findByProviderOrder(provider, account, no string) *order {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orders[s.byProviderOrder[providerOrderKey(provider, account, no)]]
}

func readBody(r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxRequest+1))
	return b, err == nil && len(b) <= maxRequest
}

// decodeFlat decodes a JSON object keeping numbers exact.
func decodeFlat(b []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// goResend sends ord's final callback again in the background (SimDesk.Resend).
func (s *Sim) goResend(ord *order) {
	s.spawn(func() { s.sendFinal(ord, CauseRetrigger, true) })
}
