package ingress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/pkg/events"
)

// UnroutedBodyBytes is how much of the body of a request to an unknown
// route, provider, account or kind is recorded (with the whole body's
// length and SHA-256): such a request can never verify, so its body serves
// only to recognise it, and the first KiB does that. Every other body is
// recorded whole (up to ingress.body_limit): a rejection may be reprocessed
// once a key is fixed, and needs its exact bytes for that.
const UnroutedBodyBytes = 1024

// Headers never kept in the raw record: credentials of whoever proxied the call.
var dropHeaders = map[string]bool{"Authorization": true, "Cookie": true, "Proxy-Authorization": true}

// rawBody is what a record keeps of a request body.
type rawBody struct {
	data      []byte
	length    int64
	truncated bool
	sum       [sha256.Size]byte
}

func fullBody(b []byte) rawBody { return rawBody{data: b, length: int64(len(b))} }

// sampleBody reads r up to ingress.body_limit+1 bytes, hashing all of them
// and keeping the first UnroutedBodyBytes.
func (s *Server) sampleBody(r io.Reader) rawBody {
	h := sha256.New()
	head := make([]byte, 0, UnroutedBodyBytes)
	n, _ := io.Copy(io.MultiWriter(h, &headWriter{b: &head}), io.LimitReader(r, s.cfg.Ingress.BodyLimit+1))
	rb := rawBody{data: head, length: n, truncated: n > int64(len(head))}
	if rb.truncated {
		h.Sum(rb.sum[:0])
	}
	return rb
}

// headWriter keeps the first cap(*b) bytes written to it.
type headWriter struct{ b *[]byte }

func (w *headWriter) Write(p []byte) (int, error) {
	if room := cap(*w.b) - len(*w.b); room > 0 {
		*w.b = append(*w.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// record stores the raw record of o and returns the outcome to answer.
//
// A refusal (4xx) is first charged to its client address's rejection
// bucket (ingress.rejections_per_second): past the rate it is answered 429,
// counted in payhook_ingress_rate_limited_total and not recorded, so one
// source cannot cycle PAYHOOK_RAW_REJECTED at wire speed. Requests that
// verified never reach the bucket.
//
// A refusal is answered only once its record is acknowledged by
// JetStream: a provider does not retry a 4xx, so a refusal whose record was
// lost — NATS down, the reconnect buffer full — would leave no trace at
// all. When the record cannot be stored the refusal becomes a 503 (counted
// in payhook_ingress_raw_publish_errors_total, itself not recorded): the
// provider retries, and the retry is refused and recorded once NATS is
// back. Refusals are the rare path, so the round trip costs little; every
// other record (accepted, duplicate, unavailable, …) stays asynchronous:
// its event is already stored, or the provider retries anyway.
//
// A request that verified but stored nothing new (duplicate, stale,
// conflict) is charged to its event id's bucket (replayBurst, then one per
// replayEvery): past it, it is answered as usual — its event is stored, and
// a provider's retry of a stored event is never refused — but its record is
// not written, only counted in payhook_ingress_raw_records_skipped_total.
// Without it one captured genuine callback, replayed at wire speed, would
// fill PAYHOOK_RAW and discard the records of accepted callbacks. Accepted
// and unavailable records are never skipped: the first is the audit trail
// itself, the second what an operator needs to see.
func (s *Server) record(ctx context.Context, c echo.Context, o outcome, body rawBody, start time.Time) outcome {
	if o.verdict != VerdictRejected {
		if repeatVerdict(o.verdict) && !s.repeats.allow(o.eventID, s.now()) {
			s.m.rawSkipped.WithLabelValues(o.provider, o.verdict).Inc()
			return o
		}
		s.recordRaw(ctx, c, o, body, start)
		return o
	}
	if !s.limiter.allow(s.clientAddr(c), s.now()) {
		s.m.rateLimited.WithLabelValues(o.provider, string(o.reason)).Inc()
		o.limited, o.status = true, http.StatusTooManyRequests
		return o
	}
	rec := o
	if o.orderID != "" && !s.repeats.allow(o.eventID, s.now()) {
		// A verified callback refused again and again (a captured one
		// replayed past max_age): recorded as every refusal, but named
		// under its order (for the trace index) only at the pace of the
		// repeats of one event, so it cannot flood the index.
		rec.orderID = ""
	}
	if o.claim != nil {
		// Anyone can claim any order: past the claim buckets the refusal
		// is recorded all the same, but names no order. Read only now, so
		// that a refusal past its address's rate costs no second decode.
		if id := o.claim(); id != "" {
			if s.claims.allow(o.account, id, s.now()) {
				rec.claimedOrderID = id
			} else {
				s.m.claimsDropped.WithLabelValues(o.provider).Inc()
			}
		}
	}
	msg := s.rawMsg(c, rec, body, start)
	timeout := s.cfg.Ingress.PublishTimeout.D()
	if timeout <= 0 {
		timeout = 5 * time.Second // config.Load's default
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	_, err := natsbus.Publish(pctx, s.js, msg.Subject, "", msg.Data, msg.Header)
	cancel()
	if err == nil {
		return o
	}
	s.m.rawErrors.Inc()
	s.log.WarnContext(ctx, "refusal not recorded; answering 503", append([]any{"provider", o.provider, "account", o.account, "kind", o.kind,
		"reason", o.reason, "err", err}, o.ids()...)...)
	o = o.answered(errRecordUnavailable, nil, "")
	// No record of this 503 on PAYHOOK_RAW: the request did not verify, and
	// whenever PAYHOOK_RAW_REJECTED refuses writes (slow, without quorum,
	// deleted) a flood would otherwise land on PAYHOOK_RAW. The provider
	// retries a 503, and the retry is recorded once the rejection can be.
	return o
}

// repeatVerdict reports whether a verified request with verdict v stored
// nothing new that an earlier copy did not already. A conflict counts: its
// first copy finds its event id's bucket full, so only repeats are
// limited.
func repeatVerdict(v string) bool {
	return v == VerdictDuplicate || v == VerdictStale || v == VerdictConflict
}

// recordRaw publishes the raw record asynchronously: the verdict is already
// decided and the event (if any) already stored, so the provider's reply does
// not wait for the audit copy. Failures are counted
// (payhook_ingress_raw_publish_errors_total) and logged.
func (s *Server) recordRaw(ctx context.Context, c echo.Context, o outcome, body rawBody, start time.Time) {
	// Failures after sending are counted by the error handler set in New;
	// no goroutine per request waits for the ack.
	if _, err := s.rawJS.PublishMsgAsync(s.rawMsg(c, o, body, start)); err != nil {
		s.m.rawErrors.Inc()
		s.log.WarnContext(ctx, "raw record not stored", append([]any{"provider", o.provider, "account", o.account, "kind", o.kind,
			"verdict", o.verdict, "err", err}, o.ids()...)...)
	}
}

// rawMsg renders the raw record of one request as a message on
// payhook.raw.{provider}.{verdict}.
func (s *Server) rawMsg(c echo.Context, o outcome, body rawBody, start time.Time) *nats.Msg {
	req := c.Request()
	rec := RawRecord{
		ReceivedAt: start.UTC(), Provider: o.provider, Account: o.account, Kind: o.kind,
		Method: req.Method, Path: req.URL.Path, RemoteAddr: req.RemoteAddr, ClientIP: s.clientAddr(c),
		Headers: req.Header,
		Body:    body.data, BodyLength: body.length, BodyTruncated: body.truncated,
		Verdict: o.verdict, Reason: string(o.reason), Status: o.status, EventID: o.eventID,
		DurationMS: float64(s.now().Sub(start).Microseconds()) / 1000,
	}
	if o.verdict == VerdictRejected && events.ValidOrderID(o.orderID) {
		// Verified bytes named it: the trace index lists the refusal under
		// its order (record limits it to the repeats' pace). An order id in
		// bytes that did not verify never goes here, only below as a claim.
		rec.OrderID = o.orderID
	} else if o.verdict == VerdictRejected && events.ValidOrderID(o.claimedOrderID) {
		// Unverified bytes claimed it: listed under that order, marked
		// unverified (record bounds it per account and per claimed order).
		rec.ClaimedOrderID = o.claimedOrderID
	}
	if body.truncated {
		rec.BodySHA256 = hex.EncodeToString(body.sum[:])
	}
	if rec.Status == 0 {
		rec.Status = http.StatusOK
	}
	return EncodeRawRecord(events.RawSubject(o.provider, o.verdict), &rec)
}

// Flush waits (bounded by ctx) until every raw record published so far is acknowledged.
func (s *Server) Flush(ctx context.Context) {
	select {
	case <-s.rawJS.PublishAsyncComplete():
	case <-ctx.Done():
	}
}
