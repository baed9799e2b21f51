package dedupetest

import (
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
)

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
