package bench

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

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
	return baselineHandler(accts, func(c echo.Context, _ []byte, ev events.Event) (int, string) {
		ctx := c.Request().Context()
		id := ev.ID()
		fresh, err := rdb.SetNX(ctx, "naive:"+id, 1, 7*24*time.Hour).Result()
		if err != nil {
			return http.StatusServiceUnavailable, "redis"
		}
		if !fresh {
			return 0, ""
		}
		b, err := ev.MarshalCloudEvent()
		if err != nil {
			return http.StatusBadRequest, "invalid event"
		}
		if _, err := js.Publish(ctx, naiveSubject+ev.Provider+"."+string(ev.Kind), b, jetstream.WithMsgID(id)); err != nil {
			rdb.Del(context.WithoutCancel(ctx), "naive:"+id)
			return http.StatusServiceUnavailable, "nats"
		}
		return 0, ""
	})
}

// ServeNaive serves NaiveHandler on addr until ctx ends, with the same
// http.Server settings as ingress, creating its stream (file storage) first.
func ServeNaive(ctx context.Context, addr, natsURL, redisURL string) error {
	nc, js, err := benchStream(ctx, "naive", natsURL, NaiveStream, naiveSubject)
	if err != nil {
		return err
	}
	defer nc.Close()
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	return serveBaseline(ctx, addr, NaiveHandler(js, rdb, Accounts()))
}
