package e2e_test

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/e2e"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/fantian"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
	"github.com/payhook/payhook/pkg/providersim"
)

func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }

// booksTimeout bounds every wait for the books to balance: the slowest
// path is a lost mrnpay callback (poll at 1s, re-trigger, grace 2s) on a
// loaded 2-core machine.
const booksTimeout = 60 * time.Second

// order is one row of a scenario table.
type order struct {
	name  string
	spec  providersim.OrderSpec
	watch bool
	// via is the origin every delivered event of the order must carry ("" = none expected).
	via events.Origin
}

func spec(provider string, kind events.Kind, outcome providersim.Outcome, f providersim.Faults) providersim.OrderSpec {
	return providersim.OrderSpec{Provider: provider, Account: accountOf(provider), Kind: kind, Outcome: outcome, Faults: f}
}

func accountOf(provider string) string { return e2e.AccountOf(provider) }

// newerProviders are the registered providers the tables below do not
// spell out (stripe, and whichever is registered next): simulatedRows
// makes their rows from what every simulated provider does.
func newerProviders() []string {
	older := []string{fantian.Name, mpurse.Name, cashypro.Name, mrnpay.Name, jpglo.Name}
	var out []string
	for _, p := range e2e.SimulatedProviders() {
		if !slices.Contains(older, p) {
			out = append(out, p)
		}
	}
	return out
}

// simulatedRows are rows for every newer provider, made by row for each.
func simulatedRows(row func(p string) []order) []order {
	var out []order
	for _, p := range newerProviders() {
		out = append(out, row(p)...)
	}
	return out
}

// create creates the table's orders in books (watching those marked) and
// returns them by row name.
func create(t *testing.T, b *e2e.Books, rows []order) map[string]providersim.Order {
	t.Helper()
	ctx := context.Background()
	out := map[string]providersim.Order{}
	for _, r := range rows {
		var o providersim.Order
		var err error
		if r.watch {
			o, err = b.CreateWatched(ctx, r.spec)
		} else {
			o, err = b.Create(ctx, r.spec)
		}
		if err != nil {
			t.Fatalf("%s: create order: %v", r.name, err)
		}
		out[r.name] = o
	}
	return out
}

// checkOrigins asserts that every delivery of each row's order carries the
// row's origin (callback, poll, retrigger), and that rows expecting none got none.
func checkOrigins(t *testing.T, sub *e2e.Subscriber, rows []order, orders map[string]providersim.Order) {
	t.Helper()
	for _, r := range rows {
		o := orders[r.name]
		n := 0
		for _, d := range sub.Deliveries() {
			if d.Provider != o.Provider || d.Account != o.Account || d.Kind != string(o.Kind) || d.MerchantOrderID != o.MerchantOrderID {
				continue
			}
			n++
			if d.Status == string(events.StatusPending) {
				continue // cashypro PAYING always comes by callback
			}
			if events.Origin(d.Origin) != r.via {
				t.Errorf("%s: event %s delivered with origin %q, want %q", r.name, d.EventID, d.Origin, r.via)
			}
		}
		if r.via == "" && n > 0 {
			t.Errorf("%s: %d deliveries, want none", r.name, n)
		}
		if r.via != "" && n == 0 {
			t.Errorf("%s: nothing delivered", r.name)
		}
	}
}

// TestEndToEnd runs the end-to-end scenarios (docs/e2e.md) for every provider against one
// cluster (three binaries as processes, nats-server, redis-server): happy
// path, duplicates, lost callbacks recovered, bad signatures rejected, then
// a subscriber outage and a slow subscriber.
func TestEndToEnd(t *testing.T) {
	c := e2e.Start(t, e2e.Options{Redis: true})
	sub := c.Subscriber("")

	// The first four share the cluster safely (each checks only its own
	// orders) and mostly wait on the clock, so they run in parallel.
	t.Run("scenarios", func(t *testing.T) {
		t.Run("happy_path", func(t *testing.T) { t.Parallel(); testHappyPath(t, c, sub) })
		t.Run("duplicates", func(t *testing.T) { t.Parallel(); testDuplicates(t, c, sub) })
		t.Run("lost_callback_recovered", func(t *testing.T) { t.Parallel(); testLostCallback(t, c, sub) })
		t.Run("bad_signature_rejected", func(t *testing.T) { t.Parallel(); testBadSignature(t, c, sub) })
		t.Run("reordered_statuses_conflict", func(t *testing.T) { t.Parallel(); testReorder(t, c, sub) })
		t.Run("forged_event_refused", func(t *testing.T) { t.Parallel(); testForgedEvent(t, c, sub) })
	})
	// These switch the one subscriber, so they run alone.
	t.Run("subscriber_outage_survived", func(t *testing.T) { testSubscriberOutage(t, c, sub) })
	t.Run("slow_subscriber_redelivered", func(t *testing.T) { testSlowSubscriber(t, c, sub) })
}

func testHappyPath(t *testing.T, c *e2e.Cluster, sub *e2e.Subscriber) {
	ok := providersim.Faults{}
	rows := []order{
		{"jpglo payin succeeded", spec(jpglo.Name, events.KindPayin, providersim.Succeeded, ok), true, events.OriginCallback},
		{"jpglo appeal succeeded", spec(jpglo.Name, events.KindAppeal, providersim.Succeeded, ok), false, events.OriginCallback},
		{"jpglo appeal failed", spec(jpglo.Name, events.KindAppeal, providersim.Failed, ok), false, events.OriginCallback},
		{"mpurse payin succeeded", spec(mpurse.Name, events.KindPayin, providersim.Succeeded, ok), true, events.OriginCallback},
		{"mpurse payin failed", spec(mpurse.Name, events.KindPayin, providersim.Failed, ok), false, events.OriginCallback},
		{"cashypro payin succeeded", spec(cashypro.Name, events.KindPayin, providersim.Succeeded, ok), true, events.OriginCallback},
		{"cashypro payin failed", spec(cashypro.Name, events.KindPayin, providersim.Failed, ok), true, events.OriginCallback},
		{"mrnpay payin succeeded", spec(mrnpay.Name, events.KindPayin, providersim.Succeeded, ok), true, events.OriginCallback},
		{"mrnpay payout succeeded", spec(mrnpay.Name, events.KindPayout, providersim.Succeeded, ok), true, events.OriginCallback},
		// fantian sends no callbacks: its orders make no event.
		{"fantian payin", spec(fantian.Name, events.KindPayin, providersim.Succeeded, ok), false, ""},
	}
	paying := spec(cashypro.Name, events.KindPayin, providersim.Succeeded, ok)
	paying.Intermediate = true
	rows = append(rows, order{"cashypro payin PAYING then succeeded", paying, true, events.OriginCallback})
	rows = append(rows, simulatedRows(func(p string) []order {
		return []order{
			{p + " payin succeeded", spec(p, events.KindPayin, providersim.Succeeded, ok), true, events.OriginCallback},
			{p + " payin failed", spec(p, events.KindPayin, providersim.Failed, ok), true, events.OriginCallback},
			{p + " payout succeeded", spec(p, events.KindPayout, providersim.Succeeded, ok), false, events.OriginCallback},
		}
	})...)

	b := c.NewBooks(e2e.ExactlyOnce)
	orders := create(t, b, rows)
	r := b.Wait(t, booksTimeout)
	// 10 terminal events + PAYING; fantian none; 3 per simulated provider.
	if want := 11 + 3*len(newerProviders()); r.Expected != want {
		t.Errorf("expected events = %d, want %d", r.Expected, want)
	}
	checkOrigins(t, sub, rows, orders)
	// The PAYING came first and became a pending event of its own.
	p := orders["cashypro payin PAYING then succeeded"]
	if sub.Count(p.EventID(events.StatusPending)) == 0 {
		t.Errorf("cashypro PAYING: pending event %s not delivered", p.EventID(events.StatusPending))
	}

	// fantian: the UTR is submitted through the reconciler and matched;
	// the same UTR for a second order is refused without asking fantian.
	ctx := context.Background()
	f := orders["fantian payin"]
	status, body, err := c.SubmitReference(ctx, f.Account, f.MerchantOrderID, f.Reference)
	if err != nil || status != http.StatusOK {
		t.Fatalf("fantian UTR submission: %d %s %v", status, body, err)
	}
	if got, _ := c.Sim.Order(f.ID); got.Matched == "" {
		t.Errorf("fantian order %s not matched at the provider after a 200", f.ID)
	}
	f2, err := b.Create(ctx, spec(fantian.Name, events.KindPayin, providersim.Succeeded, ok))
	if err != nil {
		t.Fatal(err)
	}
	status, body, err = c.SubmitReference(ctx, f2.Account, f2.MerchantOrderID, f.Reference)
	if err != nil || status != http.StatusConflict {
		t.Errorf("same UTR for another order: %d %s %v, want 409", status, body, err)
	}
	if got, _ := c.Sim.Order(f2.ID); got.Matched != "" {
		t.Errorf("second fantian order matched with a UTR already used")
	}
	b.Wait(t, booksTimeout) // still balanced: fantian made no event
}

func testDuplicates(t *testing.T, c *e2e.Cluster, sub *e2e.Subscriber) {
	dup := providersim.Faults{Duplicate: 2}
	rows := []order{
		{"jpglo payin", spec(jpglo.Name, events.KindPayin, providersim.Succeeded, dup), true, events.OriginCallback},
		{"jpglo appeal", spec(jpglo.Name, events.KindAppeal, providersim.Succeeded, dup), false, events.OriginCallback},
		{"mpurse payin", spec(mpurse.Name, events.KindPayin, providersim.Succeeded, dup), false, events.OriginCallback},
		{"mpurse payin failed", spec(mpurse.Name, events.KindPayin, providersim.Failed, dup), false, events.OriginCallback},
		{"cashypro payin", spec(cashypro.Name, events.KindPayin, providersim.Succeeded, dup), true, events.OriginCallback},
		{"mrnpay payin", spec(mrnpay.Name, events.KindPayin, providersim.Succeeded, dup), true, events.OriginCallback},
		{"mrnpay payout", spec(mrnpay.Name, events.KindPayout, providersim.Succeeded, dup), true, events.OriginCallback},
	}
	rows = append(rows, simulatedRows(func(p string) []order {
		return []order{{p + " payin", spec(p, events.KindPayin, providersim.Succeeded, dup), true, events.OriginCallback}}
	})...)
	before, err := c.Metrics(e2e.Ingress)
	if err != nil {
		t.Fatal(err)
	}
	b := c.NewBooks(e2e.ExactlyOnce)
	orders := create(t, b, rows)
	r := b.Wait(t, booksTimeout)
	if r.Expected != len(rows) {
		t.Errorf("expected events = %d, want %d", r.Expected, len(rows))
	}
	checkOrigins(t, sub, rows, orders)
	// Every copy was acknowledged to the provider (so it stops retrying)
	// and absorbed by dedupe.
	for _, o := range b.Orders() {
		acked := 0
		for _, d := range o.Deliveries {
			if d.Acked {
				acked++
			}
		}
		if acked != 3 {
			t.Errorf("%s: %d of 3 copies acknowledged", o.ID, acked)
		}
	}
	after, err := c.Metrics(e2e.Ingress)
	if err != nil {
		t.Fatal(err)
	}
	name := "payhook_ingress_callbacks_total"
	if got := after.Sum(name, "verdict", "duplicate") - before.Sum(name, "verdict", "duplicate"); got < float64(2*len(rows)) {
		t.Errorf("ingress counted %v duplicates, want at least %d", got, 2*len(rows))
	}
}

func testLostCallback(t *testing.T, c *e2e.Cluster, sub *e2e.Subscriber) {
	drop := providersim.Faults{DropCallback: true}
	corrupt := providersim.Faults{CorruptSignature: true}
	paying := spec(cashypro.Name, events.KindPayin, providersim.Succeeded, drop)
	paying.Intermediate = true
	rows := []order{
		// jpglo and cashypro: the reconciler polls and synthesizes the event.
		{"jpglo payin succeeded, dropped", spec(jpglo.Name, events.KindPayin, providersim.Succeeded, drop), true, events.OriginPoll},
		{"jpglo payin failed (jpglo never calls back failures)", spec(jpglo.Name, events.KindPayin, providersim.Failed, providersim.Faults{}), true, events.OriginPoll},
		{"jpglo payin succeeded, every callback corrupt", spec(jpglo.Name, events.KindPayin, providersim.Succeeded, corrupt), true, events.OriginPoll},
		{"cashypro payin succeeded, dropped", spec(cashypro.Name, events.KindPayin, providersim.Succeeded, drop), true, events.OriginPoll},
		{"cashypro payin failed, dropped", spec(cashypro.Name, events.KindPayin, providersim.Failed, drop), true, events.OriginPoll},
		{"cashypro payin PAYING then succeeded, final dropped", paying, true, events.OriginPoll},
		{"cashypro payin succeeded, every callback corrupt", spec(cashypro.Name, events.KindPayin, providersim.Succeeded, corrupt), true, events.OriginPoll},
		// mrnpay: the reconciler asks mrnpay to resend (callback=true).
		{"mrnpay payin succeeded, dropped", spec(mrnpay.Name, events.KindPayin, providersim.Succeeded, drop), true, events.OriginRetrigger},
		{"mrnpay payout succeeded, dropped", spec(mrnpay.Name, events.KindPayout, providersim.Succeeded, drop), true, events.OriginRetrigger},
		// mpurse has no query endpoint: nothing can recover it, and nothing is invented.
		{"mpurse payin succeeded, dropped", spec(mpurse.Name, events.KindPayin, providersim.Succeeded, drop), true, ""},
	}
	// A provider with its own simulated side that the reconciler queries
	// (stripe): the query answer becomes the event.
	rows = append(rows, simulatedRows(func(p string) []order {
		return []order{
			{p + " payin succeeded, dropped", spec(p, events.KindPayin, providersim.Succeeded, drop), true, events.OriginPoll},
			{p + " payin failed, dropped", spec(p, events.KindPayin, providersim.Failed, drop), true, events.OriginPoll},
			{p + " payin succeeded, every callback corrupt", spec(p, events.KindPayin, providersim.Succeeded, corrupt), true, events.OriginPoll},
		}
	})...)
	before, err := c.Metrics(e2e.Reconciler)
	if err != nil {
		t.Fatal(err)
	}
	b := c.NewBooks(e2e.ExactlyOnce)
	orders := create(t, b, rows)
	r := b.Wait(t, booksTimeout)
	if want := len(rows) - 1 + 1; r.Expected != want { // mpurse none, PAYING one more
		t.Errorf("expected events = %d, want %d", r.Expected, want)
	}
	checkOrigins(t, sub, rows, orders)
	// The reconciler counts a re-triggered recovery when it closes the
	// watch, retrigger_grace after asking: wait for its metrics.
	name := "payhook_reconciler_recovered_total"
	var after e2e.Metrics
	e2eEventually(t, 30*time.Second, func() bool {
		if after, err = c.Metrics(e2e.Reconciler); err != nil {
			return false
		}
		return after.Sum(name, "origin", "poll")-before.Sum(name, "origin", "poll") >= 7 &&
			after.Sum(name, "origin", "retrigger")-before.Sum(name, "origin", "retrigger") >= 2 &&
			after.Sum("payhook_reconciler_retriggers_total")-before.Sum("payhook_reconciler_retriggers_total") >= 2
	}, "%s to grow by 7 (origin poll) and 2 (origin retrigger), retriggers_total by 2", name)
	for _, name := range []string{"mrnpay payin succeeded, dropped", "mrnpay payout succeeded, dropped"} {
		if o, _ := c.Sim.Order(orders[name].ID); c.Sim.Stats()[mrnpay.Name].Resends == 0 || !o.Acked() {
			t.Errorf("%s: the re-triggered callback was not sent and acknowledged", name)
		}
	}
}

func testReorder(t *testing.T, c *e2e.Cluster, sub *e2e.Subscriber) {
	// The opposite terminal status arrives first and stands; the real one
	// contradicts it and is published once as a conflict (same id as its
	// own event would have), delivered to the subscriber (empty filter).
	re := providersim.Faults{ReorderFailSuccess: true}
	rows := []order{
		{"jpglo payin succeeded, fail first", spec(jpglo.Name, events.KindPayin, providersim.Succeeded, re), true, events.OriginCallback},
		{"mpurse payin failed, success first", spec(mpurse.Name, events.KindPayin, providersim.Failed, re), false, events.OriginCallback},
		{"cashypro payin succeeded, fail first", spec(cashypro.Name, events.KindPayin, providersim.Succeeded, re), true, events.OriginCallback},
	}
	rows = append(rows, simulatedRows(func(p string) []order {
		return []order{{p + " payin succeeded, fail first", spec(p, events.KindPayin, providersim.Succeeded, re), true, events.OriginCallback}}
	})...)
	b := c.NewBooks(e2e.ExactlyOnce)
	orders := create(t, b, rows)
	r := b.Wait(t, booksTimeout)
	if r.Expected != 2*len(rows) {
		t.Errorf("expected events = %d, want %d (an event and a conflict per order)", r.Expected, 2*len(rows))
	}
	checkOrigins(t, sub, rows, orders)
	for _, row := range rows {
		o := orders[row.name]
		real := events.Status(o.Outcome)
		for _, d := range sub.Deliveries() {
			if d.WebhookID == o.EventID(real) && !strings.HasSuffix(d.Type, ".conflict") {
				t.Errorf("%s: the later %s status was delivered as %s, want a conflict", row.name, real, d.Type)
			}
		}
	}
}

func testBadSignature(t *testing.T, c *e2e.Cluster, sub *e2e.Subscriber) {
	corrupt := providersim.Faults{CorruptSignature: true}
	rows := []order{
		{"jpglo payin", spec(jpglo.Name, events.KindPayin, providersim.Succeeded, corrupt), false, ""},
		{"jpglo appeal", spec(jpglo.Name, events.KindAppeal, providersim.Succeeded, corrupt), false, ""},
		{"mpurse payin", spec(mpurse.Name, events.KindPayin, providersim.Succeeded, corrupt), false, ""},
		{"cashypro payin", spec(cashypro.Name, events.KindPayin, providersim.Succeeded, corrupt), false, ""},
		{"mrnpay payin", spec(mrnpay.Name, events.KindPayin, providersim.Succeeded, corrupt), false, ""},
		{"mrnpay payout", spec(mrnpay.Name, events.KindPayout, providersim.Succeeded, corrupt), false, ""},
	}
	rows = append(rows, simulatedRows(func(p string) []order {
		return []order{
			{p + " payin", spec(p, events.KindPayin, providersim.Succeeded, corrupt), false, ""},
			{p + " payout", spec(p, events.KindPayout, providersim.Succeeded, corrupt), false, ""},
		}
	})...)
	b := c.NewBooks(e2e.ExactlyOnce)
	orders := create(t, b, rows)
	// Each provider retries the same bad bytes: wait for a retry of every
	// order to be refused too, then balance the books (nothing on
	// PAYHOOK_EVENTS, every refusal on PAYHOOK_RAW_REJECTED with its reason).
	deadline := time.Now().Add(booksTimeout)
	for _, r := range rows {
		for {
			o, _ := c.Sim.Order(orders[r.name].ID)
			if o.Attempts() >= 2 {
				for _, d := range o.Deliveries {
					for _, a := range d.Attempts {
						if a.HTTPStatus != http.StatusUnauthorized && a.HTTPStatus != http.StatusBadRequest {
							t.Errorf("%s: attempt %d answered %d %s, want 401 or 400", r.name, a.N, a.HTTPStatus, a.Err)
						}
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d callback attempts after %s, want at least 2", r.name, o.Attempts(), booksTimeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	r := b.Wait(t, booksTimeout)
	if r.Expected != 0 || r.Refused < 2*len(rows) || r.RawRejected < r.Refused {
		t.Errorf("books: %s; want 0 expected events and every refusal on PAYHOOK_RAW_REJECTED", r)
	}
	checkOrigins(t, sub, rows, orders)

	// The reasons are specific: a signature (or, for mpurse, decryption) failure.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range append([]string{jpglo.Name, mpurse.Name, cashypro.Name, mrnpay.Name}, newerProviders()...) {
		msgs, err := c.ReadStream(ctx, natsbus.StreamRawRejected, "payhook.raw."+p+".rejected")
		if err != nil {
			t.Fatal(err)
		}
		reasons := map[string]int{}
		for _, m := range msgs {
			rec, err := ingress.DecodeRawRecord(m.Header, m.Data)
			if err != nil {
				t.Errorf("%s: %v", m.Subject, err)
			}
			reasons[rec.Reason]++
		}
		if len(msgs) == 0 {
			t.Errorf("%s: no rejected records", p)
		}
		for reason := range reasons {
			if !strings.Contains(reason, "signature") && !strings.Contains(reason, "decrypt") {
				t.Errorf("%s: rejected with reason %q, want a signature or decryption reason (all: %v)", p, reason, reasons)
			}
		}
	}
}

func testSubscriberOutage(t *testing.T, c *e2e.Cluster, sub *e2e.Subscriber) {
	sub.SetMode(e2e.Down)
	defer sub.SetMode(e2e.Up)
	ok := providersim.Faults{}
	rows := []order{
		{"jpglo payin", spec(jpglo.Name, events.KindPayin, providersim.Succeeded, ok), true, events.OriginCallback},
		{"mpurse payin", spec(mpurse.Name, events.KindPayin, providersim.Succeeded, ok), false, events.OriginCallback},
		{"cashypro payin", spec(cashypro.Name, events.KindPayin, providersim.Failed, ok), true, events.OriginCallback},
		{"mrnpay payin", spec(mrnpay.Name, events.KindPayin, providersim.Succeeded, ok), true, events.OriginCallback},
		{"mrnpay payout", spec(mrnpay.Name, events.KindPayout, providersim.Succeeded, ok), true, events.OriginCallback},
	}
	b := c.NewBooks(e2e.ExactlyOnce)
	refusedBefore := sub.Stats().Refused
	orders := create(t, b, rows)
	// While the subscriber is down the events are stored (nothing missing
	// on PAYHOOK_EVENTS) and the dispatcher keeps trying.
	e2eEventually(t, booksTimeout, func() bool {
		r := b.Check(context.Background())
		// The breaker opens after 5 consecutive failures: expect at least 3 refusals.
		return r.Err == nil && len(r.Missing) == 0 && sub.Stats().Refused-refusedBefore >= 3
	}, "events stored and refused deliveries retried while the subscriber is down")
	for _, r := range rows {
		o := orders[r.name]
		if n := sub.Count(o.EventID(events.Status(o.Outcome))); n != 0 {
			t.Fatalf("%s: delivered %d times while the subscriber was down", r.name, n)
		}
	}
	time.Sleep(2 * time.Second) // a few more refusals: the breaker opens
	sub.SetMode(e2e.Up)
	b.Wait(t, booksTimeout)
	checkOrigins(t, sub, rows, orders)
	m, err := c.Metrics(e2e.Dispatcher)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Sum("payhook_dispatch_deliveries_total", "subscriber", sub.ID, "outcome", "retry"); got < float64(len(rows)) {
		t.Errorf("dispatcher counted %v retries, want at least %d", got, len(rows))
	}
	if got := m.Sum("payhook_dispatch_deliveries_total", "subscriber", sub.ID, "outcome", "dead_lettered"); got != 0 {
		t.Errorf("dispatcher dead-lettered %v deliveries during a short outage", got)
	}
}

func testSlowSubscriber(t *testing.T, c *e2e.Cluster, sub *e2e.Subscriber) {
	// Timeout is 1s: every answer comes too late, so the dispatcher retries
	// the same webhook-id until the subscriber is fast again.
	sub.SetMode(e2e.Slow(1500 * time.Millisecond))
	defer sub.SetMode(e2e.Up)
	// The one scenario whose books allow redeliveries: every attempt outlives
	// the dispatcher's timeout, so it cannot know the late 204s arrived and
	// resends the same webhook-id, which the receiver dedupes by. A
	// redelivery here is the point, not a fault; every other scenario is
	// ExactlyOnce.
	b := c.NewBooks()
	o, err := b.Create(context.Background(), spec(jpglo.Name, events.KindPayin, providersim.Succeeded, providersim.Faults{}))
	if err != nil {
		t.Fatal(err)
	}
	id := o.EventID(events.StatusSucceeded)
	e2eEventually(t, booksTimeout, func() bool { return sub.Count(id) >= 2 }, "two timed-out attempts of %s", id)
	sub.SetMode(e2e.Up)
	r := b.Wait(t, booksTimeout)
	if r.Redeliveries[sub.ID] < 1 {
		t.Errorf("redeliveries = %v, want at least 1 after timeouts", r.Redeliveries)
	}
	for _, d := range sub.Deliveries() {
		if d.WebhookID == id && d.EventID != id {
			t.Errorf("redelivery changed the event: webhook-id %s, CloudEvent id %s", d.WebhookID, d.EventID)
		}
	}
	// The same order in ExactlyOnce books does not balance: the strictness
	// every other scenario relies on can fail.
	strict := c.NewBooks(e2e.ExactlyOnce)
	strict.Add(o, false)
	sr := strict.Check(context.Background())
	if sr.OK() || sr.Redeliveries[sub.ID] < 1 || len(sr.Redelivered[sub.ID]) != 1 || !strings.HasPrefix(sr.Redelivered[sub.ID][0], id+" ") {
		t.Errorf("ExactlyOnce books balance despite a redelivery: %s", sr)
	}
	if !strings.Contains(sr.String(), id) {
		t.Errorf("ExactlyOnce report does not name the redelivered event: %s", sr)
	}
}

func e2eEventually(t *testing.T, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testForgedEvent: a client that reaches NATS publishes a made-up jpglo
// success straight onto PAYHOOK_EVENTS, without the producers' signature.
// The dispatcher process never delivers it, counts it and logs it once with
// its subject and stream sequence.
func testForgedEvent(t *testing.T, c *e2e.Cluster, sub *e2e.Subscriber) {
	ctx := context.Background()
	now := time.Now().UTC()
	forged := events.Event{Provider: jpglo.Name, Account: accountOf(jpglo.Name), Kind: events.KindPayin,
		Status: events.StatusSucceeded, MerchantOrderID: "FORGED-" + strconv.FormatInt(now.UnixNano(), 36),
		Amount: events.MustMoney("999999.00", "INR"), OccurredAt: now, ReceivedAt: now, Origin: events.OriginCallback}
	body, err := forged.MarshalCloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	const subject = "payhook.events.jpglo.payin.succeeded"
	if _, err := c.JS().Publish(ctx, subject, body); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(booksTimeout)
	for {
		_, m, err := c.Get(ctx, e2e.Dispatcher, "/metrics")
		if err == nil && forgedCount(string(m), sub.ID) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("payhook_dispatch_forged_total did not count the forged event within %s", booksTimeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, d := range sub.Deliveries() {
		if d.MerchantOrderID == forged.MerchantOrderID || d.EventID == forged.ID() {
			t.Fatalf("forged event delivered: %s", d.EventID)
		}
	}
	if n := forgedCount(string(mustGet(t, c, "/metrics")), sub.ID); n != 1 {
		t.Errorf("payhook_dispatch_forged_total{subscriber=%q} = %d, want 1", sub.ID, n)
	}
	var lines int
	for _, l := range strings.Split(c.Logs(e2e.Dispatcher), "\n") {
		if strings.Contains(l, "forged event refused") && strings.Contains(l, `"subject":"`+subject+`"`) && strings.Contains(l, `"stream_seq":`) {
			lines++
		}
	}
	if lines != 1 {
		t.Errorf("%d dispatcher log lines for the forged event, want 1", lines)
	}
}

// forgedCount reads payhook_dispatch_forged_total{subscriber=id} from a
// Prometheus text scrape (-1 when absent).
func forgedCount(scrape, id string) int {
	prefix := `payhook_dispatch_forged_total{subscriber="` + id + `"} `
	for _, l := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

func mustGet(t *testing.T, c *e2e.Cluster, path string) []byte {
	t.Helper()
	code, b, err := c.Get(context.Background(), e2e.Dispatcher, path)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, code, err)
	}
	return b
}
