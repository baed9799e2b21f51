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
	"github.com/redis/go-redis/v9"

	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Naive stream and subjects: the straightforward handler stores its events
// apart from PAYHOOK_EVENTS, so the report's event counts stay payhook's.
const (
	NaiveStream  = "BENCH_NAIVE"
	naiveSubject = "bench.naive."
)

// NaiveHandler is the benchmark's second baseline (docs/benchmarks.md): "a straightforward
// handler (parse, MD5 verify, one Redis SET NX, one synchronous JetStream
// publish per request)". It uses the same provider packages as ingress for
// parsing and verification, so the difference to payhook is the design of
// the storing path alone: one SET NX EX per request on its own round trip
// (go-redis's pool, no coalescing), one synchronous publish waiting for its
// PubAck, no PAYHOOK_RAW record, no per-order state. It keeps the rule that
// nothing is acknowledged before it is stored (a failed publish releases
// the claim and answers 503).
func NaiveHandler(js jetstream.JetStream, rdb *redis.Client, accts []providers.Account) http.Handler {
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
		ctx := c.Request().Context()
		id := ev.ID()
		fresh, err := rdb.SetNX(ctx, "naive:"+id, 1, 7*24*time.Hour).Result()
		if err != nil {
			return c.String(http.StatusServiceUnavailable, "redis")
		}
		if fresh {
			b, err := ev.MarshalCloudEvent()
			if err != nil {
				return c.String(http.StatusBadRequest, "invalid event")
			}
			if _, err := js.Publish(ctx, naiveSubject+ev.Provider+"."+string(ev.Kind), b, jetstream.WithMsgID(id)); err != nil {
				rdb.Del(context.WithoutCancel(ctx), "naive:"+id)
				return c.String(http.StatusServiceUnavailable, "nats")
			}
		}
		r := p.Ack(kind)
		return c.Blob(r.Status, r.ContentType, r.Body)
	})
	e.GET("/readyz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	return e
}

// ServeNaive serves NaiveHandler on addr until ctx ends, with the same
// http.Server settings as ingress, creating its stream (file storage) first.
func ServeNaive(ctx context.Context, addr, natsURL, redisURL string) error {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return fmt.Errorf("naive: nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: NaiveStream, Subjects: []string{naiveSubject + ">"}, Storage: jetstream.FileStorage,
		Duplicates: 5 * time.Minute,
	}); err != nil {
		return fmt.Errorf("naive: stream: %w", err)
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := ops.NewServer(NaiveHandler(js, rdb, Accounts()), ops.DefaultTimeouts)
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
