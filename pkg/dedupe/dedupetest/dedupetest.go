// Package dedupetest is the conformance suite every dedupe.Store and
// dedupe.References passes: memdedupe, redisdedupe (against a real
// redis-server) and kvdedupe (against a real embedded NATS server).
package dedupetest

import (
	"context"
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

// Run runs the whole suite against the stores newSubject builds. The cases
// live by theme: orders.go (check, record, window), races.go (concurrent
// records and the prior state), references.go (reference claims) and
// failures.go (invalid arguments, cancellation, outages).
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
