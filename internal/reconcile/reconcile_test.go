package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/dedupe/memdedupe"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

const (
	jpgloSucceeded = "payhook.events.jpglo.payin.succeeded"
	mrnSucceeded   = "payhook.events.mrnpay.payin.succeeded"
)

func TestJpgloLostCallbackRecoveredByPollAndLateCallbackIsDuplicate(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.jpglo.set("G-1", "commit", "success")
	rep := h.start()
	h.announce("jpglo", `{"account":"glo-in","kind":"payin","merchant_order_id":"G-1"}`)

	testenv.Eventually(t, 5*time.Second, func() bool { return h.count(jpgloSucceeded) == 1 }, "no event recovered by poll")
	ce, msgID := h.lastEvent(jpgloSucceeded)
	want := (&events.Event{Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusSucceeded, MerchantOrderID: "G-1"}).ID()
	if ce.ID != want || msgID != want {
		t.Errorf("event id %s / Nats-Msg-Id %s, want %s", ce.ID, msgID, want)
	}
	if ce.Data.Origin != events.OriginPoll || ce.Data.Amount.Value != "100.00" || ce.Data.Amount.Currency != "INR" || ce.Data.ProviderOrderID != "JG-1" {
		t.Errorf("data = %+v", ce.Data)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return h.openWatches() == 0 }, "watch still open")
	if got := h.jpglo.count("G-1"); got != 2 {
		t.Errorf("queries = %d, want 2 (commit, then success)", got)
	}
	settle(t, rep.r.m.recovered.WithLabelValues("jpglo", "poll"), 1, "recovered{poll}")
	if got := counter(rep.r.m.polls.WithLabelValues("jpglo", PollPending)); got != 1 {
		t.Errorf("polls{pending} = %v", got)
	}

	// The real callback arrives late: acknowledged, and still one event.
	code, reply := post(t, h.ingress+"/v1/callbacks/jpglo/glo-in/payin", "", jpgloCallback("G-1"), "Content-Type", "application/json")
	if code != 200 || !strings.Contains(reply, `"status":0`) {
		t.Fatalf("late callback: %d %s", code, reply)
	}
	if got := h.count(jpgloSucceeded); got != 1 {
		t.Errorf("events after the late callback = %d, want 1", got)
	}
}

func TestMrnpayDroppedCallbackRecoveredByRetrigger(t *testing.T) {
	h := newHarness(t, harnessOpts{grace: "500ms"})
	h.mrnpay.set("M-1", "0", "1")
	rep := h.start()
	h.announce("mrnpay", `{"account":"mrn-cn","kind":"payin","merchant_order_id":"M-1"}`)

	testenv.Eventually(t, 5*time.Second, func() bool { return h.count(mrnSucceeded) == 1 }, "re-triggered callback never stored")
	ce, _ := h.lastEvent(mrnSucceeded)
	// It came through ingress (verified, with the amounts), not synthesized,
	// and ingress knew it was the callback we asked for again.
	if ce.Data.Origin != events.OriginRetrigger || ce.Data.Amount.Value != "100.00" || ce.Data.Amount.Currency != "CNY" {
		t.Errorf("data = %+v", ce.Data)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return h.openWatches() == 0 }, "watch still open")
	if got := h.mrnpay.retriggers("M-1"); got != 2 {
		t.Errorf("queries with callback=true = %d, want 2 (pending, then success)", got)
	}
	if got := h.mrnpay.count("M-1"); got != 2 {
		t.Errorf("queries = %d, want 2: the grace check finds the event without asking again", got)
	}
	for name, c := range map[string]prometheus.Collector{
		"retriggers":           rep.r.m.retriggers.WithLabelValues("mrnpay"),
		"recovered{retrigger}": rep.r.m.recovered.WithLabelValues("mrnpay", "retrigger"),
		"closed{retrigger}":    rep.r.m.closed.WithLabelValues("mrnpay", "retrigger"),
	} {
		settle(t, c, 1, name)
	}
	if got := h.count("payhook.events.mrnpay.>"); got != 1 {
		t.Errorf("events = %d, want 1", got)
	}
}

// A watch announced without an amount cannot make an mrnpay event: the
// query answer has none (seed "充值查单接口说明"). It stays unrecoverable,
// counted, and every step asks for the resend again.
func TestMrnpayWithoutAmountStaysUnrecoverable(t *testing.T) {
	h := newHarness(t, harnessOpts{dropRetrg: true, grace: "60ms", schedule: "[50ms, 50ms]"})
	h.mrnpay.set("M-2", "1")
	rep := h.start()
	h.announce("mrnpay", `{"account":"mrn-cn","kind":"payin","merchant_order_id":"M-2"}`)

	testenv.Eventually(t, 5*time.Second, func() bool {
		return counter(rep.r.m.expired.WithLabelValues("mrnpay", ExpiredUnrecoverable)) == 1
	}, "watch did not expire as unrecoverable")
	// Each of the 2 steps: a query with callback=true, then after the grace
	// one without (neither the answer nor the watch has an amount).
	if r, n := h.mrnpay.retriggers("M-2"), h.mrnpay.count("M-2"); r != 2 || n != 4 {
		t.Errorf("retriggers %d, queries %d; want 2 and 4", r, n)
	}
	if got := counter(rep.r.m.unrecoverable.WithLabelValues("mrnpay")); got != 2 {
		t.Errorf("unrecoverable = %v, want 2", got)
	}
	if got := h.count("payhook.events.>"); got != 0 {
		t.Errorf("events = %d, want none", got)
	}
	if h.openWatches() != 0 {
		t.Error("expired watch still in the stream")
	}
}

// The resend mrnpay was asked for is lost too: after the grace period the
// event is synthesized from the query's status and the watch's amount
// (origin poll), with the callback's event id, so the real callback arriving
// later is a duplicate in Redis: one event.
func TestMrnpayLostResendIsSynthesizedAndLateCallbackIsDuplicate(t *testing.T) {
	h := newHarness(t, harnessOpts{dropRetrg: true, grace: "100ms", schedule: "[50ms, 10s]"})
	h.mrnpay.set("M-3", "1")
	rep := h.start()
	h.announce("mrnpay", `{"account":"mrn-cn","kind":"payin","merchant_order_id":"M-3","amount":"100.00"}`)

	testenv.Eventually(t, 5*time.Second, func() bool { return h.count(mrnSucceeded) == 1 }, "no event synthesized after the grace period")
	ce, msgID := h.lastEvent(mrnSucceeded)
	want := (&events.Event{Provider: "mrnpay", Account: "mrn-cn", Kind: events.KindPayin, Status: events.StatusSucceeded, MerchantOrderID: "M-3"}).ID()
	if ce.ID != want || msgID != want {
		t.Errorf("event id %s / Nats-Msg-Id %s, want the callback's %s", ce.ID, msgID, want)
	}
	d := ce.Data
	if d.Origin != events.OriginPoll || d.Amount != events.MustMoney("100.00", "CNY") || d.RequestedAmount == nil ||
		*d.RequestedAmount != d.Amount || d.AmountMismatch || d.ProviderFields["amount_source"] != AmountSource {
		t.Errorf("data = %+v", d)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return h.openWatches() == 0 }, "watch still open")
	// One query asking for the resend, one after the grace without.
	if r, n := h.mrnpay.retriggers("M-3"), h.mrnpay.count("M-3"); r != 1 || n != 2 {
		t.Errorf("retriggers %d, queries %d; want 1 and 2", r, n)
	}
	for name, c := range map[string]prometheus.Collector{
		"retriggers":      rep.r.m.retriggers.WithLabelValues("mrnpay"),
		"recovered{poll}": rep.r.m.recovered.WithLabelValues("mrnpay", "poll"),
		"closed{poll}":    rep.r.m.closed.WithLabelValues("mrnpay", "poll"),
	} {
		settle(t, c, 1, name)
	}
	if got := counter(rep.r.m.unrecoverable.WithLabelValues("mrnpay")); got != 0 {
		t.Errorf("unrecoverable = %v, want 0", got)
	}

	// The real callback arrives at last: acknowledged, and still one event.
	body := mrnpay.BuildPayinCallback(mrnAppKey, mrnKey, "M-3", "1", "100.00", "100.00")
	code, reply := post(t, h.ingress+"/v1/callbacks/mrnpay/mrn-cn/payin", "", string(body), "Content-Type", "application/x-www-form-urlencoded")
	if code != 200 || reply != "success" {
		t.Fatalf("late callback: %d %s", code, reply)
	}
	if got := h.count("payhook.events.mrnpay.>"); got != 1 {
		t.Errorf("events after the late callback = %d, want 1", got)
	}
}

// mrnpay calls back successes only: a failed order's event is synthesized at
// the first terminal answer, without waiting for a resend that never comes.
func TestMrnpayFailedOrderIsSynthesizedAtOnce(t *testing.T) {
	h := newHarness(t, harnessOpts{grace: "1h", schedule: "[50ms, 50ms, 1h]"})
	h.mrnpay.set("M-4", "0", "2")
	rep := h.start()
	h.announce("mrnpay", `{"account":"mrn-cn","kind":"payin","merchant_order_id":"M-4","amount":"250.5","currency":"CNY"}`)

	const failed = "payhook.events.mrnpay.payin.failed"
	testenv.Eventually(t, 5*time.Second, func() bool { return h.count(failed) == 1 }, "failed order not synthesized")
	ce, _ := h.lastEvent(failed)
	if d := ce.Data; d.Status != events.StatusFailed || d.Origin != events.OriginPoll || d.Amount != events.MustMoney("250.5", "CNY") || d.MerchantOrderID != "M-4" {
		t.Errorf("data = %+v", d)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return h.openWatches() == 0 }, "watch still open")
	if n := h.mrnpay.count("M-4"); n != 2 {
		t.Errorf("queries = %d, want 2 (pending, failed)", n)
	}
	if got := counter(rep.r.m.retriggers.WithLabelValues("mrnpay")); got != 0 {
		t.Errorf("retriggers = %v: mrnpay does not resend failures, nothing was waited for", got)
	}
	settle(t, rep.r.m.closed.WithLabelValues("mrnpay", "poll"), 1, "closed{poll}")
	if got := h.count("payhook.events.>"); got != 1 {
		t.Errorf("events = %d, want 1", got)
	}
}

func TestCallbackBeforeDueClosesWithoutPolling(t *testing.T) {
	h := newHarness(t, harnessOpts{schedule: "[1s, 60ms]"})
	h.jpglo.set("G-2", "success")
	rep := h.start()
	h.announce("jpglo", `{"account":"glo-in","kind":"payin","merchant_order_id":"G-2"}`)
	testenv.Eventually(t, 5*time.Second, func() bool { return h.openWatches() == 1 }, "watch not opened")
	code, _ := post(t, h.ingress+"/v1/callbacks/jpglo/glo-in/payin", "", jpgloCallback("G-2"), "Content-Type", "application/json")
	if code != 200 {
		t.Fatalf("callback: %d", code)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return h.openWatches() == 0 }, "watch still open")
	if got := h.jpglo.count("G-2"); got != 0 {
		t.Errorf("provider queried %d times for an order that had its event", got)
	}
	settle(t, rep.r.m.closed.WithLabelValues("jpglo", "callback"), 1, "closed{callback}")
	if got := counter(rep.r.m.recovered.WithLabelValues("jpglo", "poll")); got != 0 {
		t.Errorf("recovered{poll} = %v, want 0", got)
	}
}

func TestRestartResumesTheSchedule(t *testing.T) {
	h := newHarness(t, harnessOpts{schedule: "[50ms, 700ms, 50ms]"})
	h.jpglo.set("G-3", "commit", "commit", "success")
	rep := h.start()
	code, body := post(t, rep.url+"/v1/watches", adminToken, `{"provider":"jpglo","account":"glo-in","kind":"payin","merchant_order_id":"G-3"}`)
	if code != 202 {
		t.Fatalf("POST /v1/watches: %d %s", code, body)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return h.jpglo.count("G-3") == 1 }, "first poll never happened")
	rep.stop() // mid-schedule: the next poll is ~700ms away
	// NATS restarts too: the watch and its timer are on disk.
	h.nats.Stop()
	h.nats.Start()

	time.Sleep(900 * time.Millisecond)
	if got := h.jpglo.count("G-3"); got != 1 {
		t.Fatalf("polled %d times while no reconciler ran", got)
	}
	if h.openWatches() != 1 {
		t.Fatal("the watch did not survive the restart")
	}
	h.start()
	testenv.Eventually(t, 5*time.Second, func() bool { return h.count(jpgloSucceeded) == 1 }, "resumed watch never recovered the event")
	if got := h.jpglo.count("G-3"); got != 3 {
		t.Errorf("queries = %d, want 3 (one per step, none repeated)", got)
	}
}

func TestTwoReplicasPollEachDueWatchOnce(t *testing.T) {
	h := newHarness(t, harnessOpts{schedule: "[40ms, 40ms, 40ms]"})
	h.jpglo.delay = 20 * time.Millisecond
	const n = 12
	for i := range n {
		h.jpglo.set(fmt.Sprintf("P-%d", i), "commit")
	}
	a, b := h.start(), h.start()
	for i := range n {
		h.announce("jpglo", fmt.Sprintf(`{"account":"glo-in","kind":"payin","merchant_order_id":"P-%d"}`, i))
	}
	expired := func() float64 {
		return counter(a.r.m.expired.WithLabelValues("jpglo", ExpiredSchedule)) + counter(b.r.m.expired.WithLabelValues("jpglo", ExpiredSchedule))
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return expired() == n }, "watches did not all expire (%v)", expired())
	for i := range n {
		if got := h.jpglo.count(fmt.Sprintf("P-%d", i)); got != 3 {
			t.Errorf("order P-%d polled %d times, want exactly 3", i, got)
		}
	}
	if h.jpglo.maxFlight != 1 {
		t.Errorf("an order was polled by %d replicas at once", h.jpglo.maxFlight)
	}
	pa := counter(a.r.m.polls.WithLabelValues("jpglo", PollPending))
	pb := counter(b.r.m.polls.WithLabelValues("jpglo", PollPending))
	if pa+pb != 3*n || pa == 0 || pb == 0 {
		t.Errorf("polls: replica a %v, b %v; want %d in total, shared", pa, pb, 3*n)
	}
}

func TestProviderErrorsBackOffWithoutLosingTheWatch(t *testing.T) {
	// The error deadline is twice the span (≈ 4 s here): room for a loaded machine.
	h := newHarness(t, harnessOpts{schedule: "[40ms, 2s]"})
	h.jpglo.set("G-4", "error", "error", "error", "success")
	rep := h.start()
	h.announce("jpglo", `{"account":"glo-in","kind":"payin","merchant_order_id":"G-4"}`)
	testenv.Eventually(t, 5*time.Second, func() bool { return h.count(jpgloSucceeded) == 1 }, "event never recovered")
	if got := h.jpglo.count("G-4"); got != 4 {
		t.Errorf("queries = %d, want 4 (3 errors, then success)", got)
	}
	if got := counter(rep.r.m.polls.WithLabelValues("jpglo", PollError)); got != 3 {
		t.Errorf("polls{error} = %v, want 3", got)
	}
	// Errors do not consume steps: the event came at step 0, after 3 errors.
	settle(t, rep.r.m.recovered.WithLabelValues("jpglo", "poll"), 1, "recovered{poll}")
}

func TestUnverifiableProvidersOnlyExpire(t *testing.T) {
	h := newHarness(t, harnessOpts{schedule: "[30ms, 30ms]"})
	rep := h.start()
	h.announce("mpurse", `{"account":"mp-in","kind":"payin","merchant_order_id":"U-1"}`)
	h.announce("fantian", `{"account":"ft-in","kind":"payin","merchant_order_id":"U-2"}`)
	// An mpurse order whose callback was stored closes instead of expiring.
	o := dedupe.Order{Provider: "mpurse", Account: "mp-in", Kind: events.KindPayin, Key: "U-3"}
	if err := h.store.Record(context.Background(), "evt_00000000000000000000000000000001", o, events.StatusSucceeded); err != nil {
		t.Fatal(err)
	}
	h.announce("mpurse", `{"account":"mp-in","kind":"payin","merchant_order_id":"U-3"}`)
	testenv.Eventually(t, 5*time.Second, func() bool {
		return counter(rep.r.m.expired.WithLabelValues("mpurse", ExpiredUnverifiable)) == 1 &&
			counter(rep.r.m.expired.WithLabelValues("fantian", ExpiredUnverifiable)) == 1 &&
			counter(rep.r.m.closed.WithLabelValues("mpurse", "callback")) == 1
	}, "mpurse/fantian watches did not end as expected")
	// The expiry is counted when its Term is sent, which the server applies a moment later.
	testenv.Eventually(t, 5*time.Second, func() bool { return h.openWatches() == 0 }, "watches left open")
}

func TestExpiresAtCapsTheSchedule(t *testing.T) {
	h := newHarness(t, harnessOpts{schedule: "[50ms, 10s, 10s]"})
	h.jpglo.set("G-5", "commit")
	rep := h.start()
	exp := time.Now().Add(800 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	h.announce("jpglo", `{"account":"glo-in","kind":"payin","merchant_order_id":"G-5","expires_at":"`+exp+`"}`)
	testenv.Eventually(t, 5*time.Second, func() bool {
		return counter(rep.r.m.expired.WithLabelValues("jpglo", ExpiredExpiresAt)) == 1
	}, "watch did not expire at expires_at")
	if got := h.jpglo.count("G-5"); got != 2 {
		t.Errorf("queries = %d, want 2 (first step, then at expires_at)", got)
	}
}

func TestAnnouncementsAreIdempotentAndValidated(t *testing.T) {
	h := newHarness(t, harnessOpts{schedule: "[10s]"})
	rep := h.start()
	valid := `{"provider":"jpglo","account":"glo-in","kind":"payin","merchant_order_id":"A-1"}`
	cases := []struct {
		name, token, body string
		code              int
		want              string
	}{
		{"no token", "", valid, 401, "bearer"},
		{"wrong token", "nope", valid, 401, "bearer"},
		{"not json", adminToken, `{`, 400, "not a JSON"},
		{"no provider", adminToken, `{"account":"glo-in","kind":"payin","merchant_order_id":"A-1"}`, 400, "provider is required"},
		{"unknown provider", adminToken, `{"provider":"paypal","account":"glo-in","kind":"payin","merchant_order_id":"A-1"}`, 400, "unknown provider"},
		{"unknown account", adminToken, `{"provider":"jpglo","account":"nope","kind":"payin","merchant_order_id":"A-1"}`, 400, "unknown account"},
		{"account of another provider", adminToken, `{"provider":"jpglo","account":"mrn-cn","kind":"payin","merchant_order_id":"A-1"}`, 400, "belongs to provider mrnpay"},
		{"bad kind", adminToken, `{"provider":"jpglo","account":"glo-in","kind":"refund","merchant_order_id":"A-1"}`, 400, "kind"},
		{"missing order id", adminToken, `{"provider":"jpglo","account":"glo-in","kind":"payin"}`, 400, "merchant_order_id is required"},
		{"order id with a tab", adminToken, `{"provider":"jpglo","account":"glo-in","kind":"payin","merchant_order_id":"A\t1"}`, 400, "merchant_order_id must be"},
		{"bad expires_at", adminToken, `{"provider":"jpglo","account":"glo-in","kind":"payin","merchant_order_id":"A-1","expires_at":"tomorrow"}`, 400, "not a JSON"},
		{"amount as a JSON number", adminToken, `{"provider":"mrnpay","account":"mrn-cn","kind":"payin","merchant_order_id":"A-1","amount":100.1}`, 400, "amount must be a JSON string"},
		{"amount not a decimal", adminToken, `{"provider":"mrnpay","account":"mrn-cn","kind":"payin","merchant_order_id":"A-1","amount":"1e3"}`, 400, "amount must be a non-negative exact decimal"},
		{"negative amount", adminToken, `{"provider":"mrnpay","account":"mrn-cn","kind":"payin","merchant_order_id":"A-1","amount":"-5.00"}`, 400, "amount must be"},
		{"currency of another account", adminToken, `{"provider":"mrnpay","account":"mrn-cn","kind":"payin","merchant_order_id":"A-1","amount":"5.00","currency":"INR"}`, 400, `currency \"INR\" is not account`},
		{"currency without amount", adminToken, `{"provider":"mrnpay","account":"mrn-cn","kind":"payin","merchant_order_id":"A-1","currency":"CNY"}`, 400, "currency without amount"},
		{"valid", adminToken, valid, 202, `"created":true`},
		{"again", adminToken, valid, 202, `"created":false`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := post(t, rep.url+"/v1/watches", c.token, c.body)
			if code != c.code || !strings.Contains(body, c.want) {
				t.Errorf("got %d %s, want %d containing %q", code, body, c.code, c.want)
			}
		})
	}
	wantID := WatchID("jpglo", "glo-in", events.KindPayin, "A-1")
	if _, body := post(t, rep.url+"/v1/watches", adminToken, valid); !strings.Contains(body, wantID) {
		t.Errorf("body %s lacks id %s", body, wantID)
	}
	// The same order announced on the subject joins the same watch.
	h.announce("jpglo", `{"account":"glo-in","kind":"payin","merchant_order_id":"A-1"}`)
	h.announce("jpglo", `{"account":"mrn-cn","kind":"payin","merchant_order_id":"A-2"}`) // refused
	testenv.Eventually(t, 5*time.Second, func() bool {
		return counter(rep.r.m.rejected.WithLabelValues("subject", "invalid")) == 1
	}, "invalid announcement not refused")
	testenv.Eventually(t, 5*time.Second, func() bool { return counter(rep.r.m.open) == 1 }, "watches_open = %v, want 1", counter(rep.r.m.open))
	if got := counter(rep.r.m.opened.WithLabelValues("jpglo", "api")) + counter(rep.r.m.opened.WithLabelValues("jpglo", "subject")); got != 1 {
		t.Errorf("opened = %v, want 1", got)
	}
	if h.openWatches() != 1 {
		t.Errorf("open watches = %d, want 1", h.openWatches())
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return counter(rep.r.m.oldest) > 0 }, "oldest_watch_age_seconds stays 0")
}

func TestRateLimitPostponesInsteadOfFlooding(t *testing.T) {
	cases := []struct {
		name string
		set  func(*config.Reconciler)
	}{
		{"reconciler-wide", func(rc *config.Reconciler) { rc.RatePerSecond, rc.RateBurst = 10, 1 }},
		// The harness's reconciler-wide 1000/s would never hold anything back.
		{"per provider", func(rc *config.Reconciler) {
			rc.Providers = map[string]config.ReconcilerProvider{"jpglo": {RatePerSecond: 10, RateBurst: 1}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{schedule: "[20ms, 20ms]"})
			c.set(&h.cfg.Reconciler)
			for i := range 4 {
				h.jpglo.set(fmt.Sprintf("R-%d", i), "commit")
			}
			rep := h.start(func(d *Deps) { d.Options.MaxRateWait = time.Millisecond })
			start := time.Now()
			for i := range 4 {
				h.announce("jpglo", fmt.Sprintf(`{"account":"glo-in","kind":"payin","merchant_order_id":"R-%d"}`, i))
			}
			testenv.Eventually(t, 10*time.Second, func() bool {
				return counter(rep.r.m.expired.WithLabelValues("jpglo", ExpiredSchedule)) == 4
			}, "watches did not expire")
			queries := counter(rep.r.m.polls.WithLabelValues("jpglo", PollPending))
			// 8 polls at 10/s with a burst of 1 take at least 0.7 s.
			if el := time.Since(start); queries != 8 || el < 650*time.Millisecond {
				t.Errorf("%v polls in %s: the rate limit did not hold", queries, el)
			}
			if counter(rep.r.m.rateLimited.WithLabelValues("jpglo")) == 0 {
				t.Error("rate_limited_total not counted")
			}
		})
	}
}

func TestQueueAndConsumerConfig(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rep := h.start()
	ctx := context.Background()
	testenv.Eventually(t, 5*time.Second, func() bool {
		_, err := h.js.Consumer(ctx, StreamReconcile, ConsumerSchedule)
		return err == nil
	}, "consumer not created")
	s, _ := h.js.Stream(ctx, StreamReconcile)
	info, _ := s.Info(ctx)
	if c := info.Config; c.Retention != jetstream.WorkQueuePolicy || c.MaxMsgsPerSubject != 1 || c.Discard != jetstream.DiscardOld || c.Storage != jetstream.FileStorage {
		t.Errorf("stream config %+v", c)
	}
	c, _ := h.js.Consumer(ctx, StreamReconcile, ConsumerSchedule)
	ci, _ := c.Info(ctx)
	if cc := ci.Config; cc.MaxAckPending != -1 || cc.MaxDeliver != -1 || cc.AckPolicy != jetstream.AckExplicitPolicy || len(cc.BackOff) != 0 {
		t.Errorf("consumer config %+v", cc)
	}
	// Readiness covers NATS, every stream and the dedupe store.
	code, _ := get(t, rep.url+"/readyz")
	if code != 200 {
		t.Errorf("/readyz = %d", code)
	}
}

func TestCashyproRecoveredByPoll(t *testing.T) {
	h := newHarness(t, harnessOpts{schedule: "[40ms, 40ms]"})
	var queries atomic.Int32
	// CashyPro's pay-in query (seed 002 "payInQuery"): POST with MerchantId
	// and Sign headers, reply {"code":200,"msg":"SUCCESS","data":{...}}.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var q struct{ MchOrderNo string }
		if r.URL.Path != "/api/payInQuery" || r.Header.Get("MerchantId") != "M1" || len(r.Header.Get("Sign")) != 32 || json.NewDecoder(r.Body).Decode(&q) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		status := "PAYING"
		if queries.Add(1) > 1 {
			status = "SUCCESS"
		}
		fmt.Fprintf(w, `{"code":200,"msg":"SUCCESS","data":{"merchantId":"M1","mchOrderNo":%q,"orderNo":"CP%s","channelOrderNo":"CH1","payType":"QRIS","amount":"20000","fee":"2500.0000","orderStatus":%q,"completionTime":"2024-12-02 12:07:06","nonceStr":"n"}}`,
			q.MchOrderNo, q.MchOrderNo, status)
	}))
	t.Cleanup(srv.Close)
	for i := range h.cfg.Accounts {
		if h.cfg.Accounts[i].ID == "cp-id" {
			h.cfg.Accounts[i].BaseURL = srv.URL
		}
	}
	rep := h.start()
	h.announce("cashypro", `{"account":"cp-id","kind":"payin","merchant_order_id":"C-1"}`)
	testenv.Eventually(t, 5*time.Second, func() bool { return h.count("payhook.events.cashypro.payin.succeeded") == 1 }, "no cashypro event recovered")
	ce, _ := h.lastEvent("payhook.events.cashypro.payin.succeeded")
	if ce.Data.Origin != events.OriginPoll || ce.Data.Amount.Currency != "IDR" || ce.Data.MerchantOrderID != "C-1" {
		t.Errorf("data = %+v", ce.Data)
	}
	settle(t, rep.r.m.recovered.WithLabelValues("cashypro", "poll"), 1, "recovered{poll}")
}

func TestDedupeStoreDownDefersWithoutPolling(t *testing.T) {
	store := memdedupe.New(memdedupe.Config{})
	h := newHarness(t, harnessOpts{schedule: "[40ms]", store: store, refs: store})
	h.jpglo.set("G-6", "success")
	store.SetUnavailable(true)
	h.start()
	h.announce("jpglo", `{"account":"glo-in","kind":"payin","merchant_order_id":"G-6"}`)
	// The announcement is taken in asynchronously (slower on a loaded
	// machine); once the watch is open, it is due every 40 ms.
	testenv.Eventually(t, 5*time.Second, func() bool { return h.openWatches() == 1 }, "watch not opened")
	time.Sleep(400 * time.Millisecond)
	if n := h.jpglo.count("G-6"); n != 0 || h.count(jpgloSucceeded) != 0 {
		t.Fatalf("polled %d times / published while the dedupe store was down", n)
	}
	if h.openWatches() != 1 {
		t.Fatal("watch lost while the dedupe store was down")
	}
	store.SetUnavailable(false)
	testenv.Eventually(t, 5*time.Second, func() bool { return h.count(jpgloSucceeded) == 1 }, "watch not resumed after the store came back")
}
