package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
)

func TestParseMoney(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"120.00", "120.00", true},
		{"20000", "20000", true},
		{"0.0001", "0.0001", true},
		{"-3.50", "-3.50", true},
		{"-0.00", "0.00", true},
		{"", "", false},
		{"1e5", "", false},
		{"+1", "", false},
		{"1.", "", false},
		{".5", "", false},
		{" 1", "", false},
		{"NaN", "", false},
		{"1,000", "", false},
		{strings.Repeat("9", 41), "", false},
	}
	for _, c := range cases {
		m, err := ParseMoney(c.in, "INR")
		if c.ok != (err == nil) {
			t.Errorf("ParseMoney(%q) err = %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrAmount) {
			t.Errorf("ParseMoney(%q) error does not wrap ErrAmount", c.in)
		}
		if c.ok && m.Value != c.want {
			t.Errorf("ParseMoney(%q) = %q, want %q", c.in, m.Value, c.want)
		}
	}
}

func TestMoneyFromMinor(t *testing.T) {
	cases := []struct {
		minor string
		exp   int
		want  string
	}{
		{"10000000", 2, "100000.00"},
		{"1", 2, "0.01"},
		{"0", 2, "0.00"},
		{"5", 0, "5"},
		{"-250", 2, "-2.50"},
		{"007", 2, "0.07"},
	}
	for _, c := range cases {
		m, err := MoneyFromMinor(c.minor, c.exp, "INR")
		if err != nil || m.Value != c.want {
			t.Errorf("MoneyFromMinor(%q,%d) = %q, %v; want %q", c.minor, c.exp, m.Value, err, c.want)
		}
	}
	for _, bad := range []string{"", "1.5", "abc", "-", strings.Repeat("1", 41)} {
		if _, err := MoneyFromMinor(bad, 2, "INR"); err == nil {
			t.Errorf("MoneyFromMinor(%q) accepted", bad)
		}
	}
}

func TestMoneyCmpAndMinor(t *testing.T) {
	a, b := MustMoney("20000.00", "IDR"), MustMoney("20000", "IDR")
	if a.Cmp(b) != 0 || !a.Equal(b) {
		t.Error("20000.00 != 20000")
	}
	if MustMoney("99.50", "CNY").Cmp(MustMoney("100.00", "CNY")) != -1 {
		t.Error("99.50 >= 100.00")
	}
	if MustMoney("1", "INR").Equal(MustMoney("1", "IDR")) {
		t.Error("currencies ignored")
	}
	n, err := MustMoney("100000.00", "INR").Minor(2)
	if err != nil || n.String() != "10000000" {
		t.Errorf("Minor = %v, %v", n, err)
	}
	if _, err := MustMoney("0.001", "INR").Minor(2); err == nil {
		t.Error("sub-minor precision accepted")
	}
	// 0.1 + 0.2 is exact here, unlike float64.
	if MustMoney("0.30", "INR").Cmp(MustMoney("0.3", "INR")) != 0 {
		t.Error("0.30 != 0.3")
	}
}

func sample() Event {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	req := MustMoney("100000.00", "INR")
	return Event{
		Provider: "jpglo", Account: "glo-in", Kind: KindPayin, Status: StatusSucceeded,
		MerchantOrderID: "111123456789", ProviderOrderID: "2202171238501159",
		Amount: MustMoney("100000.00", "INR"), RequestedAmount: &req,
		OccurredAt: at.Add(-2 * time.Second), ReceivedAt: at, Origin: OriginCallback,
		ProviderFields: map[string]any{"pay_type": "pix"},
	}
}

func TestIDIsDeterministicAndDiscriminates(t *testing.T) {
	e := sample()
	id := e.ID()
	if len(id) != 36 || !strings.HasPrefix(id, "evt_") {
		t.Fatalf("id %q", id)
	}
	// Same fact by another path: same id.
	poll := e
	poll.Origin, poll.ReceivedAt, poll.Amount = OriginPoll, e.ReceivedAt.Add(time.Hour), MustMoney("100000", "INR")
	poll.ProviderFields = nil
	if poll.ID() != id {
		t.Error("origin, time, amount spelling or fields changed the id")
	}
	for name, mut := range map[string]func(*Event){
		"status":  func(x *Event) { x.Status = StatusFailed },
		"order":   func(x *Event) { x.MerchantOrderID = "111123456780" },
		"account": func(x *Event) { x.Account = "glo-br" },
		"kind":    func(x *Event) { x.Kind = KindAppeal },
		"key":     func(x *Event) { x.IdempotencyKey = "inq-1" },
	} {
		x := e
		mut(&x)
		if x.ID() == id {
			t.Errorf("changing %s kept the id", name)
		}
	}
	// Length-prefixing: moving a character between parts changes the id.
	a := Event{Provider: "p", Account: "ab", Kind: KindPayin, MerchantOrderID: "c", Status: StatusPending}
	b := Event{Provider: "p", Account: "a", Kind: KindPayin, MerchantOrderID: "bc", Status: StatusPending}
	if a.ID() == b.ID() {
		t.Error("ambiguous id encoding")
	}
}

func TestCloudEventEnvelopeIsValidCloudEvents(t *testing.T) {
	e := sample()
	b, err := e.MarshalCloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	// Validate with the CloudEvents SDK, independent of our own types.
	var sdk ce.Event
	if err := json.Unmarshal(b, &sdk); err != nil {
		t.Fatalf("sdk cannot read our envelope: %v", err)
	}
	if err := sdk.Validate(); err != nil {
		t.Fatalf("sdk says invalid: %v", err)
	}
	if sdk.ID() != e.ID() || sdk.Type() != "payhook.payin.succeeded" || sdk.Source() != "payhook/jpglo/glo-in" || sdk.SpecVersion() != "1.0" {
		t.Errorf("envelope attributes: %s %s %s %s", sdk.ID(), sdk.Type(), sdk.Source(), sdk.SpecVersion())
	}
	var data map[string]any
	if err := json.Unmarshal(sdk.Data(), &data); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"provider": "jpglo", "account": "glo-in", "kind": "payin", "status": "succeeded",
		"merchant_order_id": "111123456789", "provider_order_id": "2202171238501159",
		"amount_mismatch": false, "origin": "callback",
		"occurred_at": "2026-11-23T09:59:58Z", "received_at": "2026-11-23T10:00:00Z",
	}
	for k, v := range want {
		if data[k] != v {
			t.Errorf("data.%s = %v, want %v", k, data[k], v)
		}
	}
	if amt := data["amount"].(map[string]any); amt["value"] != "100000.00" || amt["currency"] != "INR" {
		t.Errorf("amount = %v", amt)
	}
	if _, ok := data["IdempotencyKey"]; ok {
		t.Error("idempotency key leaked into JSON")
	}
	back, err := ParseCloudEvent(b)
	if err != nil || back.ID != e.ID() || back.Data.Amount.Value != "100000.00" {
		t.Errorf("round trip: %+v %v", back, err)
	}
	if e.Subject() != "payhook.events.jpglo.payin.succeeded" {
		t.Errorf("subject %s", e.Subject())
	}
}

func TestConflictEnvelope(t *testing.T) {
	e := sample()
	e.Status = StatusFailed
	b, err := e.MarshalConflict(StatusSucceeded, "evt_prev")
	if err != nil {
		t.Fatal(err)
	}
	var sdk ce.Event
	if err := json.Unmarshal(b, &sdk); err != nil || sdk.Validate() != nil {
		t.Fatalf("conflict envelope invalid: %v", err)
	}
	if sdk.Type() != "payhook.payin.conflict" || e.ConflictSubject() != "payhook.events.jpglo.payin.conflict" {
		t.Errorf("type %s subject %s", sdk.Type(), e.ConflictSubject())
	}
	var d ConflictData
	if err := json.Unmarshal(sdk.Data(), &d); err != nil || d.PreviousStatus != StatusSucceeded || d.PreviousEventID != "evt_prev" || d.Status != StatusFailed {
		t.Errorf("conflict data %+v %v", d, err)
	}
}

func TestConflictFollowUp(t *testing.T) {
	e := sample()
	e.Status = StatusFailed
	if got, want := e.ConflictFollowUpID(), e.ID()+":conflict"; got != want {
		t.Fatalf("ConflictFollowUpID = %s, want %s", got, want)
	}
	b, err := e.MarshalConflictFollowUp(StatusSucceeded, "evt_prev")
	if err != nil {
		t.Fatal(err)
	}
	same, _ := e.MarshalConflict(StatusSucceeded, "evt_prev")
	// The same document as the conflict seen at Check, under the follow-up id.
	if want := bytes.Replace(same, []byte(`"id":"`+e.ID()+`"`), []byte(`"id":"`+e.ConflictFollowUpID()+`"`), 1); !bytes.Equal(b, want) {
		t.Errorf("follow-up\n got  %s\n want %s", b, want)
	}
}

func TestValidate(t *testing.T) {
	for name, mut := range map[string]func(*Event){
		"provider": func(x *Event) { x.Provider = "Bad Provider" },
		"account":  func(x *Event) { x.Account = "" },
		"kind":     func(x *Event) { x.Kind = "refund" },
		"status":   func(x *Event) { x.Status = StatusConflict },
		"order":    func(x *Event) { x.MerchantOrderID, x.ProviderOrderID = "", "" },
		"amount":   func(x *Event) { x.Amount.Value = "1e9" },
	} {
		x := sample()
		mut(&x)
		if err := x.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v", name, err)
		}
		if _, err := x.MarshalCloudEvent(); err == nil {
			t.Errorf("%s: marshalled an invalid event", name)
		}
	}
}

func FuzzParseCloudEvent(f *testing.F) {
	e := sample()
	b, _ := e.MarshalCloudEvent()
	f.Add(b)
	f.Add([]byte(`{"specversion":"1.0","id":"x","data":{"amount":{"value":"1e400"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ce, err := ParseCloudEvent(b)
		if err == nil && ce.Data.Amount.Value != "" {
			if _, err := ParseMoney(ce.Data.Amount.Value, "X"); err != nil {
				t.Fatalf("accepted invalid amount %q", ce.Data.Amount.Value)
			}
		}
	})
}

// The id is a published contract (downstream dedupes on it): pinned against
// a value computed outside the code (Python hashlib over the same bytes).
func TestIDGolden(t *testing.T) {
	e := sample()
	if got, want := e.ID(), "evt_070b71ad32a9d50a4936a6d8fe3009e3"; got != want {
		t.Fatalf("ID = %s, want %s", got, want)
	}
}

func TestEncoderMatchesEncodingJSON(t *testing.T) {
	weird := "a\"b\\c\n\r\t\x00\x1f é 中文 \u2028 \xff end"
	cases := map[string]func(*Event){
		"sample": func(*Event) {},
		"minimal": func(e *Event) {
			e.ProviderOrderID, e.Reference, e.RequestedAmount, e.ProviderFields = "", "", nil, nil
		},
		"weird strings": func(e *Event) {
			e.MerchantOrderID, e.Reference = "订单 Ü-4 \"q\" \\", "é<>&"
			e.ProviderFields = map[string]any{"name": weird, "n": json.Number("12.50"), "nested": map[string]any{"b": []any{1, "x", nil, true}}}
		},
		"non-utc times": func(e *Event) {
			ist := time.FixedZone("IST", 5*3600+1800)
			e.OccurredAt = time.Date(2019, 7, 6, 12, 10, 0, 123456789, ist)
			e.ReceivedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, ist)
		},
		"mismatch": func(e *Event) { e.AmountMismatch = true; e.Amount = MustMoney("99.50", "INR") },
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			e := sample()
			mut(&e)
			got, err := e.MarshalCloudEvent()
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(e.Envelope())
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("invalid JSON %s: %v", got, err)
			}
			_ = json.Unmarshal(want, &w)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("differs from encoding/json:\n got  %s\n want %s", got, want)
			}
		})
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("plain")
	f.Add("a\"b\\c\n\x00\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("invalid JSON string %q: %v", b, err)
		}
		want, _ := json.Marshal(s)
		var w string
		_ = json.Unmarshal(want, &w)
		if back != w {
			t.Fatalf("round trip %q -> %q, encoding/json gives %q", s, back, w)
		}
	})
}

func TestValidOrderID(t *testing.T) {
	for _, s := range []string{"111123456789", "PAYIN8551790545658687488", "M-1001", "订单-1", "订单 Ü-4", strings.Repeat("9", 128)} {
		if !ValidOrderID(s) {
			t.Errorf("ValidOrderID(%q) = false", s)
		}
	}
	for _, s := range []string{"", " ab", "ab ", "a\u00a0b", "BI\xe9", "x\x00y", "a\u202eb", "tab\t", strings.Repeat("9", 129)} {
		if ValidOrderID(s) {
			t.Errorf("ValidOrderID(%q) = true", s)
		}
	}
	e := sample()
	e.MerchantOrderID = "BI\xff"
	if err := e.Validate(); err == nil {
		t.Error("invalid UTF-8 order id accepted by Validate")
	}
}

func TestNormalizeKeepsVerifiedCallbacksPublishable(t *testing.T) {
	e := sample()
	e.Reference, e.ProviderOrderID = " UTR123 ", strings.Repeat("x", 200)
	e.Normalize()
	if e.Reference != "UTR123" || e.ProviderOrderID != "" {
		t.Errorf("Normalize: reference %q, provider order %q", e.Reference, e.ProviderOrderID)
	}
	if err := e.Validate(); err != nil {
		t.Errorf("normalized event invalid: %v", err)
	}
	e.MerchantOrderID = "a\tb"
	e.Normalize()
	if e.Validate() == nil {
		t.Error("an unusable merchant order id must still be refused")
	}
}

// cmpDecimal agrees with exact rational comparison.
func FuzzCmpDecimal(f *testing.F) {
	for _, p := range [][2]string{{"1", "1.00"}, {"-0", "0.0"}, {"99.50", "100"}, {"-1.5", "-1.50"}, {"0.001", "-0.002"}, {"007", "7"}, {"-3", "2"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if checkDecimal(a) != nil || checkDecimal(b) != nil {
			return
		}
		ra, _ := new(big.Rat).SetString(a)
		rb, _ := new(big.Rat).SetString(b)
		if got, want := cmpDecimal(a, b), ra.Cmp(rb); got != want {
			t.Fatalf("cmpDecimal(%q, %q) = %d, want %d", a, b, got, want)
		}
	})
}

func TestConflictMatchesEncodingJSON(t *testing.T) {
	e := sample()
	e.Status = StatusFailed
	got, err := e.MarshalConflict(StatusSucceeded, "evt_prev")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(ConflictEnvelope{SpecVersion: "1.0", ID: e.ID(), Source: e.Source(), Type: "payhook.payin.conflict",
		Subject: e.MerchantOrderID, Time: e.ReceivedAt.UTC(), DataContentType: "application/json",
		Data: ConflictData{Event: e, PreviousStatus: StatusSucceeded, PreviousEventID: "evt_prev"}})
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("invalid JSON %s", got)
	}
	_ = json.Unmarshal(want, &w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("conflict differs:\n got  %s\n want %s", got, want)
	}
}

func TestEncoderRefusesWhatEncodingJSONRefuses(t *testing.T) {
	e := sample()
	e.OccurredAt = time.Date(-1, 12, 31, 17, 0, 0, 0, time.UTC)
	if _, err := e.MarshalCloudEvent(); err == nil {
		t.Error("a year outside 0..9999 was encoded")
	}
	for _, n := range []string{`{"amount":1}`, `"x"`, `[1]`, `true`, `null`, ` 1`, `1 `, `01`, `1.`, `.5`, `1e`, `+1`} {
		e := sample()
		e.ProviderFields = map[string]any{"n": json.Number(n)}
		if b, err := e.MarshalCloudEvent(); err == nil {
			t.Errorf("json.Number %q encoded as %s", n, b)
		}
	}
	for _, n := range []string{"0", "-0", "12.50", "1e10", "-1.5E-3", "2500.0000"} {
		e := sample()
		e.ProviderFields = map[string]any{"n": json.Number(n)}
		if _, err := e.MarshalCloudEvent(); err != nil {
			t.Errorf("valid json.Number %q refused: %v", n, err)
		}
	}
	e = sample()
	e.ProviderFields = map[string]any{"l": []any(nil), "m": map[string]any(nil)}
	b, _ := e.MarshalCloudEvent()
	if !strings.Contains(string(b), `"l":null`) || !strings.Contains(string(b), `"m":null`) {
		t.Errorf("nil list/map not null: %s", b)
	}
}

func TestNormalizeLeavesIdentifyingProviderOrderID(t *testing.T) {
	e := Event{Provider: "p", Account: "a", Kind: KindPayin, Status: StatusSucceeded, ProviderOrderID: "P1 "}
	id := e.ID()
	e.Normalize()
	if e.ProviderOrderID != "P1 " || e.ID() != id {
		t.Errorf("the identifying provider order id was changed to %q", e.ProviderOrderID)
	}
}

// encodingJSON is the library rendering the hand-written encoder must equal
// byte for byte: encoding/json without HTML escaping, no trailing newline.
func encodingJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// FuzzEncoderMatchesEncodingJSON holds the whole-event fast path (normal and
// conflict CloudEvents) equal, byte for byte, to encoding/json over events
// with arbitrary strings, numbers, nesting and times: same bytes when
// encoding/json succeeds, an error when it refuses.
func FuzzEncoderMatchesEncodingJSON(f *testing.F) {
	f.Add("111123456789", "utr-1", "pix", "12.50", int64(0), false)
	f.Add("订单 Ü-4 \"q\" \\", "é<>&", "a\"b\\c\n\x00\xff\u2028", "01", int64(-62135596801), true)
	f.Fuzz(func(t *testing.T, order, ref, field, number string, unix int64, mismatch bool) {
		e := sample()
		e.MerchantOrderID, e.Reference, e.AmountMismatch = order, ref, mismatch
		e.OccurredAt = time.Unix(unix, int64(len(field))).In(time.FixedZone("X", 5*3600+1800))
		e.ProviderFields = map[string]any{field: field, "n": json.Number(number),
			"nested": map[string]any{"list": []any{field, nil, true, 1.5, map[string]any{}}}}
		if e.Validate() != nil {
			return
		}
		got, err := e.MarshalCloudEvent()
		want, werr := encodingJSON(e.Envelope())
		if (err == nil) != (werr == nil) {
			t.Fatalf("fast path error %v, encoding/json error %v", err, werr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("differs from encoding/json:\n got  %s\n want %s", got, want)
		}
		got, err = e.MarshalConflict(StatusFailed, ref)
		want, werr = encodingJSON(ConflictEnvelope{SpecVersion: "1.0", ID: e.ID(), Source: e.Source(), Type: "payhook.payin.conflict",
			Subject: e.MerchantOrderID, Time: e.ReceivedAt.UTC(), DataContentType: "application/json",
			Data: ConflictData{Event: e, PreviousStatus: StatusFailed, PreviousEventID: ref}})
		if (err == nil) != (werr == nil) {
			t.Fatalf("conflict: fast path error %v, encoding/json error %v", err, werr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("conflict differs from encoding/json:\n got  %s\n want %s", got, want)
		}
	})
}
