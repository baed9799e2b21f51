package ingress

import (
	"context"
	"encoding/base64"
	"github.com/payhook/payhook/pkg/events"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/payhook/payhook/internal/natsbus"
)

// RawRecord is one inbound request as received, with its verdict, as stored
// on PAYHOOK_RAW (subject payhook.raw.{provider}.{verdict}) for audit and
// replay. The body is kept verbatim: Body when it is UTF-8, else BodyBase64.
type RawRecord struct {
	ReceivedAt time.Time           `json:"received_at"`
	Provider   string              `json:"provider"`
	Account    string              `json:"account"`
	Kind       string              `json:"kind"`
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	RemoteAddr string              `json:"remote_addr"`
	Headers    map[string][]string `json:"headers"`
	Body       string              `json:"body,omitempty"`
	BodyBase64 []byte              `json:"body_base64,omitempty"`
	Verdict    string              `json:"verdict"`
	Reason     string              `json:"reason,omitempty"`
	Status     int                 `json:"status"`
	EventID    string              `json:"event_id,omitempty"`
	DurationMS float64             `json:"duration_ms"`
}

// Headers never kept in the raw record: credentials of whoever proxied the call.
var dropHeaders = map[string]bool{"Authorization": true, "Cookie": true, "Proxy-Authorization": true}

// record stores the raw record of o and returns the outcome to answer.
//
// A refusal (4xx) is answered only once its record is acknowledged by
// JetStream: a provider does not retry a 4xx, so a refusal whose record was
// lost — NATS down, the reconnect buffer full — would leave no trace at all,
// and CONTRACT.md "Callbacks in" promises the request recorded as rejected.
// When the record cannot be stored the refusal becomes a 503: the provider
// retries, and the retry is refused and recorded once NATS is back. Found by
// the reliability suite (internal/reliability, nats_outage). Refusals are the
// rare path, so the round trip costs little; every other record (accepted,
// duplicate, unavailable, …) stays asynchronous: its event is already stored,
// or the provider retries anyway.
func (s *Server) record(ctx context.Context, c echo.Context, o outcome, body []byte, start time.Time) outcome {
	if o.verdict != VerdictRejected {
		s.recordRaw(ctx, c, o, body, start)
		return o
	}
	msg, err := s.rawMsg(c, o, body, start)
	if err == nil {
		timeout := s.cfg.Ingress.PublishTimeout.D()
		if timeout <= 0 {
			timeout = 5 * time.Second // config.Load's default
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		_, err = natsbus.Publish(pctx, s.js, msg.Subject, "", msg.Data, nil)
		cancel()
	}
	if err == nil {
		return o
	}
	s.m.rawErrors.Inc()
	s.log.Warn("refusal not recorded; answering 503", "provider", o.provider, "reason", o.reason, "err", err)
	o.verdict, o.status, o.reason, o.detail = VerdictUnavailable, http.StatusServiceUnavailable, "unavailable", "cannot record the request now; retry later"
	s.recordRaw(ctx, c, o, body, start)
	return o
}

// recordRaw publishes the raw record asynchronously: the verdict is already
// decided and the event (if any) already stored, so the provider's reply does
// not wait for the audit copy. Failures are counted
// (payhook_ingress_raw_publish_errors_total) and logged.
func (s *Server) recordRaw(_ context.Context, c echo.Context, o outcome, body []byte, start time.Time) {
	msg, err := s.rawMsg(c, o, body, start)
	if err != nil {
		s.m.rawErrors.Inc()
		return
	}
	// Failures after sending are counted by the error handler set in New;
	// no goroutine per request waits for the ack.
	if _, err := s.rawJS.PublishMsgAsync(msg); err != nil {
		s.m.rawErrors.Inc()
		s.log.Warn("raw record not stored", "provider", o.provider, "verdict", o.verdict, "err", err)
	}
}

// rawMsg renders the raw record of one request as a message on
// payhook.raw.{provider}.{verdict}.
func (s *Server) rawMsg(c echo.Context, o outcome, body []byte, start time.Time) (*nats.Msg, error) {
	req := c.Request()
	rec := RawRecord{
		ReceivedAt: start.UTC(), Provider: o.provider, Account: o.account, Kind: o.kind,
		Method: req.Method, Path: req.URL.Path, RemoteAddr: req.RemoteAddr,
		Headers: make(map[string][]string, len(req.Header)),
		Verdict: o.verdict, Reason: o.reason, Status: o.status, EventID: o.eventID,
		DurationMS: float64(s.now().Sub(start).Microseconds()) / 1000,
	}
	if rec.Status == 0 {
		rec.Status = http.StatusOK
	}
	for k, v := range req.Header {
		if !dropHeaders[k] {
			rec.Headers[k] = v
		}
	}
	if utf8.Valid(body) {
		rec.Body = string(body)
	} else {
		rec.BodyBase64 = body
	}
	return &nats.Msg{Subject: "payhook.raw." + o.provider + "." + o.verdict, Data: rec.appendJSON(make([]byte, 0, 512+len(body)))}, nil
}

// appendJSON encodes the record as json.Marshal would (same fields, names
// and values; TestRawRecordEncoding checks it) without reflection: it runs
// for every inbound request.
func (r *RawRecord) appendJSON(b []byte) []byte {
	str := func(b []byte, key, v string, omitEmpty bool) []byte {
		if omitEmpty && v == "" {
			return b
		}
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		return events.AppendJSONString(b, v)
	}
	b = append(b, `{"received_at":"`...)
	b = r.ReceivedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = str(b, "provider", r.Provider, false)
	b = str(b, "account", r.Account, false)
	b = str(b, "kind", r.Kind, false)
	b = str(b, "method", r.Method, false)
	b = str(b, "path", r.Path, false)
	b = str(b, "remote_addr", r.RemoteAddr, false)
	b = append(b, `,"headers":{`...)
	first := true
	for k, vs := range r.Headers {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = events.AppendJSONString(b, k)
		b = append(b, ':')
		if vs == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for i, v := range vs {
			if i > 0 {
				b = append(b, ',')
			}
			b = events.AppendJSONString(b, v)
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	b = str(b, "body", r.Body, true)
	if len(r.BodyBase64) > 0 {
		b = append(b, `,"body_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.BodyBase64)
		b = append(b, '"')
	}
	b = str(b, "verdict", r.Verdict, false)
	b = str(b, "reason", r.Reason, true)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = str(b, "event_id", r.EventID, true)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, r.DurationMS, 'f', -1, 64)
	return append(b, '}')
}

// Flush waits (bounded by ctx) until every raw record published so far is acknowledged.
func (s *Server) Flush(ctx context.Context) {
	select {
	case <-s.rawJS.PublishAsyncComplete():
	case <-ctx.Done():
	}
}
