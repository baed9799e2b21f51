package bench

import (
	"context"
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

// What the baseline handlers share: the callback route, parsing and
// verification with the provider packages ingress uses, and serving with
// ingress's http.Server settings. Only the storing step differs.

// storeFunc stores a verified callback's event (body is the request body
// as read) and reports the HTTP status to answer instead of the provider's
// acknowledgement (0: acknowledge).
type storeFunc func(c echo.Context, body []byte, ev events.Event) (status int, msg string)

// baselineHandler serves POST /v1/callbacks/{provider}/{account}/{kind}:
// parse and verify the body with the account's provider, store, and answer
// in the provider's dialect; GET /readyz answers ok.
func baselineHandler(accts []providers.Account, store storeFunc) http.Handler {
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
		if status, msg := store(c, body, ev); status != 0 {
			return c.String(status, msg)
		}
		r := p.Ack(kind)
		return c.Blob(r.Status, r.ContentType, r.Body)
	})
	e.GET("/readyz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	return e
}

// benchStream connects to NATS and creates a baseline's own stream (file
// storage, PAYHOOK_EVENTS' default duplicate window) over subjects
// prefix + ">". The caller closes the connection.
func benchStream(ctx context.Context, name, natsURL, stream, prefix string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: nats: %w", name, err)
	}
	js, err := jetstream.New(nc)
	if err == nil {
		err = createBenchStream(ctx, js, stream, prefix, 0)
	}
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("%s: stream: %w", name, err)
	}
	return nc, js, nil
}

// createBenchStream creates a baseline's stream over subjects prefix + ">"
// on file storage, with PAYHOOK_EVENTS' default duplicate window, holding
// at most maxBytes (0: no limit), oldest discarded.
func createBenchStream(ctx context.Context, js jetstream.JetStream, stream, prefix string, maxBytes int64) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{prefix + ">"}, Storage: jetstream.FileStorage,
		Duplicates: 5 * time.Minute, MaxBytes: maxBytes, Discard: jetstream.DiscardOld,
	})
	return err
}

// serveBaseline serves h on addr with ingress's server timeouts until ctx ends.
func serveBaseline(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := ops.NewServer(h, ops.DefaultTimeouts)
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
