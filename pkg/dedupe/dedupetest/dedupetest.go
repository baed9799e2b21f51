// Package dedupetest is the conformance suite every dedupe.Store and
// dedupe.References passes: memdedupe, redisdedupe (against a real
// redis-server) and kvdedupe (against a real embedded NATS server).
package dedupetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
)

// Config is what a Factory must honor when it builds a store.
type Config struct {
	// Window is the dedupe window (event ids and order state).
	Window time.Duration
	// ReferenceTTL is how long a reference claim lives.
	ReferenceTTL time.Duration
}

// Subject is one store under test, on its own backing server, with the
// means to take that server away.
type Subject struct {
	Store dedupe.Store
	Refs  dedupe.References
	// Stop makes the backing server unreachable (a crash, not a shutdown).
	Stop func()
	// Start brings it back on the same address.
	Start func()
	// Durable reports whether what was recorded survives Stop and Start
	// (NATS with file storage: yes; Redis without persistence: no).
	Durable bool
}

// Factory builds a fresh, empty Subject for one test; it registers its own cleanup.
type Factory func(t *testing.T, cfg Config) Subject

// Bound is the most any call may take when the store is down (the stores'
// default timeout is 500 ms): the callback that waits on it has a provider
// waiting too.
const Bound = time.Second

// slack is added to Bound when measuring: on a loaded test machine (2 cores
// shared by several test runs, load average > 10) a 500 ms timer was seen
// firing up to 600 ms late. A hang — a default 5 s dial timeout, a retry
// loop — still fails.
const slack = time.Second

// Run runs the whole suite against the stores newSubject builds.
func Run(t *testing.T, newSubject Factory) {
	long := Config{Window: time.Hour, ReferenceTTL: time.Hour}
	tests := []struct {
		name string
		cfg  Config
		fn   func(*testing.T, Subject)
	}{
		{"unknown event and order", long, testUnknown},
		{"record then check", long, testRecordThenCheck},
		{"orders are independent", long, testIndependent},
		{"verbatim ids round trip", long, testVerbatimID},
		{"terminal not overwritten by pending", long, testTerminalKeepsOverPending},
		{"conflicting terminal keeps first", long, testConflictKeepsFirst},
		{"window expires everything", Config{Window: time.Second, ReferenceTTL: time.Hour}, testExpiry},
		{"concurrent records on one order", long, testRace},
		{"record reports the prior state", long, testRecordPrior},
		{"racing contradictions: exactly one record sees the other", long, testRacedPrior},
		{"reference claim reuse release", long, testReferences},
		{"reference claim expires", Config{Window: time.Hour, ReferenceTTL: time.Second}, testReferenceExpiry},
		{"invalid arguments", long, testInvalid},
		{"cancelled context", long, testCancelled},
		{"outage is bounded and recovers", long, testOutage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newSubject(t, tc.cfg))
		})
	}
}

// Event returns a valid event for order key in status st.
func Event(o dedupe.Order, st events.Status) *events.Event {
	return &events.Event{
		Provider: o.Provider, Account: o.Account, Kind: o.Kind, Status: st,
		MerchantOrderID: o.Key, Amount: events.MustMoney("100.00", "INR"), Origin: events.OriginCallback,
	}
}

// ID is Event(o, st).ID().
func ID(o dedupe.Order, st events.Status) string { return Event(o, st).ID() }

// Order returns a distinct order key for name.
func Order(name string) dedupe.Order {
	return dedupe.Order{Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Key: name}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// MustCheck calls Check and fails the test on error.
func MustCheck(tb testing.TB, s dedupe.Store, id string, o dedupe.Order) dedupe.Check {
	tb.Helper()
	c, err := s.Check(context.Background(), id, o)
	if err != nil {
		tb.Fatalf("Check(%s, %s): %v", id, o, err)
	}
	return c
}

// MustRecordPrior calls RecordPrior and fails the test on error.
func MustRecordPrior(tb testing.TB, s dedupe.Store, id string, o dedupe.Order, st events.Status) dedupe.OrderState {
	tb.Helper()
	prior, err := s.RecordPrior(context.Background(), id, o, st)
	if err != nil {
		tb.Fatalf("RecordPrior(%s, %s, %s): %v", id, o, st, err)
	}
	return prior
}

// MustRecord calls Record and fails the test on error.
func MustRecord(tb testing.TB, s dedupe.Store, id string, o dedupe.Order, st events.Status) {
	tb.Helper()
	if err := s.Record(context.Background(), id, o, st); err != nil {
		tb.Fatalf("Record(%s, %s, %s): %v", id, o, st, err)
	}
}

func wantCheck(t *testing.T, s dedupe.Store, id string, o dedupe.Order, want dedupe.Check) {
	t.Helper()
	if got := MustCheck(t, s, id, o); got != want {
		t.Fatalf("Check(%s, %s) = %+v, want %+v", id, o, got, want)
	}
}

func testUnknown(t *testing.T, s Subject) {
	o := Order("unknown")
	wantCheck(t, s.Store, ID(o, events.StatusSucceeded), o, dedupe.Check{})
	if v := dedupe.Decide(dedupe.Check{}, events.StatusSucceeded); v != dedupe.New {
		t.Fatalf("Decide on nothing = %s, want new", v)
	}
	if err := s.Store.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// testRecordThenCheck walks one order through pending and succeeded, and
// through the verdicts a provider retry and a poll would get.
func testRecordThenCheck(t *testing.T, s Subject) {
	o := Order("walk")
	pend, succ := ID(o, events.StatusPending), ID(o, events.StatusSucceeded)

	MustRecord(t, s.Store, pend, o, events.StatusPending)
	wantCheck(t, s.Store, pend, o, dedupe.Check{Published: true, Order: dedupe.OrderState{Status: events.StatusPending, EventID: pend}})
	c := MustCheck(t, s.Store, succ, o)
	if c.Published || c.Order.EventID != pend {
		t.Fatalf("succeeded before its record: %+v", c)
	}
	if v := dedupe.Decide(c, events.StatusSucceeded); v != dedupe.New {
		t.Fatalf("pending then succeeded = %s, want new", v)
	}

	MustRecord(t, s.Store, succ, o, events.StatusSucceeded)
	final := dedupe.OrderState{Status: events.StatusSucceeded, EventID: succ}
	wantCheck(t, s.Store, succ, o, dedupe.Check{Published: true, Order: final})
	// The provider retries the success callback; the reconciler polls and finds it.
	if v := dedupe.Decide(MustCheck(t, s.Store, succ, o), events.StatusSucceeded); v != dedupe.Duplicate {
		t.Fatalf("retry of succeeded = %s, want duplicate", v)
	}
	// Recording the same event again changes nothing.
	MustRecord(t, s.Store, succ, o, events.StatusSucceeded)
	wantCheck(t, s.Store, succ, o, dedupe.Check{Published: true, Order: final})
	wantCheck(t, s.Store, pend, o, dedupe.Check{Published: true, Order: final})
}

func testIndependent(t *testing.T, s Subject) {
	base := Order("same")
	others := map[string]dedupe.Order{
		"provider": {Provider: "mrnpay", Account: base.Account, Kind: base.Kind, Key: base.Key},
		"account":  {Provider: base.Provider, Account: "glo-br", Kind: base.Kind, Key: base.Key},
		"kind":     {Provider: base.Provider, Account: base.Account, Kind: events.KindPayout, Key: base.Key},
		"key":      {Provider: base.Provider, Account: base.Account, Kind: base.Kind, Key: base.Key + "x"},
		"split":    {Provider: base.Provider, Account: base.Account + base.Provider, Kind: base.Kind, Key: base.Key},
	}
	MustRecord(t, s.Store, ID(base, events.StatusSucceeded), base, events.StatusSucceeded)
	for name, o := range others {
		t.Run(name, func(t *testing.T) {
			wantCheck(t, s.Store, ID(o, events.StatusSucceeded), o, dedupe.Check{})
			// The same id asked about another order is not published there.
			wantCheck(t, s.Store, ID(base, events.StatusSucceeded), o, dedupe.Check{})
		})
	}
}

func testVerbatimID(t *testing.T, s Subject) {
	o := Order("verbatim")
	for _, id := range []string{"legacy-id-1", "evt_NOTHEX", "evt_0123456789abcdef0123456789abcdeF"} {
		MustRecord(t, s.Store, id, o, events.StatusPending)
		wantCheck(t, s.Store, id, o, dedupe.Check{Published: true, Order: dedupe.OrderState{Status: events.StatusPending, EventID: id}})
	}
}

// testTerminalKeepsOverPending: callbacks out of order — the success arrives
// before the pending; the pending must not undo it.
func testTerminalKeepsOverPending(t *testing.T, s Subject) {
	for _, term := range []events.Status{events.StatusSucceeded, events.StatusFailed} {
		t.Run(string(term), func(t *testing.T) {
			o := Order("late-pending-" + string(term))
			pend, fin := ID(o, events.StatusPending), ID(o, term)
			MustRecord(t, s.Store, fin, o, term)
			c := MustCheck(t, s.Store, pend, o)
			if v := dedupe.Decide(c, events.StatusPending); v != dedupe.Stale {
				t.Fatalf("pending after %s = %s (check %+v), want stale", term, v, c)
			}
			// Even if a caller records the pending anyway, the terminal state stays.
			MustRecord(t, s.Store, pend, o, events.StatusPending)
			wantCheck(t, s.Store, fin, o, dedupe.Check{Published: true, Order: dedupe.OrderState{Status: term, EventID: fin}})
		})
	}
}

func testConflictKeepsFirst(t *testing.T, s Subject) {
	for _, tc := range []struct{ first, second events.Status }{
		{events.StatusSucceeded, events.StatusFailed},
		{events.StatusFailed, events.StatusSucceeded},
	} {
		t.Run(string(tc.first)+" then "+string(tc.second), func(t *testing.T) {
			o := Order("conflict-" + string(tc.first))
			first, second := ID(o, tc.first), ID(o, tc.second)
			MustRecord(t, s.Store, first, o, tc.first)
			c := MustCheck(t, s.Store, second, o)
			if v := dedupe.Decide(c, tc.second); v != dedupe.Conflict {
				t.Fatalf("%s after %s = %s, want conflict", tc.second, tc.first, v)
			}
			// Ingress publishes the conflict, then records it.
			MustRecord(t, s.Store, second, o, tc.second)
			kept := dedupe.OrderState{Status: tc.first, EventID: first}
			wantCheck(t, s.Store, second, o, dedupe.Check{Published: true, Order: kept})
			// The provider retries the contradicting callback: a duplicate now.
			if v := dedupe.Decide(MustCheck(t, s.Store, second, o), tc.second); v != dedupe.Duplicate {
				t.Fatalf("retry of the conflicting callback = %s, want duplicate", v)
			}
			wantCheck(t, s.Store, first, o, dedupe.Check{Published: true, Order: kept})
		})
	}
}

func testExpiry(t *testing.T, s Subject) {
	o := Order("expires")
	id := ID(o, events.StatusSucceeded)
	MustRecord(t, s.Store, id, o, events.StatusSucceeded)
	wantCheck(t, s.Store, id, o, dedupe.Check{Published: true, Order: dedupe.OrderState{Status: events.StatusSucceeded, EventID: id}})
	start := time.Now()
	deadline := start.Add(10 * time.Second)
	for {
		c := MustCheck(t, s.Store, id, o)
		if c == (dedupe.Check{}) {
			break
		}
		if time.Since(start) < 900*time.Millisecond && !c.Published {
			t.Fatalf("forgot the event after %s, before the 1s window: %+v", time.Since(start), c)
		}
		if time.Now().After(deadline) {
			t.Fatalf("still remembered %s after a 1s window: %+v", time.Since(start), c)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if time.Since(start) < 900*time.Millisecond {
		t.Fatalf("expired after %s, before the 1s window", time.Since(start))
	}
}

// testRace: 50 goroutines record the same order at once, as replicas racing
// on a success callback, a failure callback and a late pending would. The
// final state is one terminal status, consistent with its own event id, and
// stays put.
func testRace(t *testing.T, s Subject) {
	o := Order("race")
	ids := map[events.Status]string{}
	for _, st := range []events.Status{events.StatusPending, events.StatusSucceeded, events.StatusFailed} {
		ids[st] = ID(o, st)
	}
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		st := []events.Status{events.StatusSucceeded, events.StatusFailed, events.StatusPending}[i%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Store.Record(ctx, ids[st], o, st); err != nil {
				errs <- fmt.Errorf("%s: %w", st, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Record: %v", err)
	}
	c := MustCheck(t, s.Store, ids[events.StatusSucceeded], o)
	if !c.Order.Status.Terminal() || c.Order.EventID != ids[c.Order.Status] {
		t.Fatalf("final state %+v is not a terminal status with its own id", c.Order)
	}
	for st, id := range ids {
		if !MustCheck(t, s.Store, id, o).Published {
			t.Errorf("%s event not marked published", st)
		}
	}
	// Whoever comes later changes nothing.
	for st, id := range ids {
		MustRecord(t, s.Store, id, o, st)
	}
	if again := MustCheck(t, s.Store, ids[events.StatusSucceeded], o); again != c {
		t.Fatalf("state moved after the race: %+v then %+v", c, again)
	}
}

// testRecordPrior: RecordPrior reports the state it found, whether it
// replaced it or (terminal) kept it.
func testRecordPrior(t *testing.T, s Subject) {
	o := Order("prior")
	pend, succ, fail := ID(o, events.StatusPending), ID(o, events.StatusSucceeded), ID(o, events.StatusFailed)
	pending := dedupe.OrderState{Status: events.StatusPending, EventID: pend}
	succeeded := dedupe.OrderState{Status: events.StatusSucceeded, EventID: succ}
	steps := []struct {
		name   string
		id     string
		status events.Status
		prior  dedupe.OrderState
		// verdict is Decide(Check{Order: prior}, status): what the caller
		// learns about whoever recorded before it.
		verdict dedupe.Verdict
	}{
		{"first pending finds nothing", pend, events.StatusPending, dedupe.OrderState{}, dedupe.New},
		{"success finds the pending", succ, events.StatusSucceeded, pending, dedupe.New},
		{"failure finds the success it cannot replace", fail, events.StatusFailed, succeeded, dedupe.Conflict},
		{"late pending finds the success", pend, events.StatusPending, succeeded, dedupe.Stale},
		{"success again finds itself", succ, events.StatusSucceeded, succeeded, dedupe.Duplicate},
	}
	for _, st := range steps {
		prior := MustRecordPrior(t, s.Store, st.id, o, st.status)
		if prior != st.prior {
			t.Fatalf("%s: RecordPrior found %+v, want %+v", st.name, prior, st.prior)
		}
		if v := dedupe.Decide(dedupe.Check{Order: prior}, st.status); v != st.verdict {
			t.Fatalf("%s: Decide on the prior = %s, want %s", st.name, v, st.verdict)
		}
	}
	wantCheck(t, s.Store, fail, o, dedupe.Check{Published: true, Order: succeeded})
}

// testRacedPrior: two replicas record contradicting statuses of one order
// at the same moment (both had seen New at Check). Exactly one of the two
// Records finds the other's status — the one the caller turns into a
// conflict or counts as stale — and the state that stands is the other's.
// Twenty orders, so that both interleavings occur.
func testRacedPrior(t *testing.T, s Subject) {
	pairs := []struct{ a, b events.Status }{
		{events.StatusSucceeded, events.StatusFailed},
		{events.StatusPending, events.StatusSucceeded},
	}
	for _, pair := range pairs {
		for i := range 20 {
			o := Order(fmt.Sprintf("raced-%s-%s-%d", pair.a, pair.b, i))
			sts := [2]events.Status{pair.a, pair.b}
			var priors [2]dedupe.OrderState
			var errs [2]error
			var wg sync.WaitGroup
			start := make(chan struct{})
			for j, st := range sts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					priors[j], errs[j] = s.Store.RecordPrior(context.Background(), ID(o, st), o, st)
				}()
			}
			close(start)
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("%s: RecordPrior: %v, %v", o.Key, errs[0], errs[1])
			}
			first, second := -1, -1 // index of the Record that found nothing / the other
			for j := range sts {
				switch priors[j] {
				case dedupe.OrderState{}:
					first = j
				case dedupe.OrderState{Status: sts[1-j], EventID: ID(o, sts[1-j])}:
					second = j
				default:
					t.Fatalf("%s: %s found %+v", o.Key, sts[j], priors[j])
				}
			}
			if first < 0 || second < 0 {
				t.Fatalf("%s: priors %+v: want exactly one Record to find the other", o.Key, priors)
			}
			v := dedupe.Decide(dedupe.Check{Order: priors[second]}, sts[second])
			stands := sts[first]
			switch {
			case sts[second].Terminal() && priors[second].Status.Terminal():
				if v != dedupe.Conflict {
					t.Fatalf("%s: %s after %s decided %s, want conflict", o.Key, sts[second], sts[first], v)
				}
			case !sts[second].Terminal():
				if v != dedupe.Stale {
					t.Fatalf("%s: pending after %s decided %s, want stale", o.Key, sts[first], v)
				}
			default: // a terminal status after a pending replaces it
				stands = sts[second]
				if v != dedupe.New {
					t.Fatalf("%s: %s after pending decided %s, want new", o.Key, sts[second], v)
				}
			}
			c := MustCheck(t, s.Store, ID(o, sts[0]), o)
			if want := (dedupe.OrderState{Status: stands, EventID: ID(o, stands)}); c.Order != want {
				t.Fatalf("%s: state %+v, want %+v", o.Key, c.Order, want)
			}
		}
	}
}

func claim(t *testing.T, r dedupe.References, account, ref, order string) (string, bool) {
	t.Helper()
	owner, ok, err := r.ClaimReference(ctxT(t), account, ref, order)
	if err != nil {
		t.Fatalf("ClaimReference(%s, %s, %s): %v", account, ref, order, err)
	}
	return owner, ok
}

func testReferences(t *testing.T, s Subject) {
	r, ctx := s.Refs, ctxT(t)
	steps := []struct {
		name, account, ref, order string
		release                   bool
		wantOwner                 string
		wantClaimed               bool
	}{
		{name: "first claim", account: "fan-in", ref: "412345678901", order: "A", wantOwner: "A", wantClaimed: true},
		{name: "same order again is idempotent", account: "fan-in", ref: "412345678901", order: "A", wantOwner: "A", wantClaimed: true},
		{name: "other order refused", account: "fan-in", ref: "412345678901", order: "B", wantOwner: "A", wantClaimed: false},
		{name: "other account is separate", account: "fan-in2", ref: "412345678901", order: "B", wantOwner: "B", wantClaimed: true},
		{name: "other reference is separate", account: "fan-in", ref: "412345678902", order: "B", wantOwner: "B", wantClaimed: true},
		{name: "release by non-owner does nothing", account: "fan-in", ref: "412345678901", order: "B", release: true},
		{name: "still held by A", account: "fan-in", ref: "412345678901", order: "B", wantOwner: "A", wantClaimed: false},
		{name: "release by owner", account: "fan-in", ref: "412345678901", order: "A", release: true},
		{name: "release twice is fine", account: "fan-in", ref: "412345678901", order: "A", release: true},
		{name: "free for B now", account: "fan-in", ref: "412345678901", order: "B", wantOwner: "B", wantClaimed: true},
		{name: "and refused to A", account: "fan-in", ref: "412345678901", order: "A", wantOwner: "B", wantClaimed: false},
	}
	for _, st := range steps {
		if st.release {
			if err := r.ReleaseReference(ctx, st.account, st.ref, st.order); err != nil {
				t.Fatalf("%s: ReleaseReference: %v", st.name, err)
			}
			continue
		}
		owner, ok := claim(t, r, st.account, st.ref, st.order)
		if owner != st.wantOwner || ok != st.wantClaimed {
			t.Fatalf("%s: claim = (%q, %v), want (%q, %v)", st.name, owner, ok, st.wantOwner, st.wantClaimed)
		}
	}

	// Ten orders race for one reference: exactly one wins, all agree on it.
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners, owners := 0, map[string]bool{}
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner, ok, err := r.ClaimReference(ctx, "fan-in", "raced", fmt.Sprintf("order-%d", i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("racing claim: %v", err)
				return
			}
			owners[owner] = true
			if ok {
				winners++
			}
		}()
	}
	wg.Wait()
	if winners != 1 || len(owners) != 1 {
		t.Fatalf("racing claims: %d winners, owners %v; want exactly one", winners, owners)
	}
}

func testReferenceExpiry(t *testing.T, s Subject) {
	if _, ok := claim(t, s.Refs, "fan-in", "utr-1", "A"); !ok {
		t.Fatal("first claim refused")
	}
	if _, ok := claim(t, s.Refs, "fan-in", "utr-1", "B"); ok {
		t.Fatal("second order got a held reference")
	}
	start := time.Now()
	deadline := start.Add(10 * time.Second)
	for {
		owner, ok := claim(t, s.Refs, "fan-in", "utr-1", "B")
		if ok {
			if time.Since(start) < 900*time.Millisecond {
				t.Fatalf("claim expired after %s, before its 1s TTL", time.Since(start))
			}
			return
		}
		if owner != "A" {
			t.Fatalf("owner %q, want A", owner)
		}
		if time.Now().After(deadline) {
			t.Fatal("claim still held 10s after a 1s TTL")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testInvalid(t *testing.T, s Subject) {
	ctx, good := ctxT(t), Order("valid")
	id := ID(good, events.StatusPending)
	long := string(make([]byte, 300))
	tests := []struct {
		name string
		call func() error
	}{
		{"empty id", func() error { _, err := s.Store.Check(ctx, "", good); return err }},
		{"long id", func() error { _, err := s.Store.Check(ctx, long, good); return err }},
		{"empty key", func() error {
			_, err := s.Store.Check(ctx, id, dedupe.Order{Provider: "p", Account: "a", Kind: events.KindPayin})
			return err
		}},
		{"bad kind", func() error {
			_, err := s.Store.Check(ctx, id, dedupe.Order{Provider: "p", Account: "a", Kind: "refund", Key: "k"})
			return err
		}},
		{"conflict is not a status", func() error { return s.Store.Record(ctx, id, good, events.StatusConflict) }},
		{"conflict is not a status (prior)", func() error {
			_, err := s.Store.RecordPrior(ctx, id, good, events.StatusConflict)
			return err
		}},
		{"empty status", func() error { return s.Store.Record(ctx, id, good, "") }},
		{"empty reference", func() error { _, _, err := s.Refs.ClaimReference(ctx, "a", "", "o"); return err }},
		{"empty order", func() error { return s.Refs.ReleaseReference(ctx, "a", "r", "") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, dedupe.ErrInvalid) || errors.Is(err, dedupe.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrInvalid only", err)
			}
		})
	}
	wantCheck(t, s.Store, id, good, dedupe.Check{})
}

func testCancelled(t *testing.T, s Subject) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := Order("cancelled")
	_, err := s.Store.Check(ctx, ID(o, events.StatusPending), o)
	if !errors.Is(err, dedupe.ErrUnavailable) {
		t.Fatalf("Check with a cancelled context: %v, want ErrUnavailable", err)
	}
	if err := s.Store.Record(ctx, ID(o, events.StatusPending), o, events.StatusPending); !errors.Is(err, dedupe.ErrUnavailable) {
		t.Fatalf("Record with a cancelled context: %v, want ErrUnavailable", err)
	}
	if _, err := s.Store.RecordPrior(ctx, ID(o, events.StatusPending), o, events.StatusPending); !errors.Is(err, dedupe.ErrUnavailable) {
		t.Fatalf("RecordPrior with a cancelled context: %v, want ErrUnavailable", err)
	}
}

// testOutage: the store's server dies. Every call fails with ErrUnavailable
// within Bound even without a deadline of the caller's, and works again once
// the server is back; what it remembers then depends on durability.
func testOutage(t *testing.T, s Subject) {
	o := Order("outage")
	id := ID(o, events.StatusSucceeded)
	MustRecord(t, s.Store, id, o, events.StatusSucceeded)
	if _, ok := claim(t, s.Refs, "fan-in", "utr-outage", "A"); !ok {
		t.Fatal("claim refused")
	}

	s.Stop()
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"check", func(ctx context.Context) error { _, err := s.Store.Check(ctx, id, o); return err }},
		{"record", func(ctx context.Context) error { return s.Store.Record(ctx, id, o, events.StatusSucceeded) }},
		{"record prior", func(ctx context.Context) error {
			_, err := s.Store.RecordPrior(ctx, id, o, events.StatusSucceeded)
			return err
		}},
		{"ping", func(ctx context.Context) error { return s.Store.Ping(ctx) }},
		{"claim", func(ctx context.Context) error {
			_, _, err := s.Refs.ClaimReference(ctx, "fan-in", "utr-outage", "B")
			return err
		}},
		{"release", func(ctx context.Context) error { return s.Refs.ReleaseReference(ctx, "fan-in", "utr-outage", "A") }},
	}
	for round := range 2 { // the second round hits a client that already saw the failure
		for _, c := range calls {
			start := time.Now()
			err := c.call(context.Background())
			took := time.Since(start)
			if !errors.Is(err, dedupe.ErrUnavailable) {
				t.Errorf("round %d: %s with the server down: %v, want ErrUnavailable", round, c.name, err)
			}
			if took > Bound+slack {
				t.Errorf("round %d: %s took %s with the server down, want ≤ %s (+ %s slack)", round, c.name, took, Bound, slack)
			}
		}
	}

	s.Start()
	var c dedupe.Check
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		c, err = s.Store.Check(context.Background(), id, o)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover 10s after the server came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	owner, _ := claim(t, s.Refs, "fan-in", "utr-outage", "B")
	if s.Durable {
		if want := (dedupe.Check{Published: true, Order: dedupe.OrderState{Status: events.StatusSucceeded, EventID: id}}); c != want {
			t.Fatalf("after restart of a durable store: %+v, want %+v", c, want)
		}
		if owner != "A" {
			t.Fatalf("after restart of a durable store the reference belongs to %q, want A", owner)
		}
	} else {
		// Documented: a store without persistence forgets; JetStream's
		// Nats-Msg-Id window is then the only guard against a duplicate.
		if c != (dedupe.Check{}) {
			t.Fatalf("after restart without persistence: %+v, want nothing remembered", c)
		}
		if owner != "B" {
			t.Fatalf("after restart without persistence the reference belongs to %q, want B", owner)
		}
	}
	MustRecord(t, s.Store, id, o, events.StatusSucceeded)
	if !MustCheck(t, s.Store, id, o).Published {
		t.Fatal("record after recovery not remembered")
	}
}
