package trace

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestMarshalMatchesJSON: Entry.marshal gives json.Marshal's bytes for
// every kind of entry, texts needing escapes, times of every zone and
// precision and latencies of every magnitude among them.
func TestMarshalMatchesJSON(t *testing.T) {
	texts := []string{"", "a", "delivered", "HTTP 503", "dial tcp: connection refused", `q"uote`, `back\slash`,
		"<html>", "a&b", "tab\there", "nl\n", "é", "\u2028", "\xff\xfe", "payhook.events.jpglo.payin.succeeded", "\x7f"}
	floats := []float64{0, 0.001, 1.5, 12.345, 1e-7, -3, 999999.999, 1e20, 1e21, 1e22, 5e-324, math.MaxFloat64}
	zones := []*time.Location{time.UTC, time.FixedZone("IST", 5*3600+1800), time.FixedZone("W", -7*3600)}
	times := []time.Time{{}, time.Unix(1765000000, 123456789), time.Unix(1765000000, 0), time.Unix(1765000000, 120000000),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := rand.New(rand.NewPCG(1, 2))
	plainTexts := []string{"", "a", "delivered", "HTTP 503", "dial tcp: connection refused", "payhook.events.jpglo.payin.succeeded"}
	text := func() string { // mostly plain, so that whole entries take the hand-written path
		if r.IntN(50) > 0 {
			return plainTexts[r.IntN(len(plainTexts))]
		}
		return texts[r.IntN(len(texts))]
	}
	fast := 0
	num := func() int {
		if r.IntN(2) == 0 {
			return 0
		}
		return r.IntN(2000) - 100
	}
	for i := range 20000 {
		e := Entry{
			Type: text(), At: times[r.IntN(len(times))].In(zones[r.IntN(len(zones))]),
			RawStream: text(), RawSeq: uint64(num() + 100), Verdict: text(), Reason: text(), Unverified: r.IntN(2) == 0,
			EventID: text(), Kind: text(), EventStatus: text(), Origin: text(), EventSeq: uint64(r.IntN(3)) * math.MaxUint64 / 2,
			Subscriber: text(), Attempt: num(), HTTPStatus: num(), LatencyMS: floats[r.IntN(len(floats))] * float64(1-2*r.IntN(2)),
			Error: text(), Outcome: text(), Status: num(),
		}
		want, err := json.Marshal(e)
		if err != nil {
			want = nil
		}
		if _, ok := e.appendJSON(nil); ok {
			fast++
		}
		if got := e.marshal(); !bytes.Equal(got, want) {
			t.Fatalf("entry %d %+v:\n got %s\nwant %s", i, e, got, want)
		}
	}
	if fast < 2000 {
		t.Fatalf("only %d entries took the hand-written path", fast)
	}
}

func BenchmarkMarshalAttempt(b *testing.B) {
	e := Entry{Type: TypeAttempt, At: time.Now().UTC(), EventID: "evt_0123456789abcdef", Kind: "payin", Subscriber: "ledger",
		Attempt: 1, HTTPStatus: 200, LatencyMS: 1.234, Outcome: "delivered"}
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(e)
		}
	})
	b.Run("marshal", func(b *testing.B) {
		for b.Loop() {
			_ = e.marshal()
		}
	})
}
