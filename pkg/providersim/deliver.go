package providersim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// maxReply bounds how much of ingress's reply is read.
const maxReply = 64 << 10

// send starts one delivery of ord's callback in status: it makes the first
// attempt before returning, and, if that was not acknowledged, retries on
// the provider's schedule (scaled) in the background. reuse sends the bytes
// of the previous callback in the same status again (a duplicate);
// otherwise they are built afresh, except that all attempts of one
// delivery carry the same bytes.
func (s *Sim) send(ord *order, cause string, status Outcome, reuse bool) {
	s.mu.Lock()
	corrupt := ord.o.Faults.CorruptSignature
	key := string(status)
	if cause == CauseProgress {
		key = "progress"
	}
	p, ok := ord.payloads[key]
	if !ok || !reuse {
		var err error
		p, err = build(ord, status, corrupt)
		if err != nil {
			s.mu.Unlock()
			s.log.Error("providersim: cannot build callback", "provider", ord.o.Provider, "account", ord.o.Account, "order", ord.o.ID, "err", err)
			return
		}
		ord.payloads[key] = p
	}
	url := ord.notify
	idx := len(ord.o.Deliveries)
	ord.o.Deliveries = append(ord.o.Deliveries, Delivery{Seq: idx + 1, Cause: cause, Status: status, Corrupt: corrupt, URL: url})
	s.mu.Unlock()

	if s.attempt(ord, idx, url, p, 1) {
		return
	}
	sched := ScheduleFor(ord.o.Provider)
	s.spawn(func() {
		for i, d := range sched {
			if !sleep(s.ctx, scale(d, s.cfg.TimeScale)) {
				return
			}
			if s.attempt(ord, idx, url, resign(ord, p, corrupt), i+2) {
				return
			}
		}
		s.mu.Lock()
		ord.o.Deliveries[idx].GaveUp = true
		s.stats[ord.o.Provider].GaveUp++
		s.mu.Unlock()
		s.log.Warn("providersim: gave up on callback", "provider", ord.o.Provider, "account", ord.o.Account, "order", ord.o.ID, "attempts", len(sched)+1)
	})
}

// resign signs a retry of p afresh, as a provider whose signature covers
// the time of sending (Stripe's t=) does for every attempt; p's bytes stay.
// A corrupted callback stays corrupted, and a provider without a simulated
// side, or whose signature has no time in it, sends p as it is.
func resign(ord *order, p payload, corrupt bool) payload {
	sp, ok := simulated[ord.o.Provider]
	if !ok || corrupt {
		return p
	}
	h, err := sp.SimSign(ord.acct, ord.o.Kind, p.body, time.Now())
	if err != nil {
		return p
	}
	return payload{header: h, body: p.body}
}

// attempt POSTs p once and records the result; it reports whether the
// provider would take the reply as received.
func (s *Sim) attempt(ord *order, idx int, url string, p payload, n int) bool {
	a := Attempt{N: n, At: time.Now()}
	status, body, err := s.post(url, p)
	if err != nil && s.ctx.Err() != nil {
		return false // cut short by Close: not an attempt the receiver answered
	}
	if err != nil {
		a.Err = errText(err)
	}
	a.HTTPStatus = status
	a.Acked = err == nil && ackOf(ord.o.Provider, status, body)

	s.mu.Lock()
	d := &ord.o.Deliveries[idx]
	d.Attempts = append(d.Attempts, a)
	st := s.stats[ord.o.Provider]
	st.CallbacksSent++
	if n > 1 {
		st.Retried++
	}
	if a.Acked {
		d.Acked = true
		st.Acked++
	} else {
		st.Rejected++
	}
	s.mu.Unlock()
	s.log.Debug("providersim: callback", "provider", ord.o.Provider, "account", ord.o.Account, "order", ord.o.ID,
		"delivery", idx+1, "attempt", n, "http", status, "acked", a.Acked)
	return a.Acked
}

func (s *Sim) post(url string, p payload) (int, []byte, error) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(p.body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range p.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "payhook-providersim")
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, body, nil
}

// errText is a payload-free description of a transport error.
func errText(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "request failed"
	}
}
