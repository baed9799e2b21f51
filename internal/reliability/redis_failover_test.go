package reliability_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/e2e"
)

// testRedisFailover kills the Redis master (SIGKILL) under load with the
// services on a Sentinel-aware client (redis.sentinel): the Sentinels
// promote the replica, the services follow it, and dedupe is back. In
// between, ingress falls back to JetStream's duplicate window
// (payhook_dedupe_fallback_active 1, dedupe_total{result="unavailable"}):
// no callback refused, nothing stored twice (the books).
func testRedisFailover(t *testing.T, res *result) {
	r := begin(t, res, e2e.Options{RedisSentinel: true}, defaultMix)
	rs := r.c.RedisSentinel()
	time.Sleep(3 * time.Second)
	old := rs.Master()
	if old == nil {
		t.Fatal("the Sentinels name no master")
	}
	unavailBefore := r.metric(e2e.Ingress, "payhook_dedupe_total", "result", "unavailable")

	// Watch the fallback gauge closely from the kill on: the window is short.
	var (
		mu               sync.Mutex
		fellBack, cameUp time.Time
	)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			m, err := r.c.Metrics(e2e.Ingress)
			if err == nil {
				v := m.Sum("payhook_dedupe_fallback_active")
				mu.Lock()
				switch {
				case v == 1 && fellBack.IsZero():
					fellBack = time.Now()
				case v == 0 && !fellBack.IsZero() && cameUp.IsZero():
					cameUp = time.Now()
				}
				mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	killed := time.Now()
	old.Stop()
	eventually(t, 30*time.Second, func() bool { m := rs.Master(); return m != nil && m != old }, "the Sentinels promote the replica")
	promoted := time.Now()
	eventually(t, 30*time.Second, func() bool {
		return r.readyz(e2e.Ingress).Status == "ready" && r.readyz(e2e.Reconciler).Status == "ready" &&
			r.metric(e2e.Ingress, "payhook_dedupe_fallback_active") == 0
	}, "ingress and reconciler ready on the new master, out of fallback")
	back := time.Now()
	stop()
	wg.Wait()
	unavail := r.metric(e2e.Ingress, "payhook_dedupe_total", "result", "unavailable") - unavailBefore
	rs.Restart(old) // back, empty, as a replica of the new master
	time.Sleep(3 * time.Second)
	r.finish()

	if n := res.Status503 + res.Other5xx + res.ConnErrors; n > 0 {
		t.Errorf("%d callback attempts got a 5xx or a connection error during a Redis failover", n)
	}
	if unavail == 0 {
		t.Error("no dedupe call counted unavailable: the failover went unseen")
	}
	if fellBack.IsZero() {
		t.Error("payhook_dedupe_fallback_active never read 1 during the failover")
	}
	window := "not seen"
	if !fellBack.IsZero() && !cameUp.IsZero() {
		window = cameUp.Sub(fellBack).Round(100 * time.Millisecond).String()
	}
	if got := attemptsBetween(r.tr.b, killed, back); got[http.StatusServiceUnavailable] > 0 {
		t.Errorf("%d callbacks answered 503 during the failover", got[http.StatusServiceUnavailable])
	}
	res.note("replica promoted %.1f s after the kill; dedupe back (ready, fallback 0) %.1f s after it; fallback_active 1 for %s; %v callbacks stored on the JetStream window alone",
		promoted.Sub(killed).Seconds(), back.Sub(killed).Seconds(), window, unavail)
}
