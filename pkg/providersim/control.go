package providersim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"
)

// ErrBadFaults is returned for a fault mix that is not one: a probability
// outside 0..1, a negative DuplicateN or MaxDelay.
var ErrBadFaults = errors.New("providersim: bad fault mix")

// Validate reports whether m is a usable mix: every probability in 0..1
// (0 = never, 1 = every order), DuplicateN and MaxDelay not negative.
func (m FaultMix) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{
		{"drop", m.Drop}, {"duplicate", m.Duplicate}, {"reorder", m.Reorder}, {"corrupt", m.Corrupt},
		{"delay", m.Delay}, {"query_fail", m.QueryFails}, {"query_timeout", m.QueryTimeout},
	} {
		if math.IsNaN(p.v) || p.v < 0 || p.v > 1 {
			return fmt.Errorf("%w: %s = %v, want a probability in 0..1", ErrBadFaults, p.name, p.v)
		}
	}
	if m.DuplicateN < 0 {
		return fmt.Errorf("%w: duplicate_n = %d, want 0 (default 1) or more", ErrBadFaults, m.DuplicateN)
	}
	if m.MaxDelay < 0 {
		return fmt.Errorf("%w: max_delay = %s, want 0 (default 2s) or more", ErrBadFaults, m.MaxDelay)
	}
	return nil
}

// SetFaults replaces the fault mix drawn for every order created from now
// on (Config.Faults); orders already created keep the faults they drew.
func (s *Sim) SetFaults(m FaultMix) error {
	if err := m.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.cfg.Faults = m
	s.mu.Unlock()
	return nil
}

// Faults returns the fault mix currently drawn for new orders.
func (s *Sim) Faults() FaultMix {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Faults
}

// FaultMixJSON is the wire form of a FaultMix on the control endpoint
// (FaultsHandler); the names are cmd/providersim's flag names with
// underscores. MaxDelay is a Go duration ("2s").
type FaultMixJSON struct {
	Drop         float64 `json:"drop"`
	Duplicate    float64 `json:"duplicate"`
	DuplicateN   int     `json:"duplicate_n"`
	Reorder      float64 `json:"reorder"`
	Corrupt      float64 `json:"corrupt"`
	Delay        float64 `json:"delay"`
	MaxDelay     string  `json:"max_delay"`
	QueryFail    float64 `json:"query_fail"`
	QueryTimeout float64 `json:"query_timeout"`
}

// JSON returns m's wire form.
func (m FaultMix) JSON() FaultMixJSON {
	j := FaultMixJSON{Drop: m.Drop, Duplicate: m.Duplicate, DuplicateN: m.DuplicateN, Reorder: m.Reorder,
		Corrupt: m.Corrupt, Delay: m.Delay, QueryFail: m.QueryFails, QueryTimeout: m.QueryTimeout}
	if m.MaxDelay > 0 {
		j.MaxDelay = m.MaxDelay.String()
	}
	return j
}

// Mix converts the wire form back; an unparsable MaxDelay is ErrBadFaults.
// It does not Validate.
func (j FaultMixJSON) Mix() (FaultMix, error) {
	m := FaultMix{Drop: j.Drop, Duplicate: j.Duplicate, DuplicateN: j.DuplicateN, Reorder: j.Reorder,
		Corrupt: j.Corrupt, Delay: j.Delay, QueryFails: j.QueryFail, QueryTimeout: j.QueryTimeout}
	if j.MaxDelay != "" {
		d, err := time.ParseDuration(j.MaxDelay)
		if err != nil {
			return FaultMix{}, fmt.Errorf("%w: max_delay %q is not a duration", ErrBadFaults, j.MaxDelay)
		}
		m.MaxDelay = d
	}
	return m, nil
}

// FaultsHandler is the simulator's control endpoint, for changing a running
// simulator's faults on request (cmd/providersim and devstack serve it
// at /faults):
//
//	GET  /faults   → 200 {"drop":0,"duplicate":0,...}: the current mix
//	POST /faults   {"drop":0.2,"corrupt":0.05} → 200 with the new mix
//
// A POST replaces the whole mix: a field left out is 0, so {} turns every
// fault off. Unknown fields, a probability outside 0..1 or a bad max_delay
// are a 400 and change nothing. The mix applies to orders created after the
// change (their faults are drawn when they are created).
func (s *Sim) FaultsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPost, http.MethodPut:
			body, ok := readBody(r)
			if !ok {
				http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
				return
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			var j FaultMixJSON
			if err := dec.Decode(&j); err != nil {
				http.Error(w, "bad fault mix: "+err.Error(), http.StatusBadRequest)
				return
			}
			if dec.More() {
				http.Error(w, "bad fault mix: trailing data", http.StatusBadRequest)
				return
			}
			m, err := j.Mix()
			if err == nil {
				err = s.SetFaults(m)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			s.log.Info("providersim: fault mix changed", "faults", m.String())
		default:
			w.Header().Set("Allow", "GET, POST, PUT")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b, _ := json.Marshal(s.Faults().JSON())
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(b, '\n'))
	})
}

// String renders m as flags would set it, for logs and start-up lines:
// "none" for the zero mix.
func (m FaultMix) String() string {
	if m.zero() {
		return "none"
	}
	var b bytes.Buffer
	add := func(name string, p float64) {
		if p > 0 {
			fmt.Fprintf(&b, " %s=%g", name, p)
		}
	}
	add("drop", m.Drop)
	add("duplicate", m.Duplicate)
	if m.Duplicate > 0 && m.DuplicateN > 1 {
		fmt.Fprintf(&b, " duplicate-n=%d", m.DuplicateN)
	}
	add("reorder", m.Reorder)
	add("corrupt", m.Corrupt)
	add("delay", m.Delay)
	if m.Delay > 0 && m.MaxDelay > 0 {
		fmt.Fprintf(&b, " max-delay=%s", m.MaxDelay)
	}
	add("query-fail", m.QueryFails)
	add("query-timeout", m.QueryTimeout)
	return b.String()[1:]
}
