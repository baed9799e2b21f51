package dispatch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// TestReloadAddsSubscribersWithoutDraining: a config with a new subscriber
// makes a serving dispatcher deliver to it at once (from its start: events
// stored after it appears), while a delivery in flight to an existing one
// goes on; a changed subscriber is reported as waiting for a restart.
func TestReloadAddsSubscribersWithoutDraining(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	slow := newReceiver(t, func(r *http.Request, id string, n int) int {
		<-release // in flight across the reload
		return 200
	})
	t.Cleanup(free) // after the server's Close is registered, so it runs first: a failed test must not leave the handler blocked
	fresh := newReceiver(t, nil)
	h := newHarness(t)
	cfg := &config.Config{AdminToken: adminToken, NATS: config.NATS{Replicas: 1}, Subscribers: []config.Subscriber{sub(t, "ledger", slow.srv.URL)}}
	cfg.EventSigning = h.cfg.EventSigning
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.NATS.URL = h.n.URL
	reloads := make(chan *config.Config)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, RunOptions{Listener: ln, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Reloads: reloads})
	}()
	defer func() {
		cancel()
		<-done
	}()
	testenv.Eventually(t, 10*time.Second, func() bool {
		r, err := http.Get("http://" + ln.Addr().String() + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	}, "not ready")
	first := h.publish(t, events.Event{Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusSucceeded, MerchantOrderID: "RL-1"})[0]
	testenv.Eventually(t, 10*time.Second, func() bool { return slow.seenN(first) == 1 }, "first delivery did not start")

	next := *cfg
	changed := cfg.Subscribers[0]
	changed.MaxAttempts = 3
	added := sub(t, "fresh", fresh.srv.URL)
	added.Start = config.StartNew
	next.Subscribers = []config.Subscriber{changed, added}
	reloads <- &next
	testenv.Eventually(t, 10*time.Second, func() bool {
		_, err := h.js.Consumer(context.Background(), natsbus.StreamEvents, ConsumerName("fresh"))
		return err == nil
	}, "added subscriber has no consumer")
	second := h.publish(t, events.Event{Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusSucceeded, MerchantOrderID: "RL-2"})[0]
	testenv.Eventually(t, 10*time.Second, func() bool { return fresh.doneN(second) == 1 }, "added subscriber got nothing")
	if fresh.seenN(first) != 0 {
		t.Error("added subscriber got an event stored before it appeared (start: new)")
	}
	free()
	testenv.Eventually(t, 10*time.Second, func() bool { return slow.doneN(first) == 1 && slow.doneN(second) == 1 }, "the in-flight delivery did not finish")
}

// seenN is how many requests for id reached the receiver (answered or not).
func (rc *receiver) seenN(id string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.seen[id]
}

// doneN is how many requests for id were answered 2xx.
func (rc *receiver) doneN(id string) int {
	n := 0
	for _, h := range rc.allHits() {
		if h.id == id && h.status < 300 {
			n++
		}
	}
	return n
}

// TestReloadChangesAndRemovesSubscribers: a reload moves a subscriber to a
// new URL and secret while an attempt to the old URL is in flight (it
// finishes there, not drained), narrows another's filter in code and on
// its consumer, and removes a third: its consumer is kept, it gets nothing
// more from this replica, and its worker is let go once stopped.
func TestReloadChangesAndRemovesSubscribers(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	oldURL := newReceiver(t, func(*http.Request, string, int) int {
		<-release
		return 200
	})
	t.Cleanup(free)
	newURL, narrowed, removed := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	h := newHarness(t, sub(t, "ledger", oldURL.srv.URL), sub(t, "report", narrowed.srv.URL), sub(t, "legacy", removed.srv.URL))
	r := h.start(t)
	first := h.publish(t, event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "RC-1"))[0]
	testenv.Eventually(t, 10*time.Second, func() bool {
		return oldURL.seenN(first) == 1 && narrowed.doneN(first) == 1 && removed.doneN(first) == 1
	}, "first event not with every subscriber")

	next := *h.cfg
	moved := h.cfg.Subscribers[0]
	moved.URL, moved.Secret = newURL.srv.URL, newSecret(t)
	report := h.cfg.Subscribers[1]
	report.Filter = config.Filter{Statuses: []string{"failed"}}
	next.Subscribers = []config.Subscriber{moved, report}
	res, err := r.d.Reload(context.Background(), &next)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 0 || !slices.Equal(res.Changed, []string{"ledger", "report"}) || !slices.Equal(res.Removed, []string{"legacy"}) {
		t.Fatalf("reload: %+v", res)
	}
	second := h.publish(t,
		event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "RC-2"),
		event("jpglo", "glo-in", events.KindPayin, events.StatusFailed, "RC-3"))
	testenv.Eventually(t, 10*time.Second, func() bool {
		return newURL.doneN(second[0]) == 1 && newURL.doneN(second[1]) == 1 && narrowed.doneN(second[1]) == 1
	}, "events after the reload not delivered with the new settings")
	for _, hit := range newURL.allHits() {
		wh, _ := standardwebhooks.NewWebhook(moved.Secret)
		if err := wh.Verify(hit.body, hit.hdr); err != nil {
			t.Fatalf("delivery to the new URL not signed with the new secret: %v", err)
		}
	}
	free()
	testenv.Eventually(t, 10*time.Second, func() bool { return oldURL.doneN(first) == 1 }, "the attempt in flight at the reload did not finish")
	if newURL.seenN(first) != 0 {
		t.Error("the event in flight at the reload was sent again to the new URL")
	}
	// Nothing more for the removed subscriber or outside the new filter;
	// the removed one's consumer stays.
	testenv.Eventually(t, 10*time.Second, func() bool {
		return counter(r, "payhook_dispatch_deliveries_total", "subscriber", "report", "outcome", OutcomeDelivered) == 2
	}, "report deliveries")
	if narrowed.doneN(second[0]) != 0 {
		t.Error("a succeeded event reached a subscriber whose filter now takes only failed ones")
	}
	if n := removed.count(); n != 1 {
		t.Errorf("removed subscriber got %d requests, want only the one before the reload", n)
	}
	for _, c := range []struct{ stream, name string }{{natsbus.StreamEvents, ConsumerName("legacy")}, {StreamReplay, ReplayConsumerName("legacy")}} {
		if _, err := h.js.Consumer(context.Background(), c.stream, c.name); err != nil {
			t.Errorf("removed subscriber's consumer %s: %v", c.name, err)
		}
	}
	info, err := h.js.Consumer(context.Background(), natsbus.StreamEvents, ConsumerName("report"))
	if err != nil || !slices.Equal(info.CachedInfo().Config.FilterSubjects, FilterSubjects(report.Filter)) {
		t.Errorf("report's consumer filter not updated: %v", err)
	}
	// The removed worker, once stopped, is not kept for the drain.
	testenv.Eventually(t, 10*time.Second, func() bool {
		r.d.runMu.Lock()
		defer r.d.runMu.Unlock()
		return len(r.d.stopped) == 0
	}, "the removed subscriber's worker is still kept after it stopped")
}

// TestReloadRefusesRestartKeysAndBadSecrets: a config changing a key read
// only at start, or with a secret that does not decode, is refused whole:
// nothing changes and the subscriber delivers as before.
func TestReloadRefusesRestartKeysAndBadSecrets(t *testing.T) {
	rc, other := newReceiver(t, nil), newReceiver(t, nil)
	h := newHarness(t, sub(t, "ledger", rc.srv.URL))
	r := h.start(t)
	moved := h.cfg.Subscribers[0]
	moved.URL = other.srv.URL
	cases := []struct {
		name string
		edit func(c *config.Config)
		key  string
	}{
		{"listen address", func(c *config.Config) { c.Dispatcher.Listen = "127.0.0.1:9999" }, "dispatcher"},
		{"nats", func(c *config.Config) { c.NATS.URL = "nats://elsewhere:4222" }, "nats"},
		{"admin token", func(c *config.Config) { c.AdminToken = strings.Repeat("b", 32) }, "admin_token"},
		{"tracing", func(c *config.Config) { c.Tracing.Endpoint = "collector:4317" }, "tracing"},
		{"concurrency", func(c *config.Config) { s := moved; s.Concurrency = 99; c.Subscribers = []config.Subscriber{s} }, "subscribers[0].concurrency (ledger)"},
		{"bad secret", func(c *config.Config) { s := moved; s.Secret = "whsec_!!!"; c.Subscribers = []config.Subscriber{s} }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := *h.cfg
			next.Subscribers = []config.Subscriber{moved}
			tc.edit(&next)
			_, err := r.d.Reload(context.Background(), &next)
			var re *RestartError
			switch {
			case err == nil:
				t.Fatal("reload accepted")
			case tc.key != "" && (!errors.As(err, &re) || !slices.Contains(re.Keys, tc.key)):
				t.Fatalf("reload: %v, want a restart error naming %s", err, tc.key)
			}
		})
	}
	id := h.publish(t, event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "RR-1"))[0]
	testenv.Eventually(t, 10*time.Second, func() bool { return rc.doneN(id) == 1 }, "not delivered with the running settings")
	if other.count() != 0 {
		t.Fatal("a refused reload changed the subscriber's URL")
	}
	// Keys only other services read do not stop a reload.
	next := *h.cfg
	next.Ingress.Listen = "127.0.0.1:9998"
	if _, err := r.d.Reload(context.Background(), &next); err != nil {
		t.Fatalf("ingress key refused: %v", err)
	}
}

// TestReloadComparesConcurrencyWithRunningWorkers: a reload is compared
// with what runs, not with the config the dispatcher started with. A
// subscriber added by a reload has its slots sized then, so a later reload
// changing its concurrency is refused; a subscriber removed by a reload
// and added again is a new worker, so it may come back with any
// concurrency, and gets slots, fetch cap and MaxAckPending of it.
func TestReloadComparesConcurrencyWithRunningWorkers(t *testing.T) {
	h := newHarness(t, sub(t, "ledger", newReceiver(t, nil).srv.URL), sub(t, "legacy", newReceiver(t, nil).srv.URL))
	r := h.start(t)
	ctx := context.Background()
	ledger, legacy := h.cfg.Subscribers[0], h.cfg.Subscribers[1]
	fresh := sub(t, "fresh", newReceiver(t, nil).srv.URL)
	reload := func(subs ...config.Subscriber) (ReloadResult, error) {
		next := *h.cfg
		next.Subscribers = subs
		return r.d.Reload(ctx, &next)
	}

	if _, err := reload(ledger, legacy, fresh); err != nil {
		t.Fatal(err)
	}
	more := fresh
	more.Concurrency = 8
	_, err := reload(ledger, legacy, more)
	var re *RestartError
	if !errors.As(err, &re) || !slices.Equal(re.Keys, []string{"subscribers[2].concurrency (fresh)"}) {
		t.Fatalf("concurrency of a subscriber added by a reload changed: %v, want a restart error naming it", err)
	}
	if w := r.d.roster().byID["fresh"]; w.concurrency() != 4 || w.settings().sub.Concurrency != 4 {
		t.Fatalf("refused reload changed the worker: slots %d, settings %d", w.concurrency(), w.settings().sub.Concurrency)
	}

	if res, err := reload(ledger, fresh); err != nil || !slices.Equal(res.Removed, []string{"legacy"}) {
		t.Fatalf("remove: %+v %v", res, err)
	}
	back := legacy
	back.Concurrency = 2
	res, err := reload(ledger, fresh, back)
	if err != nil || !slices.Equal(res.Added, []string{"legacy"}) {
		t.Fatalf("a removed subscriber added again with another concurrency: %+v %v, want it added", res, err)
	}
	w := r.d.roster().byID["legacy"]
	if w.concurrency() != 2 || w.maxStarted != 8 {
		t.Fatalf("re-added worker: %d slots, fetch cap %d, want 2 and 8", w.concurrency(), w.maxStarted)
	}
	c, err := h.js.Consumer(ctx, natsbus.StreamEvents, ConsumerName("legacy"))
	if err != nil || c.CachedInfo().Config.MaxAckPending != 128 {
		t.Fatalf("re-added subscriber's consumer: %v, want MaxAckPending 128", err)
	}
}

// TestReloadClearsAConsumerReportedMissing: a consumer was found gone and
// could not be recreated (its recorded position did not read), so it is
// reported missing. A reload that recreates it, once the position reads
// again, ends the report (/readyz, payhook_dispatch_consumer_missing) and
// drops the old pin id, as a recreation by checkConsumer does. Run is not
// started, so only the calls below touch the consumer.
func TestReloadClearsAConsumerReportedMissing(t *testing.T) {
	h := newHarness(t, sub(t, "ledger", newReceiver(t, nil).srv.URL))
	reg := prometheus.NewRegistry()
	d, err := New(h.cfg, h.js, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{d: d, reg: reg}
	ctx := context.Background()
	w := d.roster().byID["ledger"]
	w.pins[0].mu.Lock()
	w.pins[0].id = "pin-of-the-old-consumer"
	w.pins[0].mu.Unlock()
	kept, err := d.pos.Get(ctx, "ledger")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.pos.Put(ctx, "ledger", []byte("not a position")); err != nil {
		t.Fatal(err)
	}
	if err := h.js.DeleteConsumer(ctx, natsbus.StreamEvents, ConsumerName("ledger")); err != nil {
		t.Fatal(err)
	}
	if w.checkConsumer(ctx, false) {
		t.Fatal("recreated from a position that does not read")
	}
	if d.CheckConsumers(ctx) == nil || counter(r, "payhook_dispatch_consumer_missing", "subscriber", "ledger") != 1 {
		t.Fatal("a consumer gone and not recreated is not reported missing")
	}

	if _, err := d.pos.Put(ctx, "ledger", kept.Value()); err != nil {
		t.Fatal(err)
	}
	next := *h.cfg
	changed := h.cfg.Subscribers[0]
	changed.MaxAttempts = 3
	next.Subscribers = []config.Subscriber{changed}
	if res, err := d.Reload(ctx, &next); err != nil || !slices.Equal(res.Changed, []string{"ledger"}) {
		t.Fatalf("reload: %+v %v", res, err)
	}
	if _, err := h.js.Consumer(ctx, natsbus.StreamEvents, ConsumerName("ledger")); err != nil {
		t.Fatalf("reload did not recreate the consumer: %v", err)
	}
	if err := d.CheckConsumers(ctx); err != nil {
		t.Errorf("/readyz after the reload recreated it: %v", err)
	}
	if v := counter(r, "payhook_dispatch_consumer_missing", "subscriber", "ledger"); v != 0 {
		t.Errorf("payhook_dispatch_consumer_missing = %v after the reload recreated it", v)
	}
	if v := counter(r, "payhook_dispatch_consumer_recreated_total", "subscriber", "ledger"); v != 1 {
		t.Errorf("payhook_dispatch_consumer_recreated_total = %v, want 1", v)
	}
	w.pins[0].mu.Lock()
	defer w.pins[0].mu.Unlock()
	if w.pins[0].id != "" {
		t.Errorf("pin id of the deleted consumer kept: %q", w.pins[0].id)
	}
}
