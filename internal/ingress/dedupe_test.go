package ingress

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/publisher"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe/redisdedupe"
	"github.com/payhook/payhook/pkg/events"
)

func redisDeduper(t *testing.T, r *testenv.Redis, batch int) publisher.StoreDeduper {
	t.Helper()
	s, err := redisdedupe.New(r.URL, redisdedupe.Config{Window: time.Hour, Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return publisher.StoreDeduper{Store: s}
}

func TestFiftyConcurrentIdenticalCallbacksThroughTwoIngressesMakeOneEvent(t *testing.T) {
	n := testenv.StartNATS(t)
	r := testenv.StartRedis(t)
	a := startOn(t, n, testConfig(), redisDeduper(t, r, 0))
	b := startOn(t, n, testConfig(), redisDeduper(t, r, 64))
	var wg sync.WaitGroup
	codes := make(chan int, 50)
	for i := 0; i < 50; i++ {
		h := a
		if i%2 == 1 {
			h = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := h.post(cbPath, body("ORD-50", "succeeded", "50.00"))
			codes <- code
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("a callback got %d", c)
		}
	}
	if got := a.count(natsbus.StreamEvents, "payhook.events.>"); got != 1 {
		t.Fatalf("%d events, want exactly 1", got)
	}
}

// The order-state rules, through real Redis: out-of-order and contradictory callbacks.
func TestOrderStateThroughIngress(t *testing.T) {
	r := testenv.StartRedis(t)
	h := start(t, testConfig(), redisDeduper(t, r, 0))
	send := func(order, status string) {
		t.Helper()
		if code, reply := h.post(cbPath, body(order, status, "10.00")); code != 200 {
			t.Fatalf("%s %s: %d %s", order, status, code, reply)
		}
	}
	// pending after success: dropped as stale.
	send("ORD-A", "succeeded")
	send("ORD-A", "pending")
	if n := h.count(natsbus.StreamEvents, "payhook.events.fakeprov.payin.pending"); n != 0 {
		t.Errorf("stale pending published (%d)", n)
	}
	// in order: pending then success → both published.
	send("ORD-B", "pending")
	send("ORD-B", "succeeded")
	if n := h.count(natsbus.StreamEvents, "payhook.events.fakeprov.payin.*"); n != 3 {
		t.Errorf("%d events, want 3 (A succeeded, B pending, B succeeded)", n)
	}
	// success then fail: conflict subject with both facts, and the retry of the fail is a duplicate.
	send("ORD-C", "succeeded")
	send("ORD-C", "failed")
	send("ORD-C", "failed")
	if n := h.count(natsbus.StreamEvents, "payhook.events.fakeprov.payin.failed"); n != 0 {
		t.Errorf("contradicting fail published as a normal event (%d)", n)
	}
	if n := h.count(natsbus.StreamEvents, "payhook.events.fakeprov.payin.conflict"); n != 1 {
		t.Fatalf("%d conflict events, want 1", n)
	}
	data, _ := h.last("payhook.events.fakeprov.payin.conflict")
	var ce struct {
		Type string
		Data events.ConflictData
	}
	if err := json.Unmarshal(data, &ce); err != nil {
		t.Fatal(err)
	}
	succ := events.Event{Provider: "fakeprov", Account: "acc-1", Kind: "payin", Status: "succeeded", MerchantOrderID: "ORD-C"}
	if ce.Type != "payhook.payin.conflict" || ce.Data.Status != "failed" || ce.Data.PreviousStatus != "succeeded" || ce.Data.PreviousEventID != succ.ID() {
		t.Errorf("conflict event %+v", ce)
	}
	// fail then success: also a conflict.
	send("ORD-D", "failed")
	send("ORD-D", "succeeded")
	if n := h.count(natsbus.StreamEvents, "payhook.events.fakeprov.payin.conflict"); n != 2 {
		t.Errorf("%d conflict events, want 2", n)
	}
}

// A poll-synthesized event and a callback for the same fact collapse, in either order.
func TestPollAndCallbackCollapse(t *testing.T) {
	r := testenv.StartRedis(t)
	dd := redisDeduper(t, r, 0)
	h := start(t, testConfig(), dd)
	pub, err := publisher.New(h.js, dd, time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	poll := func(order string) string {
		t.Helper()
		now := time.Now().UTC()
		ev := events.Event{Provider: "fakeprov", Account: "acc-1", Kind: events.KindPayin, Status: events.StatusSucceeded,
			MerchantOrderID: order, Amount: events.MustMoney("10.00", "INR"), OccurredAt: now, ReceivedAt: now, Origin: events.OriginPoll}
		v, err := pub.Store(context.Background(), &ev)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// callback then poll
	h.post(cbPath, body("ORD-P1", "succeeded", "10.00"))
	if v := poll("ORD-P1"); v != publisher.Duplicate {
		t.Errorf("poll after callback: %s, want duplicate", v)
	}
	// poll then callback
	if v := poll("ORD-P2"); v != publisher.Accepted {
		t.Errorf("first poll: %s", v)
	}
	if code, _ := h.post(cbPath, body("ORD-P2", "succeeded", "10.00")); code != 200 {
		t.Errorf("late callback after poll: %d", code)
	}
	if n := h.count(natsbus.StreamEvents, "payhook.events.>"); n != 2 {
		t.Fatalf("%d events, want 2 (one per order)", n)
	}
	s, _ := h.js.Stream(context.Background(), natsbus.StreamEvents)
	m, _ := s.GetLastMsgForSubject(context.Background(), "payhook.events.fakeprov.payin.succeeded")
	var ce events.CloudEvent
	_ = json.Unmarshal(m.Data, &ce)
	if ce.Data.MerchantOrderID != "ORD-P2" || ce.Data.Origin != events.OriginPoll {
		t.Errorf("the stored event for ORD-P2 should be the poll's: %+v", ce.Data)
	}
}

// Redis killed mid-run: no valid callback refused; duplicates inside the
// JetStream window still collapse; after a restart without persistence the
// store has forgotten, and the JetStream window is what dedupes (documented).
func TestRedisDownNeverRefusesValidCallbacks(t *testing.T) {
	r := testenv.StartRedis(t)
	h := start(t, testConfig(), redisDeduper(t, r, 0))
	if code, _ := h.post(cbPath, body("ORD-R1", "succeeded", "1.00")); code != 200 {
		t.Fatal("before outage")
	}
	r.Stop()
	for i := 0; i < 10; i++ {
		if code, reply := h.post(cbPath, body("ORD-R2", "succeeded", "1.00")); code != 200 {
			t.Fatalf("valid callback refused while Redis is down: %d %s", code, reply)
		}
	}
	if code, _ := h.post(cbPath, body("ORD-R1", "succeeded", "1.00")); code != 200 {
		t.Fatal("retry refused while Redis down")
	}
	r.Start()
	if code, _ := h.post(cbPath, body("ORD-R1", "succeeded", "1.00")); code != 200 {
		t.Fatal("retry refused after Redis restart")
	}
	if n := h.count(natsbus.StreamEvents, "payhook.events.>"); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
	body := scrape(t, h)
	if !containsLine(body, `payhook_dedupe_total{result="unavailable"}`) {
		t.Errorf("unavailable dedupe not counted:\n%s", body)
	}
}

func scrape(t *testing.T, h *harness) string {
	t.Helper()
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func containsLine(body, prefix string) bool {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
