package bench

import (
	"context"
	"crypto/rand"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Minimal streams and subjects: the minimal durable handler stores apart
// from PAYHOOK_EVENTS and PAYHOOK_RAW, so the report's event counts stay
// payhook's.
const (
	MinimalStream    = "BENCH_MINIMAL"
	minimalSubject   = "bench.minimal."
	MinimalRawStream = "BENCH_MINIMAL_RAW"
	minimalRawPrefix = "bench.minimalraw."
	// rawMaxBytes bounds the floor's raw records (~1.5 KB each): a long
	// run discards its oldest instead of filling the disk.
	rawMaxBytes = 1 << 30
)

// MinimalOptions are what a variant of the minimal handler adds to it.
type MinimalOptions struct {
	// Signer signs each event as payhook does (the bus contract).
	Signer *events.Signer
	// Raw, when set, also records each request as ingress records a
	// verified one (the audit contract): ingress's record encoding,
	// published without waiting for its acknowledgement, on a file stream
	// like PAYHOOK_RAW. With Signer this is the
	// contract floor: what any handler keeping payhook's contract does per
	// callback, without the dedupe store and the per-order state.
	Raw jetstream.JetStream
}

// MinimalHandler is the benchmark's third baseline, the minimal durable
// handler (docs/benchmarks.md): parse and verify with the provider's own
// package (MD5 for jpglo, AES for mpurse, …), render the CloudEvent, ONE
// JetStream publish on file storage awaited until its PubAck, answer the
// provider's ack. No Redis, no raw record, no signature, no metrics, no
// log line unless o adds the signature or the raw record. It is the floor
// of any design that acknowledges only what is stored: a failed publish
// answers 503. A resend is collapsed by JetStream's duplicate window
// (Nats-Msg-Id = event id) only.
func MinimalHandler(js jetstream.JetStream, accts []providers.Account, o MinimalOptions) http.Handler {
	return baselineHandler(accts, func(c echo.Context, body []byte, ev events.Event) (int, string) {
		start := time.Now()
		b, err := ev.MarshalCloudEvent()
		if err != nil {
			return http.StatusBadRequest, "invalid event"
		}
		id := ev.ID()
		msg := &nats.Msg{Subject: minimalSubject + ev.Provider + "." + string(ev.Kind), Data: b, Header: nats.Header{}}
		if o.Signer != nil {
			o.Signer.Sign(msg.Header, id, start, b)
		}
		if _, err := js.PublishMsg(c.Request().Context(), msg, jetstream.WithMsgID(id)); err != nil {
			return http.StatusServiceUnavailable, "nats"
		}
		if o.Raw != nil {
			req := c.Request()
			rec := ingress.RawRecord{
				ReceivedAt: start.UTC(), Provider: ev.Provider, Account: ev.Account, Kind: string(ev.Kind),
				Method: req.Method, Path: req.URL.Path, RemoteAddr: req.RemoteAddr, ClientIP: c.RealIP(),
				Headers: req.Header, Body: body, BodyLength: int64(len(body)),
				Verdict: ingress.VerdictAccepted, Status: http.StatusOK, EventID: id,
				DurationMS: float64(time.Since(start).Microseconds()) / 1000,
			}
			// As ingress: the event is stored, so a failed audit copy does
			// not turn the answer into a 503.
			_, _ = o.Raw.PublishMsgAsync(ingress.EncodeRawRecord(minimalRawPrefix+ev.Provider+".accepted", &rec))
		}
		return 0, ""
	})
}

// ServeMinimal serves MinimalHandler on addr until ctx ends, with the same
// http.Server settings as ingress, creating its stream (file storage, the
// same duplicate window as PAYHOOK_EVENTS' default) first. With sign, every
// event is signed with a fresh ed25519 key; with raw, every request is
// recorded (MinimalOptions.Raw).
func ServeMinimal(ctx context.Context, addr, natsURL string, sign, raw bool) error {
	var o MinimalOptions
	if sign {
		k, err := events.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		if o.Signer, err = events.NewSigner(k); err != nil {
			return err
		}
	}
	nc, js, err := benchStream(ctx, "minimal", natsURL, MinimalStream, minimalSubject)
	if err != nil {
		return err
	}
	defer nc.Close()
	if raw {
		if err := createBenchStream(ctx, js, MinimalRawStream, minimalRawPrefix, rawMaxBytes); err != nil {
			return err
		}
		o.Raw = js
	}
	return serveBaseline(ctx, addr, MinimalHandler(js, Accounts(), o))
}
