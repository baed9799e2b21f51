package dedupetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
)

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
