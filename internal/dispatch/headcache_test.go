package dispatch

import (
	"fmt"
	"testing"

	"github.com/payhook/payhook/pkg/events"
)

func TestHeadCacheAgreesWithParseHead(t *testing.T) {
	c := newHeadCache()
	var bodies [][]byte
	for i := range 3 * headCacheSlots { // more bodies than slots: evictions
		e := events.Event{Provider: "jpglo", Account: "a1", Kind: events.KindPayin, Status: events.StatusSucceeded,
			MerchantOrderID: fmt.Sprintf("o-%d", i), Amount: events.Money{Value: "1.00", Currency: "INR"}, Origin: events.OriginCallback}
		b, err := e.MarshalCloudEvent()
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	for round := range 3 {
		for i, b := range bodies {
			got, err := c.parse(b)
			want, werr := parseHead(b)
			if err != nil || werr != nil || got.ce.ID != want.ID || got.ce.Data.Account != want.Data.Account || got.key != SequenceKey(want) || got.subject != events.SubjectOf(want) {
				t.Fatalf("round %d body %d: cache %+v %v, parseHead %+v %v", round, i, got, err, want, werr)
			}
		}
	}
	// Same length, different bytes: not confused.
	a, b := bodies[1], bodies[2]
	if len(a) != len(b) {
		t.Fatalf("test wants equal lengths: %d %d", len(a), len(b))
	}
	ca, _ := c.parse(a)
	cb, _ := c.parse(b)
	if ca.ce.ID == cb.ce.ID {
		t.Fatal("two different events share an id through the cache")
	}
	if _, err := c.parse([]byte(`{"specversion":"0.3"}`)); err == nil {
		t.Fatal("invalid head accepted")
	}
	if _, err := c.parse([]byte(`{"specversion":"0.3"}`)); err == nil {
		t.Fatal("invalid head accepted the second time (cached?)")
	}
}

func BenchmarkHeadCache(b *testing.B) {
	e := events.Event{Provider: "jpglo", Account: "a1", Kind: events.KindPayin, Status: events.StatusSucceeded,
		MerchantOrderID: "o-1", Amount: events.Money{Value: "1.00", Currency: "INR"}, Origin: events.OriginCallback,
		ProviderFields: map[string]any{"a": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "b": "yyyyyyyyyyyyyyyyyyyyyyyyyyy", "c": "1", "d": "2", "e": "3"}}
	body, _ := e.MarshalCloudEvent()
	b.Run("parseHead", func(b *testing.B) {
		for b.Loop() {
			_, _ = parseHead(body)
		}
	})
	c := newHeadCache()
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			_, _ = c.parse(body)
		}
	})
}
