package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
)

// TestGeneratedCallbacksVerify checks that every callback the generator
// makes passes its provider's own Parse and decodes to the order id the
// end-to-end subscriber looks for.
func TestGeneratedCallbacksVerify(t *testing.T) {
	parsers := registry.Inbound()
	accts := map[string]providers.Account{}
	for _, a := range Accounts() {
		accts[a.Provider] = a
	}
	g, err := NewGenerator(Accounts(), DefaultMix, "t1-")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range DefaultMix {
		t.Run(tc.Provider+"/"+string(tc.Kind), func(t *testing.T) {
			for n := uint64(1); n <= 60; n++ { // every mrnpay channel, the short-paid case, several amounts
				cb, err := g.Make(tc.Provider, tc.Kind, n)
				if err != nil {
					t.Fatal(err)
				}
				ev, err := parsers[tc.Provider].Parse(accts[tc.Provider], providers.Request{
					Kind: tc.Kind, Header: cb.Header, Body: cb.Body, RemoteAddr: "127.0.0.1:1", ReceivedAt: time.Now(),
				})
				if err != nil {
					t.Fatalf("n=%d: %v\nbody: %s", n, err, cb.Body)
				}
				if err := ev.Validate(); err != nil {
					t.Fatalf("n=%d: invalid event: %v", n, err)
				}
				if ev.MerchantOrderID != cb.OrderID {
					t.Fatalf("n=%d: merchant order id %q, want %q", n, ev.MerchantOrderID, cb.OrderID)
				}
				if want := "/v1/callbacks/" + tc.Provider + "/" + accts[tc.Provider].ID + "/" + string(tc.Kind); cb.Path != want {
					t.Fatalf("path %q, want %q", cb.Path, want)
				}
			}
		})
	}
}

func TestGeneratorMixAndUniqueIDs(t *testing.T) {
	g, err := NewGenerator(Accounts(), DefaultMix, "u-")
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	seen := map[string]bool{}
	count := map[string]int{}
	for range n {
		cb, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		if seen[cb.OrderID] {
			t.Fatalf("duplicate order id %s", cb.OrderID)
		}
		seen[cb.OrderID] = true
		count[cb.Provider+"/"+string(cb.Kind)]++
	}
	total := 0
	for _, m := range DefaultMix {
		total += m.Weight
	}
	for _, m := range DefaultMix {
		want := float64(n) * float64(m.Weight) / float64(total)
		got := float64(count[m.Provider+"/"+string(m.Kind)])
		if got < want*0.9 || got > want*1.1 {
			t.Errorf("%s/%s: %v callbacks, want about %v", m.Provider, m.Kind, got, want)
		}
	}
}

func TestGeneratorDropsProvidersWithoutAccount(t *testing.T) {
	var only []providers.Account
	for _, a := range Accounts() {
		if a.Provider == jpglo.Name {
			only = append(only, a)
		}
	}
	g, err := NewGenerator(only, DefaultMix, "d-")
	if err != nil {
		t.Fatal(err)
	}
	got := g.Targets()
	want := []Target{{jpglo.Name, events.KindPayin, PayinWeight}, {jpglo.Name, events.KindAppeal, OtherWeight}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("targets %v, want %v", got, want)
	}
	if _, err := g.Make(mpurse.Name, events.KindPayin, 1); err == nil || !strings.Contains(err.Error(), "no mpurse account") {
		t.Fatalf("Make for a provider without account: %v", err)
	}
	if _, err := NewGenerator(nil, DefaultMix, "x"); err == nil {
		t.Fatal("empty mix accepted")
	}
}
