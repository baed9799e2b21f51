package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/registry"
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
	byID := map[string]providers.Account{}
	for _, a := range accts {
		byID[a.ID] = a
	}
	inbound := registry.Inbound()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.POST("/v1/callbacks/:provider/:account/:kind", func(c echo.Context) error {
		p, ok := inbound[c.Param("provider")]
		a, ok2 := byID[c.Param("account")]
		if !ok || !ok2 || a.Provider != p.Name() {
			return c.String(http.StatusNotFound, "unknown account")
		}
		body, err := io.ReadAll(io.LimitReader(c.Request().Body, 64<<10))
		if err != nil {
			return c.String(http.StatusBadRequest, "unreadable")
		}
		kind := events.Kind(c.Param("kind"))
		ev, err := p.Parse(a, providers.Request{Kind: kind, Header: c.Request().Header, Body: body,
			RemoteAddr: c.Request().RemoteAddr, ReceivedAt: time.Now().UTC()})
		if err != nil {
			return c.String(http.StatusUnauthorized, err.Error())
		}
		b, err := ev.MarshalCloudEvent()
		if err != nil {
			return c.String(http.StatusBadRequest, "invalid event")
		}
		id := ev.ID()
		msg := &nats.Msg{Subject: minimalSubject + ev.Provider + "." + string(ev.Kind), Data: b, Header: nats.Header{}}
		if signer != nil {
			signer.Sign(msg.Header, id, time.Now(), b)
		}
		if _, err := js.PublishMsg(c.Request().Context(), msg, jetstream.WithMsgID(id)); err != nil {
			return c.String(http.StatusServiceUnavailable, "nats")
		}
		r := p.Ack(kind)
		return c.Blob(r.Status, r.ContentType, r.Body)
	})
	e.GET("/readyz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	return e
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
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return fmt.Errorf("minimal: nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: MinimalStream, Subjects: []string{minimalSubject + ">"}, Storage: jetstream.FileStorage,
		Duplicates: 5 * time.Minute,
	}); err != nil {
		return fmt.Errorf("minimal: stream: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := ops.NewServer(MinimalHandler(js, Accounts(), signer), ops.DefaultTimeouts)
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
