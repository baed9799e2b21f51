package reliability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/e2e"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/reconcile"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
	"github.com/payhook/payhook/pkg/providersim"
)

// Time budget of the final checks. The slowest paths: a message held by a
// killed reconciler comes back after its consumer's AckWait (60 s); a
// callback refused during a 30 s NATS outage lands on the provider's next
// retry (mpurse's 4th attempt is 1 h × TimeScale after the 3rd).
const (
	booksTimeout  = 100 * time.Second
	landedTimeout = 100 * time.Second
)

// fast is the simulator's clock for scenarios with short outages: mpurse
// retries at 0.24 s, 0.48 s, 0.72 s, 7.9 s, 15.1 s; cashypro's ten retries
// span 2 min 3 s.
const fast = 0.002

// run is one scenario's cluster and traffic.
type run struct {
	t   *testing.T
	c   *e2e.Cluster
	tr  *traffic
	res *result
}

// begin starts a cluster (with Redis) and the steady traffic.
func begin(t *testing.T, res *result, o e2e.Options, mix Mix) *run {
	t.Helper()
	o.Redis = true
	if o.TimeScale == 0 {
		o.TimeScale = fast
	}
	c := e2e.Start(t, o)
	return &run{t: t, c: c, tr: startTraffic(t, c, rate, mix), res: res}
}

// finish stops the traffic and checks what every scenario must end with:
// every good callback acknowledged (the provider's retries landed), the
// books balanced, every service still running, no panic in any log.
func (r *run) finish() e2e.Report {
	r.t.Helper()
	r.tr.Stop()
	if n := r.tr.createErrors.Load(); n > 0 {
		r.t.Errorf("traffic: %d orders could not be created", n)
	}
	stopped := time.Now()
	waitLanded(r.t, r.tr.b, landedTimeout)
	rep := r.tr.b.Wait(r.t, booksTimeout)
	r.res.note("books balanced %.1f s after the traffic stopped", time.Since(stopped).Seconds())
	r.res.tally = count(r.c, r.tr.b, rep)
	r.t.Logf("books: %s; %s", rep, r.res.tally)
	if rep.Orders < 100 {
		r.t.Errorf("only %d orders under load, want at least 100", rep.Orders)
	}
	if r.res.Other5xx > 0 {
		r.t.Errorf("%d callback attempts answered a 5xx other than 503", r.res.Other5xx)
	}
	for _, s := range e2e.Services {
		if !r.c.Running(s) {
			r.t.Errorf("%s is not running at the end (exit %d)", s, r.c.ExitCode(s))
		}
		if strings.Contains(r.c.Logs(s), "panic:") {
			r.t.Errorf("%s log contains a panic", s)
		}
	}
	return rep
}

// metric scrapes service s and returns the sum of name's series matching labels.
func (r *run) metric(s e2e.Service, name string, labels ...string) float64 {
	r.t.Helper()
	m, err := r.c.Metrics(s)
	if err != nil {
		r.t.Fatalf("scrape %s: %v", s, err)
	}
	return m.Sum(name, labels...)
}

// readyz is a service's /readyz answer.
type readyz struct {
	code   int
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func (r *run) readyz(s e2e.Service) readyz {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, body, err := r.c.Get(ctx, s, "/readyz")
	var out readyz
	if err != nil {
		return out
	}
	out.code = code
	_ = json.Unmarshal(body, &out)
	return out
}

// dedupeFailing reports whether a readyz answer has a failing dedupe check.
func dedupeFailing(rz readyz) bool {
	for name, v := range rz.Checks {
		if strings.HasPrefix(name, "dedupe") && strings.HasPrefix(v, "error") {
			return true
		}
	}
	return false
}

func testKill(svc e2e.Service) func(*testing.T, *result) {
	return func(t *testing.T, res *result) {
		r := begin(t, res, e2e.Options{}, defaultMix)
		sub := r.c.Subscriber("")
		if svc == e2e.Dispatcher {
			// Answers take 300 ms (timeout 1 s): at ~19 events/s a handful
			// of deliveries are always on the wire, so the crash leaves
			// messages held and unacknowledged.
			sub.SetMode(e2e.Mode{Delay: 300 * time.Millisecond})
		}
		time.Sleep(3 * time.Second)
		before := sub.Stats().Accepted
		var recoveredBefore, closedBefore float64
		if svc == e2e.Reconciler {
			recoveredBefore = r.metric(svc, "payhook_reconciler_recovered_total")
			closedBefore = r.metric(svc, "payhook_reconciler_watches_closed_total")
		}
		pid := r.c.PID(svc)
		killed := time.Now()
		r.c.Kill(svc)
		if r.c.Running(svc) || r.c.ExitCode(svc) != -1 {
			t.Fatalf("%s survived SIGKILL", svc)
		}
		time.Sleep(2 * time.Second)
		downDeliveries := sub.Stats().Accepted - before
		restarted := time.Now()
		if err := r.c.StartService(svc); err != nil {
			t.Fatal(err)
		}
		if r.c.PID(svc) == pid {
			t.Fatalf("%s not restarted", svc)
		}
		time.Sleep(3 * time.Second)
		rep := r.finish()
		down := attemptsBetween(r.tr.b, killed, restarted)
		switch svc {
		case e2e.Ingress:
			// While ingress was dead the providers' posts were refused at
			// the socket; finish proved every good one landed on a retry.
			if down[0] == 0 {
				t.Errorf("no callback attempt met the dead ingress (attempts while down: %v)", down)
			}
			res.note("%d attempts refused at the socket while down", down[0])
		case e2e.Dispatcher:
			// Within the dead dispatcher's 2 s only deliveries already on
			// the wire can complete.
			if downDeliveries > 20 {
				t.Errorf("%d deliveries while the dispatcher was dead", downDeliveries)
			}
			// The deliveries cut off by the crash reached the subscriber
			// (it answers after the delay even to a closed connection) but
			// were never acknowledged: JetStream hands them out again after
			// AckWait (2 × timeout + 10 s = 12 s), same webhook-id.
			eventually(t, 30*time.Second, func() bool { return sub.Stats().Redeliveries > 0 }, "a webhook cut off by the crash redelivered")
			redelivered := time.Since(killed)
			if rep := r.tr.b.Check(context.Background()); !rep.OK() {
				t.Errorf("books after the redeliveries: %s", rep)
			}
			st := sub.Stats()
			res.Deliveries, res.Redelivery = st.Accepted, st.Redeliveries
			res.note("%d deliveries completed in the 2 s after the kill (already on the wire); %d webhook-ids redelivered after the restart, the first %.1f s after the kill",
				downDeliveries, len(sub.Redelivered()), redelivered.Seconds())
		case e2e.Reconciler:
			// The new process knows nothing but what JetStream kept: every
			// watch it closes or recovers was opened before or after the crash.
			recovered := r.metric(svc, "payhook_reconciler_recovered_total")
			closed := r.metric(svc, "payhook_reconciler_watches_closed_total")
			if closed == 0 {
				t.Errorf("the restarted reconciler closed no watch")
			}
			res.note("before the crash %v watches closed, %v recovered; after the restart %v closed, %v recovered", closedBefore, recoveredBefore, closed, recovered)
		}
		_ = rep
	}
}

func testNATSOutage(t *testing.T, res *result) {
	// 0.005: every provider still retries well after a 30 s outage (mpurse
	// attempts at 0, 0.6, 1.2, 1.8, 19.8, 37.8 s after the first; jpglo 0,
	// 0.3, 1.2, 4.2, 13.2, 31.2, 67.2 s; cashypro and mrnpay longer).
	natsOutage(t, res, 30*time.Second, 0.005, false)
}

func testNATSKilled(t *testing.T, res *result) {
	// 0.002: mpurse retries 0.24, 0.48, 0.72, 7.9, 15.1 s after its first
	// attempt, past a 5 s outage.
	natsOutage(t, res, 5*time.Second, fast, true)
}

// natsOutage takes nats-server away under load for outage — SIGTERM, or
// SIGKILL when kill (what was acknowledged must survive in its store) —
// and restarts it on the same store.
func natsOutage(t *testing.T, res *result, outage time.Duration, timeScale float64, kill bool) {
	r := begin(t, res, e2e.Options{TimeScale: timeScale}, defaultMix)
	time.Sleep(3 * time.Second)
	unavailableBefore := r.metric(e2e.Ingress, "payhook_ingress_callbacks_total", "verdict", "unavailable")
	if kill {
		r.c.KillNATS()
	} else {
		r.c.StopNATS()
	}
	down := time.Now()
	eventually(t, 10*time.Second, func() bool { return r.readyz(e2e.Ingress).code == http.StatusServiceUnavailable },
		"ingress /readyz 503 while NATS is down")
	eventually(t, 10*time.Second, func() bool {
		return attemptsBetween(r.tr.b, down, time.Now())[http.StatusServiceUnavailable] > 0 &&
			r.metric(e2e.Ingress, "payhook_ingress_callbacks_total", "verdict", "unavailable") > unavailableBefore
	}, "callbacks answered 503 (verdict unavailable) while NATS is down")
	time.Sleep(time.Until(down.Add(outage)))
	restart := time.Now()
	if err := r.c.StartNATS(); err != nil {
		t.Fatal(err)
	}
	unavailable := r.metric(e2e.Ingress, "payhook_ingress_callbacks_total", "verdict", "unavailable") - unavailableBefore
	eventually(t, 30*time.Second, func() bool { return r.readyz(e2e.Ingress).code == http.StatusOK }, "ingress ready again")
	time.Sleep(3 * time.Second)
	r.finish()

	// Nothing was acknowledged while NATS was down: no attempt that started
	// after the stop and before the restart got the provider's success reply.
	acked := 0
	for _, o := range r.tr.b.Orders() {
		for _, d := range o.Deliveries {
			for _, a := range d.Attempts {
				if a.Acked && a.At.After(down) && a.At.Before(restart) {
					acked++
				}
			}
		}
	}
	if acked > 0 {
		t.Errorf("%d callbacks acknowledged while NATS was down", acked)
	}
	w := attemptsBetween(r.tr.b, down, restart)
	if w[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no 503 while NATS was down: %v", w)
	}
	res.note("during the outage %d attempts answered 503, %d 4xx (corrupt), ingress counted %v unavailable; retries from the sim's watch announcements: %d",
		w[http.StatusServiceUnavailable], w[http.StatusUnauthorized]+w[http.StatusBadRequest], unavailable, r.tr.watchRetries.Load())
}

func testRedisOutage(t *testing.T, res *result) {
	r := begin(t, res, e2e.Options{}, defaultMix)
	time.Sleep(3 * time.Second)
	unavailBefore := r.metric(e2e.Ingress, "payhook_dedupe_total", "result", "unavailable")
	r.c.StopRedis()
	down := time.Now()
	for _, s := range []e2e.Service{e2e.Ingress, e2e.Reconciler} {
		eventually(t, 10*time.Second, func() bool {
			rz := r.readyz(s)
			return rz.code == http.StatusOK && rz.Status == "degraded" && dedupeFailing(rz)
		}, "%s /readyz 200 degraded with the dedupe check failing (last: %+v)", s, r.readyz(s))
	}
	eventually(t, 10*time.Second, func() bool {
		return r.metric(e2e.Ingress, "payhook_dedupe_fallback_active") == 1 &&
			r.metric(e2e.Ingress, "payhook_dedupe_total", "result", "unavailable") > unavailBefore
	}, "payhook_dedupe_fallback_active 1 and dedupe_total{result=unavailable} counting")
	time.Sleep(time.Until(down.Add(10 * time.Second)))
	unavail := r.metric(e2e.Ingress, "payhook_dedupe_total", "result", "unavailable") - unavailBefore
	r.c.StartRedis()
	eventually(t, 15*time.Second, func() bool {
		return r.readyz(e2e.Ingress).Status == "ready" && r.metric(e2e.Ingress, "payhook_dedupe_fallback_active") == 0
	}, "ingress ready and out of fallback once Redis is back")
	time.Sleep(2 * time.Second)
	r.finish()
	// No valid callback refused: not one 5xx or dropped connection from
	// ingress, during the outage or after.
	if n := res.Status503 + res.Other5xx + res.ConnErrors; n > 0 {
		t.Errorf("%d callback attempts got a 5xx or a connection error during a Redis outage", n)
	}
	res.note("%v callbacks stored on the JetStream window alone (dedupe unavailable)", unavail)
}

// subscriberOutage is how long subscriber_down keeps the subscriber down:
// minutes, a realistic receiver outage, long enough for the dispatcher's
// breaker to reach its cool-down cap.
// The cool-downs are 5 s, 10 s, 20 s, 40 s, then 1 min each
// (internal/dispatch: newBreaker's coolMin 5 s doubling to breakerMax 1 min),
// so the probes go out ≈ 5, 15, 35, 75, 135 s after the breaker opens, and
// 2 min 5 s of outage end between two capped probes.
const subscriberOutage = 2*time.Minute + 5*time.Second

// backlogBudget bounds how long after the subscriber is back its backlog
// (every event stored while it was down) must all be delivered: the next
// probe within the 1 min cap, then ≈ 2,500 events at 16 concurrent
// deliveries of a fast subscriber (a few seconds), plus slack for the loaded
// CI box.
const backlogBudget = 75 * time.Second

func testSubscriberDown(t *testing.T, res *result) {
	r := begin(t, res, e2e.Options{}, defaultMix)
	sub := r.c.Subscriber("")
	ctx := context.Background()
	time.Sleep(3 * time.Second)
	sub.SetMode(e2e.Down)
	before := sub.Stats()
	time.Sleep(subscriberOutage)

	// The backlog: every event stored and not yet delivered when the
	// subscriber comes back (it accepts nothing while down).
	msgs, err := r.c.ReadStream(ctx, natsbus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	delivered := sub.Counts()
	var backlog []string
	for _, m := range msgs {
		if delivered[m.MsgID] == 0 {
			backlog = append(backlog, m.MsgID)
		}
	}
	during := sub.Stats()
	sub.SetMode(e2e.Up)
	up := time.Now()
	if len(backlog) < 1000 {
		t.Errorf("only %d events undelivered after %s down, want a backlog of at least 1,000", len(backlog), subscriberOutage)
	}
	pending := func() int {
		c := sub.Counts()
		n := 0
		for _, id := range backlog {
			if c[id] == 0 {
				n++
			}
		}
		return n
	}
	eventually(t, backlogBudget+time.Minute, func() bool { return pending() == 0 },
		"the %d events of the backlog delivered (%d still pending)", len(backlog), pending())
	// When the last backlog event and the first delivery after the outage arrived.
	inBacklog := map[string]bool{}
	for _, id := range backlog {
		inBacklog[id] = true
	}
	var first, last time.Time
	for _, d := range sub.Deliveries() {
		if d.ReceivedAt.Before(up) {
			continue
		}
		if first.IsZero() || d.ReceivedAt.Before(first) {
			first = d.ReceivedAt
		}
		if inBacklog[d.WebhookID] && d.ReceivedAt.After(last) {
			last = d.ReceivedAt
		}
	}
	if drained := last.Sub(up); drained > backlogBudget {
		t.Errorf("the backlog was delivered %.1f s after the subscriber came back, want within %s (breaker cap 1 min)", drained.Seconds(), backlogBudget)
	}
	r.finish()
	if during.Accepted != before.Accepted {
		t.Errorf("%d deliveries accepted while the subscriber answered 503", during.Accepted-before.Accepted)
	}
	if during.Refused-before.Refused == 0 {
		t.Errorf("no delivery attempted while the subscriber was down")
	}
	if n := r.metric(e2e.Dispatcher, "payhook_dispatch_dead_letters_total"); n != 0 {
		t.Errorf("%v dead letters after a %s outage", n, subscriberOutage)
	}
	if dl, err := r.c.ReadStream(ctx, natsbus.StreamDLQ); err != nil || len(dl) != 0 {
		t.Errorf("%s holds %d messages (%v), want none", natsbus.StreamDLQ, len(dl), err)
	}
	res.note("%d deliveries tried while down (the breaker was open); backlog of %d events: first delivery %.1f s after the subscriber came back (next probe), all %d delivered %.1f s after",
		during.Refused-before.Refused, len(backlog), first.Sub(up).Seconds(), len(backlog), last.Sub(up).Seconds())
}

func testSubscriberSlow(t *testing.T, res *result) {
	r := begin(t, res, e2e.Options{}, defaultMix)
	sub := r.c.Subscriber("")
	time.Sleep(3 * time.Second)
	sub.SetMode(e2e.Slow(1500 * time.Millisecond))
	time.Sleep(6 * time.Second)
	sub.SetMode(e2e.Up)
	time.Sleep(2 * time.Second)
	r.finish()
	redelivered := sub.Redelivered()
	if len(redelivered) == 0 {
		t.Fatalf("nothing redelivered after timeouts")
	}
	// A redelivery is the same webhook: same id, same CloudEvent bytes.
	bodies := map[string][]byte{}
	for _, d := range sub.Deliveries() {
		if d.EventID != d.WebhookID {
			t.Errorf("webhook-id %s carries CloudEvent %s", d.WebhookID, d.EventID)
		}
		if b, ok := bodies[d.WebhookID]; ok && !bytes.Equal(b, d.Body) {
			t.Errorf("webhook-id %s redelivered with a different body", d.WebhookID)
		}
		bodies[d.WebhookID] = d.Body
	}
	if n := r.metric(e2e.Dispatcher, "payhook_dispatch_dead_letters_total"); n != 0 {
		t.Errorf("%v dead letters", n)
	}
	res.note("%d webhook-ids redelivered after timing out", len(redelivered))
}

func testQueryFailing(t *testing.T, res *result) {
	proxy := newQueryProxy()
	t.Cleanup(proxy.Close)
	// A longer schedule than the other scenarios' 1s, 2s, 4s: a watch whose
	// provider never answers expires as provider_error after twice the
	// schedule's span (docs/reconciler.md), 14 s with the short one; this
	// one gives 2 × 63 s, so "still open" is checked well inside it.
	o := e2e.Options{Schedule: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second},
		Configure: func(cfg *config.Config) {
			for i, a := range cfg.Accounts {
				switch a.Provider {
				case jpglo.Name, cashypro.Name, mrnpay.Name:
					suffix := "/" + a.Provider + "/" + a.ID
					proxy.target.Store(strings.TrimSuffix(a.BaseURL, suffix))
					cfg.Accounts[i].BaseURL = proxy.srv.URL + suffix
				}
			}
		}}
	// More drops than usual: the recoveries are what this scenario is about.
	r := begin(t, res, o, Mix{Duplicate: 0.1, Drop: 0.3, Corrupt: 0.05})
	ctx := context.Background()

	// Two orders the simulator itself will never answer about: their watches
	// must survive (errors consume no step), outside the books since they can
	// never be recovered.
	var stuck []providersim.Order
	for _, spec := range []providersim.OrderSpec{
		{Provider: jpglo.Name, Account: "glo-in", Kind: events.KindPayin, Outcome: providersim.Succeeded,
			Faults: providersim.Faults{DropCallback: true, QueryFails: true}},
		{Provider: cashypro.Name, Account: "cashy-id", Kind: events.KindPayin, Outcome: providersim.Succeeded,
			Faults: providersim.Faults{DropCallback: true, QueryTimeout: true}},
	} {
		so, err := r.c.Sim.CreateOrder(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		proxy.Track(so.MerchantOrderID)
		if err := r.c.Watch(ctx, *so); err != nil {
			t.Fatal(err)
		}
		stuck = append(stuck, *so)
	}

	time.Sleep(2 * time.Second)
	proxy.SetMode(Fail)
	time.Sleep(6 * time.Second)
	proxy.SetMode(Hang)
	time.Sleep(5 * time.Second)
	proxy.SetMode(Pass)
	time.Sleep(2 * time.Second)
	r.finish()

	if proxy.Answered(Fail) == 0 || proxy.Answered(Hang) == 0 {
		t.Errorf("the reconciler made %d queries while the APIs failed and %d while they hung, want some of each",
			proxy.Answered(Fail), proxy.Answered(Hang))
	}
	errs := r.metric(e2e.Reconciler, "payhook_reconciler_polls_total", "result", "error")
	if errs == 0 {
		t.Errorf("no poll counted as an error")
	}
	// Orders whose callback was dropped and whose polls met the broken API
	// were recovered by poll once it worked again.
	sub := r.c.Subscriber("")
	origins := map[string]string{}
	for _, d := range sub.Deliveries() {
		origins[d.WebhookID] = d.Origin
	}
	recovered := 0
	for _, ord := range r.tr.b.Orders() {
		if !ord.Faults.DropCallback || ord.Kind != events.KindPayin || ord.Outcome == providersim.Pending ||
			(ord.Provider != jpglo.Name && ord.Provider != cashypro.Name) || !proxy.Faulted(ord.MerchantOrderID) {
			continue
		}
		id := ord.EventID(events.Status(ord.Outcome))
		if origins[id] != string(events.OriginPoll) {
			t.Errorf("%s: event %s delivered with origin %q, want poll", ord.ID, id, origins[id])
		}
		recovered++
	}
	if recovered == 0 {
		t.Errorf("no dropped order met the broken API and was recovered after it")
	}

	// The permanently failing orders: polled again and again (a schedule
	// step would have expired the watch after 3 polls), still open, no event.
	eventually(t, 30*time.Second, func() bool { return proxy.Count(stuck[0].MerchantOrderID) >= 6 },
		"the QueryFails watch polled at least 6 times (has %d)", proxy.Count(stuck[0].MerchantOrderID))
	eventually(t, 30*time.Second, func() bool { return proxy.Count(stuck[1].MerchantOrderID) >= 2 },
		"the QueryTimeout watch polled at least twice (has %d)", proxy.Count(stuck[1].MerchantOrderID))
	st, err := r.c.JS().Stream(ctx, reconcile.StreamReconcile)
	if err != nil {
		t.Fatal(err)
	}
	for _, so := range stuck {
		subj := reconcile.WatchSubject(so.Provider, so.Account, so.Kind, so.MerchantOrderID)
		m, err := st.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			t.Errorf("%s: watch gone from %s: %v", so.ID, reconcile.StreamReconcile, err)
			continue
		}
		var w reconcile.Watch
		_ = json.Unmarshal(m.Data, &w)
		if w.Step != 0 || w.Errors == 0 {
			t.Errorf("%s: watch at step %d with %d consecutive errors; want step 0 (errors consume no step) and errors counted", so.ID, w.Step, w.Errors)
		}
		t.Logf("%s: watch open at step %d with %d consecutive errors after %d queries", so.ID, w.Step, w.Errors, proxy.Count(so.MerchantOrderID))
	}
	if n := r.metric(e2e.Reconciler, "payhook_reconciler_watches_expired_total", "reason", "provider_error"); n != 0 {
		t.Errorf("%v watches expired for provider errors", n)
	}
	res.note("%d queries answered 500 and %d hung; %v polls counted as errors; %d dropped orders recovered by poll after failed polls; the sim-faulted watches were polled %d (500) and %d (timeout) times and stay open",
		proxy.Answered(Fail), proxy.Answered(Hang), errs, recovered, proxy.Count(stuck[0].MerchantOrderID), proxy.Count(stuck[1].MerchantOrderID))
}

// heldSpecs are the callbacks sigterm_drain holds in flight at ingress
// across its SIGTERM: a succeeded pay-in of each provider that calls back,
// twice.
var heldSpecs = func() []providersim.OrderSpec {
	var out []providersim.OrderSpec
	for range 2 {
		for _, a := range []struct{ provider, account string }{
			{jpglo.Name, "glo-in"}, {mpurse.Name, "mpurse-in"}, {cashypro.Name, "cashy-id"}, {mrnpay.Name, "mrn-cn"},
		} {
			out = append(out, providersim.OrderSpec{Provider: a.provider, Account: a.account, Kind: events.KindPayin, Outcome: providersim.Succeeded})
		}
		for _, p := range newerProviders() {
			out = append(out, providersim.OrderSpec{Provider: p, Account: e2e.AccountOf(p), Kind: events.KindPayin, Outcome: providersim.Succeeded})
		}
	}
	return out
}()

// acceptMargin: a callback the simulator started less than this before
// SIGTERM may not have reached ingress's handler at all — a new connection
// still in the kernel's accept queue when the listener closes, or a request
// written onto a keep-alive connection in the instant net/http closes it as
// idle — and is then refused at the socket and retried (which finish
// checks). Anything started earlier had reached ingress and must have been
// answered.
const acceptMargin = 100 * time.Millisecond

func testSigterm(t *testing.T, res *result) {
	r := begin(t, res, e2e.Options{}, defaultMix)
	ctx := context.Background()
	time.Sleep(3 * time.Second)

	// Ingress: hold callbacks in flight, SIGTERM, and only once the drain
	// has begun (the listener is closed) let them finish.
	ingressAddr := strings.TrimPrefix(r.c.URL(e2e.Ingress), "http://")
	hold := newHoldProxy(ingressAddr)
	t.Cleanup(hold.Close)
	var held []providersim.Order
	for _, spec := range heldSpecs {
		spec.NotifyURL = hold.URL() + strings.TrimPrefix(r.c.CallbackURL(spec.Provider, spec.Account, string(spec.Kind)), r.c.URL(e2e.Ingress))
		o, err := r.tr.b.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, o)
	}
	eventually(t, 10*time.Second, func() bool { return hold.Held() == len(held) },
		"%d callbacks held in flight at ingress (have %d)", len(held), hold.Held())
	time.Sleep(300 * time.Millisecond) // ingress has read their headers and waits for the bodies
	start := time.Now()
	if err := syscall.Kill(r.c.PID(e2e.Ingress), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	eventually(t, 10*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", ingressAddr, time.Second)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	}, "ingress's listener closed after SIGTERM")
	draining := time.Since(signalled)
	if !r.c.Running(e2e.Ingress) {
		t.Fatalf("ingress exited with %d callbacks in flight", hold.Held())
	}
	time.Sleep(200 * time.Millisecond)
	released := time.Now()
	hold.Release()
	eventually(t, 30*time.Second, func() bool { return !r.c.Running(e2e.Ingress) }, "ingress exits after its drain")
	exited := time.Now()
	if code := r.c.ExitCode(e2e.Ingress); code != 0 {
		t.Errorf("ingress: SIGTERM with callbacks in flight: exit %d", code)
	}
	drains := []string{fmt.Sprintf("ingress %s (%d callbacks held %s into it)",
		exited.Sub(start).Round(10*time.Millisecond), len(held), released.Sub(signalled).Round(10*time.Millisecond))}
	time.Sleep(time.Second)
	if err := r.c.StartService(e2e.Ingress); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)

	for _, s := range []e2e.Service{e2e.Dispatcher, e2e.Reconciler} {
		start := time.Now()
		code, err := r.c.Term(s)
		if err != nil || code != 0 {
			t.Errorf("%s: SIGTERM under load: exit %d, %v", s, code, err)
		}
		drains = append(drains, string(s)+" "+time.Since(start).Round(10*time.Millisecond).String())
		time.Sleep(time.Second)
		if err := r.c.StartService(s); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
	}
	r.finish()

	// Every held callback was answered by the draining ingress with the
	// provider's success reply, on its first attempt, and is an event.
	results := hold.Results()
	if len(results) != len(held) {
		t.Errorf("the hold proxy forwarded %d callbacks, want %d", len(results), len(held))
	}
	for _, hr := range results {
		if hr.Err != nil || hr.Status != http.StatusOK {
			t.Errorf("held callback %s: status %d, %v; want 200 from the draining ingress", hr.Path, hr.Status, hr.Err)
		}
		if !hr.HeldAt.Before(signalled) || !hr.Released.After(signalled) {
			t.Errorf("held callback %s: held at %s, released at %s: not in flight at the SIGTERM (%s)", hr.Path, hr.HeldAt, hr.Released, signalled)
		}
	}
	msgs, err := r.c.ReadStream(ctx, natsbus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	onStream := map[string]int{}
	for _, m := range msgs {
		onStream[m.MsgID]++
	}
	for _, o := range held {
		o, _ = r.c.Sim.Order(o.ID)
		if len(o.Deliveries) == 0 || len(o.Deliveries[0].Attempts) == 0 {
			t.Errorf("held %s: no callback attempt recorded", o.ID)
			continue
		}
		if a := o.Deliveries[0].Attempts[0]; !a.Acked || a.HTTPStatus != http.StatusOK {
			t.Errorf("held %s: first attempt answered %d (acked %v, %s), want 200 and the provider's success reply", o.ID, a.HTTPStatus, a.Acked, a.Err)
		}
		if id := o.EventID(events.StatusSucceeded); onStream[id] != 1 {
			t.Errorf("held %s: event %s is %d times on %s, want once", o.ID, id, onStream[id], natsbus.StreamEvents)
		}
	}
	// No callback that had reached ingress before the signal met a
	// connection error; only those started in the last instant may have.
	lateRefused := 0
	for _, o := range r.tr.b.Orders() {
		for _, d := range o.Deliveries {
			for _, a := range d.Attempts {
				if a.HTTPStatus != 0 || !a.At.Before(signalled) {
					continue
				}
				if a.At.Before(signalled.Add(-acceptMargin)) {
					t.Errorf("%s: a callback attempt started %s before the SIGTERM met a connection error (%s)", o.ID, signalled.Sub(a.At), a.Err)
				} else {
					lateRefused++
				}
			}
		}
	}
	if res.ConnErrors+res.Status503 == 0 {
		t.Errorf("no callback was refused while ingress was down: the drain was not under load")
	}
	res.note("%d callbacks held open at ingress (headers and half the body sent) across its SIGTERM, the rest sent %.1f s later once the listener was closed (%.0f ms after the signal): all %d answered 200 with the provider's success reply on the first attempt, each once on PAYHOOK_EVENTS; no attempt started more than %s before the signal met a connection error (%d started within it did); drain times: %s",
		len(held), released.Sub(signalled).Seconds(), float64(draining.Milliseconds()), len(held), acceptMargin, lateRefused, strings.Join(drains, ", "))
}
