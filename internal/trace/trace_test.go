package trace

import (
	"testing"
	"time"

	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/pkg/events"
)

// TestRawHeadersAreIngress: the index reads raw records by ingress's header names.
func TestRawHeadersAreIngress(t *testing.T) {
	for got, want := range map[string]string{
		rawHeaderReceivedAt: ingress.RawHeaderReceivedAt, rawHeaderKind: ingress.RawHeaderKind,
		rawHeaderVerdict: ingress.RawHeaderVerdict, rawHeaderReason: ingress.RawHeaderReason,
		rawHeaderStatus: ingress.RawHeaderStatus, rawHeaderEventID: ingress.RawHeaderEventID,
		rawHeaderProvider: ingress.RawHeaderProvider, rawHeaderAccount: ingress.RawHeaderAccount,
		rawHeaderOrderID: ingress.RawHeaderOrderID, rawHeaderClaimedOrderID: ingress.RawHeaderClaimedOrderID,
	} {
		if got != want {
			t.Errorf("header %q, ingress writes %q", got, want)
		}
	}
}

func TestEventEntry(t *testing.T) {
	amt, _ := events.ParseMoney("10.00", "INR")
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	e := events.Event{Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusSucceeded,
		MerchantOrderID: "O.1 *>", Amount: amt, OccurredAt: at, ReceivedAt: at, Origin: events.OriginPoll}
	b, err := e.MarshalCloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	key, got, ok := EventEntry(e.Subject(), b)
	if !ok || key != OrderIndexKey("jpglo", "glo-in", "O.1 *>") {
		t.Fatalf("key %q ok %v", key, ok)
	}
	want := Entry{Type: TypeEvent, At: at, EventID: e.ID(), Kind: "payin", EventStatus: "succeeded", Origin: "poll"}
	if got != want {
		t.Errorf("entry %+v, want %+v", got, want)
	}
	for _, bad := range []string{``, `{}`, `{"id":"x"}`, `not json`} {
		if _, _, ok := EventEntry("payhook.events.jpglo.payin.succeeded", []byte(bad)); ok {
			t.Errorf("%q indexed", bad)
		}
	}
	// A key is one subject token whatever the order id holds.
	if k := OrderIndexKey("jpglo", "glo-in", "a.b *>"); len(k) != 33 || k[0] != 'o' {
		t.Errorf("key %q", k)
	}
	if OrderIndexKey("a", "bc", "d") == OrderIndexKey("ab", "c", "d") {
		t.Error("keys of different orders collide")
	}
}

// FuzzEventEntry: whatever a message on PAYHOOK_EVENTS holds, indexing it
// neither panics nor makes a key that is not one subject token.
func FuzzEventEntry(f *testing.F) {
	f.Add("payhook.events.jpglo.payin.succeeded", []byte(`{"specversion":"1.0","id":"evt_1","data":{"provider":"jpglo","account":"a","kind":"payin","merchant_order_id":"o"}}`))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		key, _, ok := EventEntry(subject, data)
		if ok && (len(key) != 33 || key[0] != 'o') {
			t.Fatalf("key %q", key)
		}
	})
}

// TestIndexKeysStable: the keys name subjects already stored in
// PAYHOOK_TRACE, so their bytes never change.
func TestIndexKeysStable(t *testing.T) {
	if k := OrderIndexKey("jpglo", "glo-in", "O-1"); k != "o1d6302e1f6ef8d97e413c5178641916e" {
		t.Fatalf("OrderIndexKey = %s", k)
	}
	if k := EventIndexKey("evt_1"); k != "eacda4addf3b92ed63410d1be493b8234" {
		t.Fatalf("EventIndexKey = %s", k)
	}
}
