package events_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
)

// benchEvent is a typical decoded jpglo pay-in, provider fields included.
func benchEvent() events.Event {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	req := events.MustMoney("100000.00", "INR")
	return events.Event{
		Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusSucceeded,
		MerchantOrderID: "111123456789", ProviderOrderID: "2202171238501159",
		Amount: events.MustMoney("100000.00", "INR"), RequestedAmount: &req,
		OccurredAt: at.Add(-2 * time.Second), ReceivedAt: at, Origin: events.OriginCallback,
		ProviderFields: map[string]any{
			"order_no": "2202171238501159", "mch_order_no": "111123456789", "status": "success",
			"apply_amount": json.Number("10000000"), "real_amount": json.Number("10000000"),
			"pay_type": "upi", "sub_pay_type": nil, "remark": "", "user_ext": `{"user_id":"123456"}`,
			"timestamp": json.Number("1656945134"),
		},
	}
}

func BenchmarkID(b *testing.B) {
	e := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		if len(e.ID()) != 36 {
			b.Fatal("bad id")
		}
	}
}

func BenchmarkMarshalCloudEvent(b *testing.B) {
	e := benchEvent()
	out, err := e.MarshalCloudEvent()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		if _, err := e.MarshalCloudEvent(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshalCloudEventEncodingJSON is the same envelope through
// encoding/json, the library the hand-written encoder must beat to stay.
func BenchmarkMarshalCloudEventEncodingJSON(b *testing.B) {
	e := benchEvent()
	out, err := json.Marshal(e.Envelope())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		if _, err := json.Marshal(e.Envelope()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	e := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignVerify is the bus signature's cost per event: the producer
// signs the typical CloudEvent once, and the dispatcher verifies it once per
// subscriber copy. Compare with BenchmarkMarshalCloudEvent here and with
// internal/ingress's BenchmarkCallback (the whole callback path).
func BenchmarkSignVerify(b *testing.B) {
	k, err := events.PrivateKeyFromSeed(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	s, _ := events.NewSigner(k)
	keys := []events.PublicKey{k.Public()}
	e := benchEvent()
	data, _ := e.MarshalCloudEvent()
	id := e.ID()
	at := time.Unix(1765000000, 0)
	b.Run("sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.Sign(hdr{}, id, at, data)
		}
	})
	h := hdr{}
	s.Sign(h, id, at, data)
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := events.Verify(keys, h, data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sign+verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h := hdr{}
			s.Sign(h, id, at, data)
			if _, err := events.Verify(keys, h, data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
