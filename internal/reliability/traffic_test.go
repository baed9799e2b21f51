package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/e2e"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/fantian"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
	"github.com/payhook/payhook/pkg/providersim"
)

// Mix is the fault mix of the steady traffic: independent probabilities
// per order (Drop and Corrupt exclusive: a dropped callback has no bytes to corrupt).
type Mix struct {
	Duplicate float64 // the final callback sent twice more (same bytes)
	Drop      float64 // the callbacks never sent; the reconciler must find the order
	Corrupt   float64 // every attempt carries a bad signature / ciphertext
}

// defaultMix is what every scenario runs unless it says otherwise.
var defaultMix = Mix{Duplicate: 0.1, Drop: 0.1, Corrupt: 0.05}

// slot is one kind of order the traffic cycles through: every provider,
// every kind it supports (fantian sends no callbacks: its orders must make
// no event whatever happens).
type slot struct {
	provider, account string
	kind              events.Kind
}

var slots = []slot{
	{jpglo.Name, "glo-in", events.KindPayin},
	{mpurse.Name, "mpurse-in", events.KindPayin},
	{cashypro.Name, "cashy-id", events.KindPayin},
	{mrnpay.Name, "mrn-cn", events.KindPayin},
	{fantian.Name, "fantian-in", events.KindPayin},
	{jpglo.Name, "glo-in", events.KindPayin},
	{mpurse.Name, "mpurse-in", events.KindPayin},
	{cashypro.Name, "cashy-id", events.KindPayin},
	{mrnpay.Name, "mrn-cn", events.KindPayout},
	{jpglo.Name, "glo-in", events.KindAppeal},
}

// Every registered provider with its own simulated side (stripe) takes a
// slot of each kind it supports, on its test account (e2e.AccountOf).
func init() {
	for _, p := range newerProviders() {
		for _, k := range providersim.Kinds(p) {
			slots = append(slots, slot{p, e2e.AccountOf(p), k})
		}
	}
}

// traffic creates orders through the books at a fixed rate and announces
// every one to the reconciler, as a merchant's order service would. An
// announcement that fails (NATS down) is retried until it is stored, and
// only then is the order marked watched: the books never expect a recovery
// the reconciler was not asked for, nor miss one it was.
type traffic struct {
	t   *testing.T
	c   *e2e.Cluster
	b   *e2e.Books
	mix Mix

	mu  sync.Mutex
	rnd *rand.Rand
	n   int

	cancel  context.CancelFunc
	loop    sync.WaitGroup
	watches sync.WaitGroup
	stopped atomic.Bool

	watchRetries atomic.Int64
	createErrors atomic.Int64

	// intermediate: cashypro orders send a PAYING callback before their
	// final one, so those orders have two events whose order matters.
	intermediate bool
}

// startTraffic starts creating rate orders per second on c with mix; Stop
// ends it. The seed is logged so a failure can be replayed.
func startTraffic(t *testing.T, c *e2e.Cluster, rate float64, mix Mix, opts ...func(*traffic)) *traffic {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("traffic: %.0f orders/s, mix %+v, seed %d", rate, mix, seed)
	tr := &traffic{t: t, c: c, b: c.NewBooks(), mix: mix, rnd: rand.New(rand.NewPCG(seed, seed>>7))}
	for _, o := range opts {
		o(tr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr.cancel = cancel
	tr.loop.Add(1)
	go tr.run(ctx, time.Duration(float64(time.Second)/rate))
	t.Cleanup(tr.Stop)
	return tr
}

func (tr *traffic) run(ctx context.Context, every time.Duration) {
	defer tr.loop.Done()
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		spec := tr.next()
		o, err := tr.b.Create(ctx, spec)
		if err != nil {
			if ctx.Err() == nil {
				tr.createErrors.Add(1)
			}
			continue
		}
		tr.watches.Add(1)
		go tr.announce(o)
	}
}

// announce publishes the order's watch until JetStream stores it (90 s at most).
func (tr *traffic) announce(o providersim.Order) {
	defer tr.watches.Done()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := tr.b.Watch(ctx, o)
		cancel()
		if err == nil {
			return
		}
		tr.watchRetries.Add(1)
		if time.Now().After(deadline) {
			tr.t.Errorf("traffic: watch of %s never stored: %v", o.ID, err)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// next draws the next order: slots in turn, outcome 80% succeeded, 10%
// failed, 10% still pending (appeals are decided), faults from the mix.
func (tr *traffic) next() providersim.OrderSpec {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := slots[tr.n%len(slots)]
	tr.n++
	spec := providersim.OrderSpec{Provider: s.provider, Account: s.account, Kind: s.kind, Outcome: providersim.Succeeded,
		Intermediate: tr.intermediate && s.provider == cashypro.Name}
	switch x := tr.rnd.Float64(); {
	case x < 0.1:
		spec.Outcome = providersim.Failed
	case x < 0.2 && s.kind != events.KindAppeal:
		spec.Outcome = providersim.Pending
	}
	if tr.rnd.Float64() < tr.mix.Duplicate {
		spec.Faults.Duplicate = 1
	}
	switch x := tr.rnd.Float64(); {
	case x < tr.mix.Drop:
		spec.Faults.DropCallback = true
	case x < tr.mix.Drop+tr.mix.Corrupt:
		spec.Faults.CorruptSignature = true
	}
	return spec
}

// Stop ends the traffic and waits until every announcement is stored.
func (tr *traffic) Stop() {
	if tr.stopped.Swap(true) {
		return
	}
	tr.cancel()
	tr.loop.Wait()
	tr.watches.Wait()
}

// tally is what a scenario reports, from the simulator's side (every
// callback attempt of the books' orders) and the subscriber's.
type tally struct {
	Orders, Expected       int
	Attempts, Acked        int
	Status503, ConnErrors  int
	Other5xx, Refused4xx   int
	Deliveries, Redelivery int
}

func (tl tally) String() string {
	return fmt.Sprintf("orders %d, events %d, callback attempts %d (503: %d, connection errors: %d, 4xx: %d), deliveries %d (redeliveries %d)",
		tl.Orders, tl.Expected, tl.Attempts, tl.Status503, tl.ConnErrors, tl.Refused4xx, tl.Deliveries, tl.Redelivery)
}

// count adds up the books' callback attempts and the subscriber's deliveries.
func count(c *e2e.Cluster, b *e2e.Books, r e2e.Report) tally {
	tl := tally{Expected: r.Expected}
	for _, o := range b.Orders() {
		tl.Orders++
		for _, d := range o.Deliveries {
			for _, a := range d.Attempts {
				tl.Attempts++
				switch {
				case a.Acked:
					tl.Acked++
				case a.HTTPStatus == 0:
					tl.ConnErrors++
				case a.HTTPStatus == http.StatusServiceUnavailable:
					tl.Status503++
				case a.HTTPStatus >= 500:
					tl.Other5xx++
				case a.HTTPStatus >= 400:
					tl.Refused4xx++
				}
			}
		}
	}
	st := c.Subscriber("").Stats()
	tl.Deliveries, tl.Redelivery = st.Accepted, st.Redeliveries
	return tl
}

// waitLanded waits until every callback of the books' orders that carries
// good bytes has been acknowledged — whatever refusals it met on the way
// (503, connection refused, a drain) — and fails t naming those that did
// not, or that the provider gave up on. Corrupt callbacks are never
// acknowledged (Books checks that).
func waitLanded(t *testing.T, b *e2e.Books, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var pending, gaveUp []string
		for _, o := range b.Orders() {
			for _, d := range o.Deliveries {
				if d.Corrupt || d.Acked {
					continue
				}
				desc := fmt.Sprintf("%s delivery %d (%s, %d attempts)", o.ID, d.Seq, d.Cause, len(d.Attempts))
				if d.GaveUp {
					gaveUp = append(gaveUp, desc)
				} else {
					pending = append(pending, desc)
				}
			}
		}
		if len(gaveUp) > 0 {
			t.Fatalf("providers gave up on %d good callbacks: %s", len(gaveUp), strings.Join(gaveUp, "; "))
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d good callbacks still not acknowledged: %s", timeout, len(pending), strings.Join(first(pending, 20), "; "))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
	}
	return s
}

// attemptsBetween counts the books' callback attempts made in [from, to)
// by HTTP status (0 = connection error).
func attemptsBetween(b *e2e.Books, from, to time.Time) map[int]int {
	out := map[int]int{}
	for _, o := range b.Orders() {
		for _, d := range o.Deliveries {
			for _, a := range d.Attempts {
				if !a.At.Before(from) && a.At.Before(to) {
					out[a.HTTPStatus]++
				}
			}
		}
	}
	return out
}

// eventually polls cond every 100 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
