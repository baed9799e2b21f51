package bench

import (
	"context"
	"crypto/rand"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Minimal stream and subjects: the minimal durable handler stores apart
// from PAYHOOK_EVENTS, so the report's event counts stay payhook's.
const (
	MinimalStream  = "BENCH_MINIMAL"
	minimalSubject = "bench.minimal."
)

// MinimalHandler is the benchmark's third baseline, the minimal durable
// handler (docs/benchmarks.md): parse and verify with the provider's own
// package (MD5 for jpglo, AES for mpurse, …), render the CloudEvent, ONE
// JetStream publish on file storage awaited until its PubAck, answer the
// provider's ack. No Redis, no raw record, no signature, no metrics, no
// log line (with signer set it also signs each event as payhook does, the
// bus contract's one unavoidable cost). It is the floor of any design that acknowledges only what is
// stored: a failed publish answers 503. A resend is collapsed by
// JetStream's duplicate window (Nats-Msg-Id = event id) only.
func MinimalHandler(js jetstream.JetStream, accts []providers.Account, signer *events.Signer) http.Handler {
	return baselineHandler(accts, func(c echo.Context, ev events.Event) (int, string) {
		b, err := ev.MarshalCloudEvent()
		if err != nil {
			return http.StatusBadRequest, "invalid event"
		}
		id := ev.ID()
		msg := &nats.Msg{Subject: minimalSubject + ev.Provider + "." + string(ev.Kind), Data: b, Header: nats.Header{}}
		if signer != nil {
			signer.Sign(msg.Header, id, time.Now(), b)
		}
		if _, err := js.PublishMsg(c.Request().Context(), msg, jetstream.WithMsgID(id)); err != nil {
			return http.StatusServiceUnavailable, "nats"
		}
		return 0, ""
	})
}

// ServeMinimal serves MinimalHandler on addr until ctx ends, with the same
// http.Server settings as ingress, creating its stream (file storage, the
// same duplicate window as PAYHOOK_EVENTS' default) first. With sign, every
// event is signed with a fresh ed25519 key.
func ServeMinimal(ctx context.Context, addr, natsURL string, sign bool) error {
	var signer *events.Signer
	if sign {
		k, err := events.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		if signer, err = events.NewSigner(k); err != nil {
			return err
		}
	}
	nc, js, err := benchStream(ctx, "minimal", natsURL, MinimalStream, minimalSubject)
	if err != nil {
		return err
	}
	defer nc.Close()
	return serveBaseline(ctx, addr, MinimalHandler(js, Accounts(), signer))
}
