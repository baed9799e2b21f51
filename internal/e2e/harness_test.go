package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/e2e"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
	"github.com/payhook/payhook/pkg/providersim"
)

// TestHarness exercises what the reliability suite builds on — crash and
// graceful restarts of each service, a NATS outage, metrics and logs — on a
// cluster without Redis (dedupe in the NATS key-value bucket), and checks
// the books after each disruption, for an unfiltered and a filtered subscriber.
func TestHarness(t *testing.T) {
	// A second subscriber gets jpglo and cashypro successes only.
	c := e2e.Start(t, e2e.Options{Subscribers: []e2e.SubscriberConfig{{}, {ID: "ok-only",
		Filter: config.Filter{Providers: []string{jpglo.Name, cashypro.Name}, Statuses: []string{"succeeded"}}}}})
	ctx := context.Background()
	// At-least-once books: the NATS outage below stops the server right after
	// the dispatcher's last deliveries, and an acknowledgement in flight then
	// is lost and the event redelivered (by design; the reliability suite
	// measures it). Before that nothing excuses a redelivery: exactlyOnce
	// asserts none.
	b := c.NewBooks()
	exactlyOnce := func(r e2e.Report) {
		t.Helper()
		for sub, n := range r.Redeliveries {
			if n != 0 {
				t.Errorf("subscriber %s: %d redeliveries (%v) before any disruption that could excuse one", sub, n, r.Redelivered[sub])
			}
		}
	}
	dup := providersim.Faults{Duplicate: 1}
	newOrder := func(provider string, kind events.Kind) {
		t.Helper()
		if _, err := b.CreateWatched(ctx, spec(provider, kind, providersim.Succeeded, dup)); err != nil {
			t.Fatal(err)
		}
	}
	newOrder(jpglo.Name, events.KindPayin)
	newOrder(cashypro.Name, events.KindPayin)
	exactlyOnce(b.Wait(t, booksTimeout))

	for _, s := range e2e.Services {
		if code, body, err := c.Get(ctx, s, "/readyz"); err != nil || code != http.StatusOK {
			t.Errorf("%s /readyz: %d %s %v", s, code, body, err)
		}
	}
	m, err := c.Metrics(e2e.Ingress)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Sum("payhook_ingress_callbacks_total", "verdict", "accepted"); got < 2 {
		t.Errorf("ingress accepted %v callbacks, want at least 2", got)
	}

	// Graceful stop drains and exits 0; crash and restart on the same port.
	for _, s := range e2e.Services {
		code, err := c.Term(s)
		if err != nil || code != 0 {
			t.Fatalf("%s: SIGTERM exit %d, %v; log:\n%s", s, code, err, c.Logs(s))
		}
		if c.Running(s) || c.PID(s) != 0 {
			t.Fatalf("%s still running after SIGTERM", s)
		}
		if err := c.StartService(s); err != nil {
			t.Fatal(err)
		}
		pid := c.PID(s)
		c.Kill(s)
		if c.Running(s) || c.ExitCode(s) != -1 {
			t.Fatalf("%s: after SIGKILL running=%v exit=%d", s, c.Running(s), c.ExitCode(s))
		}
		if err := c.Restart(s); err != nil {
			t.Fatal(err)
		}
		if c.PID(s) == pid || !c.Running(s) {
			t.Fatalf("%s not restarted", s)
		}
		if n := strings.Count(c.Logs(s), "=== start "); n != 3 {
			t.Errorf("%s log has %d start markers, want 3", s, n)
		}
	}
	newOrder(mrnpay.Name, events.KindPayin)
	newOrder(mpurse.Name, events.KindPayin)
	// The services were stopped with SIGTERM (drained: acknowledgements
	// flushed) and killed only while idle: still no redelivery.
	exactlyOnce(b.Wait(t, booksTimeout))

	// NATS down: ingress refuses with 503 (nothing acknowledged that is not
	// stored); once NATS is back the provider's retries land.
	c.StopNATS()
	o, err := b.CreateWatched(ctx, spec(jpglo.Name, events.KindPayin, providersim.Succeeded, providersim.Faults{}))
	if err == nil {
		t.Fatal("watch published while NATS is down")
	}
	e2eEventually(t, 20*time.Second, func() bool {
		got, _ := c.Sim.Order(o.ID)
		return got.Attempts() >= 1
	}, "a callback attempt while NATS is down")
	got, _ := c.Sim.Order(o.ID)
	if a := got.Deliveries[0].Attempts[0]; a.Acked || a.HTTPStatus != http.StatusServiceUnavailable {
		t.Errorf("callback while NATS is down: HTTP %d acked=%v, want 503 unacknowledged", a.HTTPStatus, a.Acked)
	}
	if err := c.StartNATS(); err != nil {
		t.Fatal(err)
	}
	if err := b.Watch(ctx, o); err != nil {
		t.Fatal(err)
	}
	b.Wait(t, booksTimeout)

	if got := c.Subscriber("ok-only").Stats().Unique; got != 3 {
		t.Errorf("filtered subscriber got %d events, want 3 (two jpglo, one cashypro)", got)
	}

	// The services log no secret (a first check; the reliability suite greps harder).
	for _, s := range e2e.Services {
		logs := c.Logs(s)
		for _, secret := range c.Secrets() {
			if strings.Contains(logs, secret) {
				t.Errorf("%s log contains a configured secret (%.4s…)", s, secret)
			}
		}
	}
}

// TestBooksCatchMissingEvents shows the checker fails when payhook does
// not deliver what it should: an order whose callback is dropped, marked
// watched although nobody told the reconciler, must be reported missing.
func TestBooksCatchMissingEvents(t *testing.T) {
	c := e2e.Start(t, e2e.Options{Start: []e2e.Service{e2e.Ingress}})
	b := c.NewBooks()
	o, err := b.Create(context.Background(), spec(jpglo.Name, events.KindPayin, providersim.Succeeded, providersim.Faults{DropCallback: true}))
	if err != nil {
		t.Fatal(err)
	}
	b.MarkWatched(o.ID)
	time.Sleep(500 * time.Millisecond)
	r := b.Check(context.Background())
	id := o.EventID(events.StatusSucceeded)
	if r.OK() || len(r.Missing) != 1 || r.Missing[0] != id || len(r.Undelivered[c.Subscriber("").ID]) != 1 {
		t.Fatalf("report = %s; want %s missing and undelivered", r, id)
	}
	if !strings.Contains(r.String(), id) {
		t.Errorf("report does not name the missing event: %s", r)
	}
}
