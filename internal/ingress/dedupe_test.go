package ingress

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/publisher"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe"
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
	// How the 50 were counted, over both replicas: a callback whose Check
	// came after the first Record is a store duplicate; the others saw new
	// and published, and all but one of those publishes were JetStream
	// duplicates (counted new, then jetstream_duplicate). Either way the
	// provider was told success with verdict duplicate, except once.
	both := []*harness{a, b}
	newN, dupN := counter(t, both, "payhook_dedupe_total", "result", "new"), counter(t, both, "payhook_dedupe_total", "result", "duplicate")
	if newN < 1 || newN+dupN != 50 {
		t.Errorf(`dedupe_total{result="new"} %v + {result="duplicate"} %v, want 50 with new ≥ 1`, newN, dupN)
	}
	if js := counter(t, both, "payhook_dedupe_total", "result", "jetstream_duplicate"); js != newN-1 {
		t.Errorf(`dedupe_total{result="jetstream_duplicate"} = %v, want new-1 = %v`, js, newN-1)
	}
	for result, want := range map[string]float64{"stale": 0, "conflict": 0, "raced_conflict": 0, "raced_stale": 0, "unavailable": 0, "record_failed": 0} {
		if got := counter(t, both, "payhook_dedupe_total", "result", result); got != want {
			t.Errorf(`dedupe_total{result=%q} = %v, want %v`, result, got, want)
		}
	}
	if got := counter(t, both, "payhook_conflicts_total"); got != 0 {
		t.Errorf("payhook_conflicts_total = %v, want 0", got)
	}
	if acc, dup := counter(t, both, "payhook_ingress_callbacks_total", "verdict", "accepted"),
		counter(t, both, "payhook_ingress_callbacks_total", "verdict", "duplicate"); acc != 1 || dup != 49 {
		t.Errorf("callbacks accepted %v, duplicate %v; want 1 and 49", acc, dup)
	}
}

// counter sums a counter over the replicas' registries, for the series that
// carry every given label pair (none: all series).
func counter(t *testing.T, hs []*harness, name string, labels ...string) float64 {
	t.Helper()
	total := 0.0
	for _, h := range hs {
		mfs, err := h.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		series:
			for _, m := range mf.GetMetric() {
				for i := 0; i+1 < len(labels); i += 2 {
					if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
						return l.GetName() == labels[i] && l.GetValue() == labels[i+1]
					}) {
						continue series
					}
				}
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// A success and a failure for one order hit two ingress replicas at the
// same moment (one Redis, one NATS). Whichever is recorded first stands; the
// other always ends up as exactly one conflict event naming both — published
// alone when its Check already saw the first status, or after its own
// normal event when the two raced past their Checks (publisher package doc).
func TestConcurrentContradictingCallbacksThroughTwoIngresses(t *testing.T) {
	n := testenv.StartNATS(t)
	r := testenv.StartRedis(t)
	a := startOn(t, n, testConfig(), redisDeduper(t, r, 0))
	b := startOn(t, n, testConfig(), redisDeduper(t, r, 64))
	store := redisDeduper(t, r, 0).Store
	const orders = 30
	post := func(h *harness, order, status string) error {
		resp, err := http.Post(h.url+cbPath, "application/json", strings.NewReader(body(order, status, "10.00")))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: HTTP %d", order, status, resp.StatusCode)
		}
		return nil
	}
	for i := range orders {
		order := fmt.Sprintf("ORD-X%02d", i)
		replicas := [2]*harness{a, b}
		if i%2 == 1 {
			replicas = [2]*harness{b, a}
		}
		start := make(chan struct{})
		errs := make(chan error, 2)
		for j, st := range []string{"succeeded", "failed"} {
			go func() {
				<-start
				errs <- post(replicas[j], order, st)
			}()
		}
		close(start)
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}

	byOrder := map[string][]storedMsg{}
	for _, m := range storedMessages(t, a) {
		byOrder[m.order] = append(byOrder[m.order], m)
	}
	raced := 0
	for i := range orders {
		order := fmt.Sprintf("ORD-X%02d", i)
		ok := dedupe.Order{Provider: "fakeprov", Account: "acc-1", Kind: events.KindPayin, Key: order}
		c, err := store.Check(context.Background(), "evt_00000000000000000000000000000000", ok)
		if err != nil || !c.Order.Status.Terminal() {
			t.Fatalf("%s: recorded %+v, %v", order, c.Order, err)
		}
		standing := c.Order.Status
		other := events.StatusFailed
		if standing == events.StatusFailed {
			other = events.StatusSucceeded
		}
		otherEv := events.Event{Provider: "fakeprov", Account: "acc-1", Kind: events.KindPayin, Status: other, MerchantOrderID: order}
		subjects := map[string]int{}
		var conflict storedMsg
		for _, m := range byOrder[order] {
			subjects[m.subject]++
			if m.msgID != m.id {
				t.Errorf("%s: %s has Nats-Msg-Id %s but id %s", order, m.subject, m.msgID, m.id)
			}
			if m.subject == "payhook.events.fakeprov.payin.conflict" {
				conflict = m
			}
		}
		normal := "payhook.events.fakeprov.payin."
		if subjects[normal+"conflict"] != 1 || subjects[normal+string(standing)] != 1 || subjects[normal+string(other)] > 1 || len(subjects) > 3 {
			t.Errorf("%s (%s stands): messages by subject %v, want one %s event and exactly one conflict", order, standing, subjects, standing)
			continue
		}
		if conflict.status != other || conflict.previous != standing || conflict.previousID != c.Order.EventID {
			t.Errorf("%s: conflict says %s after %s (%s), want %s after %s (%s)", order, conflict.status, conflict.previous, conflict.previousID, other, standing, c.Order.EventID)
		}
		wantID := otherEv.ID() // the conflict seen at Check carries the event's own id...
		if subjects[normal+string(other)] == 1 {
			raced++
			wantID = otherEv.ConflictFollowUpID() // ...a follow-up after a race its own
		}
		if conflict.id != wantID {
			t.Errorf("%s: conflict id %s, want %s", order, conflict.id, wantID)
		}
	}
	t.Logf("%d of %d orders raced past both Checks (normal event, then a follow-up conflict); the rest were serialized by the store", raced, orders)

	both := []*harness{a, b}
	if got := counter(t, both, "payhook_conflicts_total", "provider", "fakeprov", "kind", "payin"); got != orders {
		t.Errorf("payhook_conflicts_total = %v, want %d (one per order)", got, orders)
	}
	if got := counter(t, both, "payhook_dedupe_total", "result", "raced_conflict"); got != float64(raced) {
		t.Errorf(`dedupe_total{result="raced_conflict"} = %v, want %d`, got, raced)
	}
	if got := counter(t, both, "payhook_dedupe_total", "result", "conflict"); got != float64(orders-raced) {
		t.Errorf(`dedupe_total{result="conflict"} = %v, want %d`, got, orders-raced)
	}
	if got := counter(t, both, "payhook_ingress_callbacks_total", "verdict", "conflict"); got != orders {
		t.Errorf(`callbacks_total{verdict="conflict"} = %v, want %d`, got, orders)
	}
}

type storedMsg struct {
	subject, msgID, id, order string
	status, previous          events.Status
	previousID                string
}

// storedMessages reads every message on PAYHOOK_EVENTS, in order.
func storedMessages(t *testing.T, h *harness) []storedMsg {
	t.Helper()
	ctx := context.Background()
	s, err := h.js.Stream(ctx, natsbus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []storedMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		var ce struct {
			ID   string
			Data events.ConflictData
		}
		if err := json.Unmarshal(m.Data, &ce); err != nil {
			t.Fatal(err)
		}
		out = append(out, storedMsg{subject: m.Subject, msgID: m.Header.Get(jetstream.MsgIDHeader), id: ce.ID,
			order: ce.Data.MerchantOrderID, status: ce.Data.Status, previous: ce.Data.PreviousStatus, previousID: ce.Data.PreviousEventID})
	}
	return out
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
	// Every decision counted once, at Check: A succeeded, B pending, B
	// succeeded, C succeeded, D failed are new; A's late pending is stale;
	// C's failure and D's success are conflicts; C's failure retried is a
	// duplicate. Nothing reached JetStream twice, nothing raced.
	for result, want := range map[string]float64{
		"new": 5, "stale": 1, "conflict": 2, "duplicate": 1,
		"jetstream_duplicate": 0, "raced_conflict": 0, "raced_stale": 0, "unavailable": 0, "record_failed": 0,
	} {
		if got := counter(t, []*harness{h}, "payhook_dedupe_total", "result", result); got != want {
			t.Errorf(`payhook_dedupe_total{result=%q} = %v, want %v`, result, got, want)
		}
	}
	if got := counter(t, []*harness{h}, "payhook_conflicts_total", "provider", "fakeprov", "kind", "payin"); got != 2 {
		t.Errorf(`payhook_conflicts_total{provider="fakeprov",kind="payin"} = %v, want 2`, got)
	}
	for verdict, want := range map[string]float64{"accepted": 5, "stale": 1, "conflict": 2, "duplicate": 1} {
		if got := counter(t, []*harness{h}, "payhook_ingress_callbacks_total", "verdict", verdict); got != want {
			t.Errorf(`payhook_ingress_callbacks_total{verdict=%q} = %v, want %v`, verdict, got, want)
		}
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
