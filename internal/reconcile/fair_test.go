package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
)

// TestFloodedAccountDoesNotDelayOthers: one account's backlog (20,000
// watches due at once, the jpglo account) must not delay another
// account's polls. The conditions under which it did: every flood watch is
// due and its account's bucket (5/s, burst 10) is empty, so each delivery
// of a flood watch was put back for about a second (the next token) and
// redelivered, and the few that got a token held a worker for up to a
// second while waiting for it; the redelivery queue of the shared consumer
// stayed thousands deep, and a watch of another account that came due
// joined its tail. New watches of the other account keep arriving (one
// every 250 ms) while the flood is due, on the default schedule (first poll
// 1 min after the open) and on a fast one (1 s).
//
// Each victim watch is opened so that it is due 1 s later (opened
// schedule[0] - 1 s in the past, as a watch announced that long ago), and
// its first poll must come within victimBound of that due time; its
// account has its own bucket with room to spare (5/s for 4 arrivals a
// second).
func TestFloodedAccountDoesNotDelayOthers(t *testing.T) {
	const (
		flood       = 20000
		victims     = 40
		victimEvery = 250 * time.Millisecond
		// victimBound is generous for a loaded 2-core machine: a fair
		// reconciler polls a due watch within milliseconds, the unfair one
		// took minutes.
		victimBound = 10 * time.Second
	)
	for _, tc := range []struct {
		name     string
		schedule string
		first    time.Duration
	}{
		{"default schedule", "[1m, 3m, 10m, 30m, 1h, 3h, 6h, 12h, 24h]", time.Minute},
		{"fast schedule", "[1s, 2s, 4s]", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOpts{schedule: tc.schedule})
			// A store that takes 2 ms per check, as devstack's key-value
			// store on a busy machine: the replica triages at most a few
			// thousand deliveries a second.
			h.store = slowStore{Store: h.store, delay: 2 * time.Millisecond}
			// The defaults: 5 polls/s per account, burst 10.
			h.cfg.Reconciler.RatePerSecond, h.cfg.Reconciler.RateBurst = 5, 10
			h.cfg.Reconciler.MaxWatchesPerAccount = 2 * flood
			rep := h.start(func(d *Deps) { d.Options.Workers = 0 }) // default 8
			ctx := context.Background()

			// The flood: opened one schedule step ago, so all due now.
			floodStart := time.Now()
			floodOpened := floodStart.Add(-tc.first)
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for g := range 8 {
				wg.Go(func() {
					for i := g; i < flood; i += 8 {
						req := Request{Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, MerchantOrderID: fmt.Sprintf("flood-%05d", i)}
						if err := openRetrying(ctx, rep.r, req, floodOpened); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			floodDue := time.Now()

			// The victims, one every 250 ms, each due 1 s after it is opened.
			due := map[string]time.Time{}
			for i := range victims {
				id := fmt.Sprintf("victim-%03d", i)
				opened := time.Now().Add(-(tc.first - time.Second))
				// Failed at the provider, with the amount announced: the first
				// poll recovers the event (synthesized) and closes the watch.
				h.mrnpay.set(id, "2")
				req := Request{Provider: "mrnpay", Account: "mrn-cn", Kind: events.KindPayin, MerchantOrderID: id, Amount: "100.00"}
				if err := openRetrying(ctx, rep.r, req, opened); err != nil {
					t.Fatal(err)
				}
				due[id] = opened.Add(tc.first)
				time.Sleep(victimEvery)
			}
			deadline := time.Now().Add(victimBound + 5*time.Second)
			var worst time.Duration
			var late []string
			for id, d := range due {
				var first time.Time
				for first = h.mrnpay.firstQuery(id); first.IsZero() && time.Now().Before(deadline); first = h.mrnpay.firstQuery(id) {
					time.Sleep(50 * time.Millisecond)
				}
				switch {
				case first.IsZero():
					late = append(late, id+" never polled")
				case first.Sub(d) > victimBound:
					late = append(late, fmt.Sprintf("%s polled %.1f s after due", id, first.Sub(d).Seconds()))
				}
				worst = max(worst, first.Sub(d))
			}
			floodPolls := h.jpglo.total()
			elapsed := time.Since(floodStart) // flood watches were due from their open on
			t.Logf("%d flood watches due (opened in %.1f s); %d victims, worst first poll %.2f s after due; flood polled %d times in %.1f s",
				flood, floodDue.Sub(floodStart).Seconds(), victims, worst.Seconds(), floodPolls, elapsed.Seconds())
			if len(late) > 0 {
				t.Errorf("%d of %d victims late (bound %s): %v", len(late), victims, victimBound, late[:min(len(late), 10)])
			} else {
				settle(t, rep.r.m.recovered.WithLabelValues("mrnpay", "poll"), victims, "victims recovered by poll")
			}
			// The flood itself is polled at its account's rate: not starved,
			// not faster than the bucket allows.
			if floodPolls == 0 {
				t.Error("the flooded account was not polled at all")
			}
			// Burst 10, 5/s, plus the second a poll may wait for its token.
			if limit := 10 + int(5*(elapsed.Seconds()+1)) + 5; floodPolls > limit {
				t.Errorf("flood polled %d times in %.1f s, more than its bucket allows (%d)", floodPolls, elapsed.Seconds(), limit)
			}
		})
	}
}

// slowStore delays every Check.
type slowStore struct {
	dedupe.Store
	delay time.Duration
}

func (s slowStore) Check(ctx context.Context, id string, o dedupe.Order) (dedupe.Check, error) {
	time.Sleep(s.delay)
	return s.Store.Check(ctx, id, o)
}

// TestAccountWatchCap: an account at reconciler.max_watches_per_account
// gets no new watch — 429 on the API, terminated on the subject, both
// counted — while re-announcements of its open watches stay idempotent and
// other accounts are unaffected; once a watch closes there is room again.
func TestAccountWatchCap(t *testing.T) {
	h := newHarness(t, harnessOpts{schedule: "[1m]"})
	h.cfg.Reconciler.MaxWatchesPerAccount = 3
	rep := h.start()
	body := func(account, provider, order string) string {
		return fmt.Sprintf(`{"provider":%q,"account":%q,"kind":"payin","merchant_order_id":%q}`, provider, account, order)
	}
	for i := range 3 {
		if code, b := post(t, rep.url+"/v1/watches", adminToken, body("glo-in", "jpglo", fmt.Sprintf("C-%d", i))); code != 202 {
			t.Fatalf("watch %d: %d %s", i, code, b)
		}
	}
	code, b := post(t, rep.url+"/v1/watches", adminToken, body("glo-in", "jpglo", "C-3"))
	if code != 429 || !strings.Contains(b, "max_watches_per_account") {
		t.Errorf("over the cap: %d %s, want 429 naming max_watches_per_account", code, b)
	}
	if got := counter(rep.r.m.rejected.WithLabelValues("api", RejectedAccountCap)); got != 1 {
		t.Errorf("rejected{api,account_cap} = %v, want 1", got)
	}
	if code, b := post(t, rep.url+"/v1/watches", adminToken, body("glo-in", "jpglo", "C-0")); code != 202 || !strings.Contains(b, `"created":false`) {
		t.Errorf("re-announcement at the cap: %d %s, want 202 created false", code, b)
	}
	if code, b := post(t, rep.url+"/v1/watches", adminToken, body("mrn-cn", "mrnpay", "M-1")); code != 202 {
		t.Errorf("another account: %d %s", code, b)
	}
	h.announce("jpglo", `{"account":"glo-in","kind":"payin","merchant_order_id":"C-4"}`)
	testenv.Eventually(t, 5*time.Second, func() bool {
		return counter(rep.r.m.rejected.WithLabelValues("subject", RejectedAccountCap)) == 1
	}, "announcement over the cap not refused on the subject")

	// C-1's callback closes its watch: room for one more, once the count is
	// asked again (countTTL).
	if code, _ := post(t, h.ingress+"/v1/callbacks/jpglo/glo-in/payin", "", jpgloCallback("C-1"), "Content-Type", "application/json"); code != 200 {
		t.Fatalf("callback: %d", code)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return h.openWatches() == 3 }, "C-1's watch not closed")
	testenv.Eventually(t, 5*time.Second, func() bool {
		code, _ := post(t, rep.url+"/v1/watches", adminToken, body("glo-in", "jpglo", "C-5"))
		return code == 202
	}, "no room after a watch closed")
	if code, _ := post(t, rep.url+"/v1/watches", adminToken, body("glo-in", "jpglo", "C-6")); code != 429 {
		t.Errorf("the cap is full again, got %d", code)
	}
}

// TestLegacySubjectWatchRunsItsCourse: a watch stored before the account
// was part of its subject (payhook.reconcile.{provider}.{watch id}) is
// still polled and saved on that subject, and closed by its event.
func TestLegacySubjectWatchRunsItsCourse(t *testing.T) {
	h := newHarness(t, harnessOpts{schedule: "[200ms, 200ms, 10s]"})
	rep := h.start()
	w := &Watch{ID: WatchID("jpglo", "glo-in", events.KindPayin, "L-1"), Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin,
		MerchantOrderID: "L-1", Source: "api", OpenedAt: time.Now(), DueAt: time.Now()}
	w.subject = legacyWatchSubject("jpglo", w.ID)
	if err := putWatch(context.Background(), h.js, w, 0); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return h.jpglo.count("L-1") >= 2 }, "legacy watch not polled twice (saved in between)")
	if n := h.openWatches(); n != 1 {
		t.Fatalf("open watches = %d, want 1 (saved on its own subject, not copied)", n)
	}
	if code, _ := post(t, h.ingress+"/v1/callbacks/jpglo/glo-in/payin", "", jpgloCallback("L-1"), "Content-Type", "application/json"); code != 200 {
		t.Fatalf("callback: %d", code)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return h.openWatches() == 0 }, "legacy watch not closed by its event")
	settle(t, rep.r.m.closed.WithLabelValues("jpglo", "callback"), 1, "closed{callback}")
}

// openRetrying opens a watch as an announcing client does: an answer of
// "unavailable" (the open-watch count timed out on a loaded NATS server) is
// retried, up to ten times; this test is about fairness, not availability.
func openRetrying(ctx context.Context, r *Reconciler, req Request, opened time.Time) error {
	var err error
	for range 10 {
		if _, _, err = r.Open(ctx, req, opened, "api"); !errors.Is(err, natsbus.ErrUnavailable) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}
