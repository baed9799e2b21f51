package providersim

import (
	"context"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
)

func TestScheduleTotals(t *testing.T) {
	cases := []struct {
		name    string
		s       Schedule
		retries int
		total   time.Duration
	}{
		{"mpurse 3×2min + 2×1h", ScheduleFor("mpurse"), 5, 126 * time.Minute},
		{"cashypro 1..512 min", ScheduleFor("cashypro"), 10, 1023 * time.Minute},
		{"mrnpay (assumed)", ScheduleFor("mrnpay"), 15, 24*time.Hour + 4*time.Minute},
		{"jpglo (assumed)", ScheduleFor("jpglo"), 7, 9*time.Hour + 44*time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(c.s) != c.retries || c.s.Total() != c.total {
				t.Fatalf("%d retries over %v, want %d over %v", len(c.s), c.s.Total(), c.retries, c.total)
			}
		})
	}
	if ScheduleFor("fantian") != nil {
		t.Fatal("fantian sends no callbacks, so has no schedule")
	}
}

// TestRetriesFollowSchedule: a callback never acknowledged is retried
// exactly as often as the provider's schedule says, with the same bytes,
// then given up; one acknowledged on the third attempt stops there.
func TestRetriesFollowSchedule(t *testing.T) {
	specs := []OrderSpec{
		{Provider: "jpglo", Account: "glo-in"},
		{Provider: "mrnpay", Account: "mrn-cn"},
		{Provider: "mpurse", Account: "mp-in"},
		{Provider: "cashypro", Account: "cashy-id"},
	}
	for _, spec := range specs {
		sched := ScheduleFor(spec.Provider)
		t.Run(spec.Provider+" gives up", func(t *testing.T) {
			in := newIngress(t, allAccounts...)
			in.set(func(in *fakeIngress) { in.failNext = 1 << 30 })
			sim, _, _ := newSim(t, in, Config{TimeScale: 1e-7})
			o, err := sim.CreateOrder(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			got := settled(t, sim, o.ID, 1)
			d := got.Deliveries[0]
			if !d.GaveUp || d.Acked || len(d.Attempts) != len(sched)+1 {
				t.Fatalf("gave up %v, acked %v, %d attempts; want %d", d.GaveUp, d.Acked, len(d.Attempts), len(sched)+1)
			}
			for i, a := range d.Attempts {
				if a.N != i+1 || a.HTTPStatus != 503 || a.Acked {
					t.Errorf("attempt %d: %+v", i, a)
				}
				if i > 0 && a.At.Before(d.Attempts[i-1].At) {
					t.Errorf("attempt %d before attempt %d", i+1, i)
				}
			}
			recs := in.received()
			if len(recs) != len(sched)+1 {
				t.Fatalf("ingress got %d, want %d", len(recs), len(sched)+1)
			}
			for i, r := range recs {
				if r.Err != nil || string(r.Body) != string(recs[0].Body) {
					t.Errorf("retry %d: not the same verified bytes (%v)", i, r.Err)
				}
			}
			st := sim.Stats()[spec.Provider]
			if st.CallbacksSent != len(sched)+1 || st.Retried != len(sched) || st.GaveUp != 1 || st.Acked != 0 || st.Rejected != len(sched)+1 {
				t.Errorf("stats %+v", st)
			}
		})
		t.Run(spec.Provider+" acked on third attempt", func(t *testing.T) {
			in := newIngress(t, allAccounts...)
			in.set(func(in *fakeIngress) { in.failNext = 2 })
			sim, _, _ := newSim(t, in, Config{TimeScale: 1e-7})
			o, err := sim.CreateOrder(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			got := settled(t, sim, o.ID, 1)
			d := got.Deliveries[0]
			if !d.Acked || d.GaveUp || len(d.Attempts) != 3 || !d.Attempts[2].Acked {
				t.Fatalf("delivery %+v", d)
			}
			st := sim.Stats()[spec.Provider]
			if st.Retried != 2 || st.Acked != 1 || st.GaveUp != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestTimeScale: with a real-ish scale the first retry waits its scaled delay.
func TestTimeScale(t *testing.T) {
	in := newIngress(t, allAccounts...)
	in.set(func(in *fakeIngress) { in.failNext = 1 })
	// mrnpay's first retry is after 15 s; ×0.002 = 30 ms.
	sim, _, _ := newSim(t, in, Config{TimeScale: 0.002})
	o, err := sim.CreateOrder(context.Background(), OrderSpec{Provider: "mrnpay", Account: "mrn-cn"})
	if err != nil {
		t.Fatal(err)
	}
	got := settled(t, sim, o.ID, 1)
	a := got.Deliveries[0].Attempts
	if len(a) != 2 {
		t.Fatalf("%d attempts", len(a))
	}
	if gap := a[1].At.Sub(a[0].At); gap < 30*time.Millisecond {
		t.Fatalf("retry after %v, want at least 30ms", gap)
	}
}

// TestCloseStopsRetries: Close ends a long retry schedule promptly.
func TestCloseStopsRetries(t *testing.T) {
	in := newIngress(t, allAccounts...)
	in.set(func(in *fakeIngress) { in.failNext = 1 << 30 })
	sim, _, _ := newSim(t, in, Config{TimeScale: 1})
	o, err := sim.CreateOrder(context.Background(), OrderSpec{Provider: "cashypro", Account: "cashy-id", Kind: events.KindPayin})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "first attempt", func() bool { g, _ := sim.Order(o.ID); return g.Attempts() == 1 })
	done := make(chan struct{})
	go func() { sim.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not stop the retry loop")
	}
	if g, _ := sim.Order(o.ID); g.Attempts() != 1 || g.Deliveries[0].GaveUp {
		t.Fatalf("after close: %+v", g.Deliveries)
	}
}
