package redisdedupe_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/dedupe/dedupetest"
	"github.com/payhook/payhook/pkg/dedupe/redisdedupe"
	"github.com/payhook/payhook/pkg/events"
)

// TestSentinelFailover: a store opened through the Sentinels follows a
// failover. Its master killed (SIGKILL), calls fail fast as unavailable
// (the flow falls back to JetStream's window and publishes nothing twice),
// then reach the promoted replica, which knows what was recorded before the
// kill; the old master, back as a replica, does not take over.
func TestSentinelFailover(t *testing.T) {
	js, st := startEvents(t)
	rs := testenv.StartRedisSentinel(t)
	s, err := redisdedupe.NewSentinel(redisdedupe.Sentinel{Master: testenv.SentinelMaster, Addrs: rs.Addrs}, "", redisdedupe.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	rep := replica{store: s, js: js}
	before := dedupetest.Event(dedupetest.Order("before"), events.StatusSucceeded)
	if v, err := rep.handle(ctx, before); v != dedupe.New || err != nil {
		t.Fatalf("before the failover: %s, %v", v, err)
	}
	// Replication is asynchronous: wait until the replica (its first sync
	// done) has the record (WAIT 1), as it has within milliseconds normally.
	old := rs.Master()
	if old != rs.Nodes[0] {
		t.Fatalf("master is %v, want the first node", old)
	}
	direct := redis.NewClient(&redis.Options{Addr: old.Addr})
	testenv.Eventually(t, 15*time.Second, func() bool {
		n, err := direct.Do(ctx, "WAIT", 1, 500).Int()
		return err == nil && n == 1
	}, "the replica never acknowledged the record (WAIT 1)")
	_ = direct.Close()

	old.Stop()
	killed := time.Now()
	during := dedupetest.Event(dedupetest.Order("during"), events.StatusSucceeded)
	if _, err := s.Check(ctx, during.ID(), dedupe.OrderOf(during)); err == nil {
		t.Log("a check right after the kill succeeded (the client had not noticed yet)")
	}
	// The Sentinels promote the replica (down after 1 s, then the failover)
	// and the store reaches it.
	testenv.Eventually(t, 30*time.Second, func() bool { return rs.Master() == rs.Nodes[1] }, "replica never promoted")
	testenv.Eventually(t, 30*time.Second, func() bool { return s.Ping(ctx) == nil }, "store never reached the new master")
	t.Logf("dedupe back %.1f s after the master was killed", time.Since(killed).Seconds())
	if v, err := rep.handle(ctx, before); v != dedupe.Duplicate || err != nil {
		t.Fatalf("an event recorded before the failover: %s, %v; want duplicate (the replica had it)", v, err)
	}
	if v, err := rep.handle(ctx, during); v != dedupe.New || err != nil {
		t.Fatalf("a new event after the failover: %s, %v", v, err)
	}
	// The old master comes back empty, as a replica of the new one.
	rs.Restart(old)
	time.Sleep(2 * time.Second)
	if m := rs.Master(); m != rs.Nodes[1] {
		t.Fatalf("after the old master came back the Sentinels name %v", m)
	}
	if v, err := rep.handle(ctx, during); v != dedupe.Duplicate || err != nil {
		t.Fatalf("after the old master came back: %s, %v; want duplicate", v, err)
	}
	if n := messages(t, st); n != 2 {
		t.Fatalf("%d events in the stream, want 2", n)
	}
}
