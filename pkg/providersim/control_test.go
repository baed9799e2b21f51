package providersim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestFaultMixValidate(t *testing.T) {
	cases := []struct {
		name string
		mix  FaultMix
		ok   bool
	}{
		{"zero", FaultMix{}, true},
		{"every probability at 1", FaultMix{Drop: 1, Duplicate: 1, Reorder: 1, Corrupt: 1, Delay: 1, QueryFails: 1, QueryTimeout: 1, DuplicateN: 3, MaxDelay: time.Second}, true},
		{"drop above 1", FaultMix{Drop: 1.5}, false},
		{"negative corrupt", FaultMix{Corrupt: -0.1}, false},
		{"NaN query fail", FaultMix{QueryFails: math.NaN()}, false},
		{"query timeout above 1", FaultMix{QueryTimeout: 2}, false},
		{"negative duplicate n", FaultMix{Duplicate: 1, DuplicateN: -1}, false},
		{"negative max delay", FaultMix{Delay: 1, MaxDelay: -time.Second}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.mix.Validate()
			if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrBadFaults)) {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", c.mix, err, c.ok)
			}
		})
	}
}

func TestFaultMixJSONRoundTrip(t *testing.T) {
	m := FaultMix{Drop: 0.1, Duplicate: 0.2, DuplicateN: 2, Reorder: 0.3, Corrupt: 0.4, Delay: 0.5, MaxDelay: 1500 * time.Millisecond, QueryFails: 0.6, QueryTimeout: 0.7}
	got, err := m.JSON().Mix()
	if err != nil || got != m {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, m)
	}
	if _, err := (FaultMixJSON{MaxDelay: "soon"}).Mix(); !errors.Is(err, ErrBadFaults) {
		t.Fatalf("bad max_delay: %v", err)
	}
	if s := m.String(); s != "drop=0.1 duplicate=0.2 duplicate-n=2 reorder=0.3 corrupt=0.4 delay=0.5 max-delay=1.5s query-fail=0.6 query-timeout=0.7" {
		t.Errorf("String() = %q", s)
	}
	if s := (FaultMix{}).String(); s != "none" {
		t.Errorf("zero String() = %q", s)
	}
}

// TestSetFaults: a changed mix applies to the orders created after it, and
// a bad one changes nothing.
func TestSetFaults(t *testing.T) {
	in := newIngress(t, allAccounts...)
	sim, _, _ := newSim(t, in, Config{})
	ctx := context.Background()
	create := func() Order {
		t.Helper()
		o, err := sim.CreateOrder(ctx, OrderSpec{Provider: "jpglo", Account: "glo-in"})
		if err != nil {
			t.Fatal(err)
		}
		return *o
	}
	if o := create(); o.Faults.any() {
		t.Fatalf("faults before any were set: %+v", o.Faults)
	}
	if err := sim.SetFaults(FaultMix{Drop: 1, QueryFails: 1}); err != nil {
		t.Fatal(err)
	}
	o := create()
	if !o.Faults.DropCallback || !o.Faults.QueryFails {
		t.Fatalf("faults after SetFaults(drop=1, query-fail=1): %+v", o.Faults)
	}
	if err := sim.SetFaults(FaultMix{Drop: 2}); !errors.Is(err, ErrBadFaults) {
		t.Fatalf("SetFaults(drop=2) = %v", err)
	}
	if got := sim.Faults(); got != (FaultMix{Drop: 1, QueryFails: 1}) {
		t.Fatalf("a refused mix changed the faults to %+v", got)
	}
	if err := sim.SetFaults(FaultMix{}); err != nil {
		t.Fatal(err)
	}
	if o := create(); o.Faults.any() {
		t.Fatalf("faults after they were cleared: %+v", o.Faults)
	}
	// The dropped order was withheld; the others were called back.
	eventually(t, "two callbacks", func() bool { return len(in.received()) == 2 })
	if st := sim.Stats()["jpglo"]; st.Dropped != 1 {
		t.Errorf("dropped = %d, want 1", st.Dropped)
	}
}

// TestFaultsHandler: GET shows the mix, POST replaces it (and so changes the
// faults of the next order), bad requests are 400 and change nothing.
func TestFaultsHandler(t *testing.T) {
	in := newIngress(t, allAccounts...)
	sim, _, _ := newSim(t, in, Config{Faults: FaultMix{Duplicate: 1}})
	srv := httptest.NewServer(sim.FaultsHandler())
	defer srv.Close()
	do := func(method, body string) (int, FaultMixJSON, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var j FaultMixJSON
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &j); err != nil {
				t.Fatalf("%s answer %q: %v", method, b, err)
			}
		}
		return resp.StatusCode, j, string(b)
	}
	if code, j, body := do(http.MethodGet, ""); code != http.StatusOK || j.Duplicate != 1 || j.Drop != 0 {
		t.Fatalf("GET: %d %s", code, body)
	}
	code, j, body := do(http.MethodPost, `{"corrupt": 1, "delay": 1, "max_delay": "1ms"}`)
	if code != http.StatusOK || j.Corrupt != 1 || j.Duplicate != 0 || j.MaxDelay != "1ms" {
		t.Fatalf("POST: %d %s (a POST replaces the whole mix)", code, body)
	}
	o, err := sim.CreateOrder(context.Background(), OrderSpec{Provider: "cashypro", Account: "cashy-id"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Faults.CorruptSignature || o.Faults.Duplicate != 0 || o.Faults.Delay <= 0 || o.Faults.Delay > time.Millisecond {
		t.Fatalf("order after POST has faults %+v", o.Faults)
	}
	want := sim.Faults()
	for _, c := range []struct{ name, body string }{
		{"not JSON", `drop=1`},
		{"unknown field", `{"query_fails": 1}`},
		{"probability above 1", `{"drop": 1.01}`},
		{"negative probability", `{"reorder": -1}`},
		{"bad duration", `{"delay": 1, "max_delay": "later"}`},
		{"negative duplicate_n", `{"duplicate": 1, "duplicate_n": -2}`},
		{"two objects", `{} {}`},
	} {
		if code, _, body := do(http.MethodPost, c.body); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", c.name, code, body)
		}
	}
	if got := sim.Faults(); got != want {
		t.Fatalf("refused POSTs changed the mix to %+v", got)
	}
	if code, _, _ := do(http.MethodDelete, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d, want 405", code)
	}
	if code, j, body := do(http.MethodPost, `{}`); code != http.StatusOK || j != (FaultMixJSON{}) {
		t.Fatalf("POST {}: %d %s, want every fault off", code, body)
	}
}
