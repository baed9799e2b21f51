package ingress

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/textproto"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payhook/payhook/internal/natsbus"
)

// wire renders h as nats.go puts it on the wire (values trimmed, CR and LF
// replaced by spaces) and reads it back as a subscriber would: the
// encoding must survive exactly that.
func wire(tb testing.TB, h nats.Header) nats.Header {
	tb.Helper()
	var b bytes.Buffer
	b.WriteString("NATS/1.0\r\n")
	for k, vs := range h {
		for _, v := range vs {
			v = strings.NewReplacer("\r", " ", "\n", " ").Replace(textproto.TrimString(v))
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	got, err := nats.DecodeHeadersMsg(b.Bytes())
	if err != nil {
		tb.Fatalf("header block does not decode: %v\n%q", err, b.String())
	}
	return got
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestRawRecordRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	sum := sha256.Sum256([]byte("the whole body"))
	for name, r := range map[string]RawRecord{
		"full": {ReceivedAt: at, Provider: "jpglo", Account: "glo-in", Kind: "payin", Method: "POST", Path: "/v1/callbacks/jpglo/glo-in/payin",
			RemoteAddr: "203.0.113.7:5000", ClientIP: "203.0.113.7",
			Headers: map[string][]string{"Content-Type": {"application/json"}, "X-Odd": {"a\"b", "\x00é", " lead", "trail\t", "100%", ""}, "X:Colon": {"v: w"}},
			Body:    []byte(`{"a":"b\u2028"}` + "\n"), BodyLength: 16, Verdict: "rejected", Reason: "bad_signature", Status: 401, DurationMS: 1.234},
		"every byte, no reason": {ReceivedAt: at, Provider: "unknown", Account: "unknown", Kind: "unknown", Method: "GET", Path: "/v1/callbacks/x\n\x00y",
			RemoteAddr: "[2001:db8::1]:443", ClientIP: "2001:db8::1", Headers: map[string][]string{},
			Body: allBytes(), BodyLength: 256, Verdict: "accepted", Status: 200, EventID: "evt_1"},
		"truncated": {ReceivedAt: at, Provider: "unknown", Account: "x", Kind: "unknown", Method: "POST", Path: "/v1/callbacks/x",
			Headers: map[string][]string{}, Body: []byte("the w"), BodyLength: 14, BodyTruncated: true, BodySHA256: hex.EncodeToString(sum[:]),
			Verdict: "rejected", Reason: "unknown_route", Status: 404, DurationMS: 0.5},
		"empty body": {ReceivedAt: at, Provider: "p", Account: "a", Kind: "k", Method: "POST", Path: "/", Headers: map[string][]string{},
			Body: []byte{}, Verdict: "rejected", Reason: "malformed", Status: 400},
	} {
		t.Run(name, func(t *testing.T) {
			msg := EncodeRawRecord("payhook.raw.x.y", &r)
			if !bytes.Equal(msg.Data, r.Body) {
				t.Fatalf("data is not the body")
			}
			got, err := DecodeRawRecord(wire(t, msg.Header), msg.Data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Errorf("round trip differs:\n got  %+v\n want %+v", got, r)
			}
		})
	}
}

// The envelope costs a bounded number of bytes over the body and the
// request headers (EncodeRawRecord's doc states the bound).
func TestRawRecordSize(t *testing.T) {
	r := RawRecord{ReceivedAt: time.Now(), Provider: "mpurse", Account: "mp-in-0123456789", Kind: "payout", Method: "POST",
		Path: "/v1/callbacks/mpurse/mp-in-0123456789/payout", RemoteAddr: "[2001:db8:1:2:3:4:5:6]:65535", ClientIP: "2001:db8:1:2:3:4:5:6",
		Headers: map[string][]string{"Content-Type": {"application/json"}, "User-Agent": {"Go-http-client/1.1"}, "X-Forwarded-For": {"198.51.100.1, 203.0.113.9"}},
		Body:    bytes.Repeat(allBytes(), 64), Verdict: VerdictUnavailable, Reason: "unavailable", Status: 503, EventID: strings.Repeat("e", 64),
		ClaimedOrderID: strings.Repeat("o", 128), BodyLength: 64 * 256, DurationMS: 12345.678}
	msg := EncodeRawRecord("payhook.raw.mpurse.unavailable", &r)
	size := len(msg.Data)
	for k, vs := range msg.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	limit := len(r.Body) + len(r.Path) + rawEnvelopeBytes
	for k, vs := range r.Headers {
		for _, v := range vs {
			limit += len(k) + len(v) + 18
		}
	}
	if size > limit {
		t.Errorf("record is %d bytes, over body + path + headers + envelope = %d", size, limit)
	}
}

func TestDecodeRawRecordErrors(t *testing.T) {
	good := func() nats.Header {
		r := RawRecord{ReceivedAt: time.Now(), Provider: "p", Account: "a", Kind: "k", Method: "POST", Path: "/", Body: []byte("xy"), BodyLength: 2, Verdict: "rejected", Status: 400}
		return wire(t, EncodeRawRecord("s", &r).Header)
	}
	for name, tc := range map[string]struct {
		edit func(nats.Header)
		data string
		want string
	}{
		"no format, not JSON": {func(h nats.Header) { delete(h, RawHeaderFormat) }, "xy", "no Payhook-Record header"},
		"unknown format":      {func(h nats.Header) { h[RawHeaderFormat] = []string{"2"} }, "xy", `format "2"`},
		"missing verdict":     {func(h nats.Header) { delete(h, RawHeaderVerdict) }, "xy", "Payhook-Verdict: want one value, got 0"},
		"two providers":       {func(h nats.Header) { h[RawHeaderProvider] = []string{"a", "b"} }, "xy", "Payhook-Provider: want one value, got 2"},
		"bad escape":          {func(h nats.Header) { h[RawHeaderPath] = []string{"/%zz"} }, "xy", "Payhook-Path: bad escape"},
		"cut escape":          {func(h nats.Header) { h[RawHeaderPath] = []string{"/%4"} }, "xy", "Payhook-Path: truncated escape"},
		"bad time":            {func(h nats.Header) { h[RawHeaderReceivedAt] = []string{"yesterday"} }, "xy", "not an RFC 3339 time"},
		"bad status":          {func(h nats.Header) { h[RawHeaderStatus] = []string{"42"} }, "xy", "not an HTTP status"},
		"length mismatch":     {nil, "xyz", "Payhook-Body-Length is 2, the data 3 bytes"},
		"truncated, no sum":   {func(h nats.Header) { h[RawHeaderBodyTruncated] = []string{"true"} }, "xy", "not a hex SHA-256"},
		"truncated, odd":      {func(h nats.Header) { h[RawHeaderBodyTruncated] = []string{"yes"} }, "xy", `want "true" or absent`},
		"header without ':'":  {func(h nats.Header) { h[RawHeaderRequestHeader] = []string{"Name"} }, "xy", "no ':'"},
		"header without name": {func(h nats.Header) { h[RawHeaderRequestHeader] = []string{": v"} }, "xy", "bad name"},
	} {
		t.Run(name, func(t *testing.T) {
			h := good()
			if tc.edit != nil {
				tc.edit(h)
			}
			_, err := DecodeRawRecord(h, []byte(tc.data))
			if err == nil || !errors.Is(err, ErrRawRecord) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an ErrRawRecord naming %q", err, tc.want)
			}
		})
	}
}

// Records stored before this format (JSON, body as a string or base64)
// still decode.
func TestDecodeRawRecordJSON(t *testing.T) {
	data := `{"received_at":"2026-11-23T10:00:00Z","provider":"jpglo","account":"glo-in","kind":"payin","method":"POST","path":"/v1/callbacks/jpglo/glo-in/payin",` +
		`"remote_addr":"203.0.113.7:5000","headers":{"Content-Type":["application/json"]},"body_base64":"/wD+","verdict":"rejected","reason":"bad_signature","status":401,"duration_ms":1.5}`
	r, err := DecodeRawRecord(nats.Header{}, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Body, []byte{0xff, 0x00, 0xfe}) || r.Reason != "bad_signature" || r.Status != 401 || r.Headers["Content-Type"][0] != "application/json" {
		t.Errorf("decoded %+v", r)
	}
}

// FuzzDecodeRawRecord feeds arbitrary header blocks and data to the
// decoder (never a panic; what decodes re-encodes to the same record), and
// round-trips records built from arbitrary fields through the wire form.
func FuzzDecodeRawRecord(f *testing.F) {
	f.Add([]byte("NATS/1.0\r\nPayhook-Record: 1\r\nPayhook-Verdict: rejected\r\n\r\n"), []byte("body"), "/v1/callbacks/x", "X-A", "v", []byte{0, 1, 0xff})
	f.Add([]byte("NATS/1.0\r\n\r\n"), []byte(`{"verdict":"accepted"}`), "/%41", "X:B", " %zz\t", []byte{})
	f.Fuzz(func(t *testing.T, block, data []byte, path, hname, hvalue string, body []byte) {
		if h, err := nats.DecodeHeadersMsg(block); err == nil {
			if r, err := DecodeRawRecord(h, data); err == nil && h[RawHeaderFormat] != nil {
				again, err := DecodeRawRecord(wire(t, EncodeRawRecord("s", &r).Header), r.Body)
				if err != nil {
					t.Fatalf("a decoded record does not re-decode: %v", err)
				}
				if !reflect.DeepEqual(again, r) {
					t.Fatalf("re-encoding changed the record:\n %+v\n %+v", again, r)
				}
			}
		}
		if hname == "" {
			hname = "X"
		}
		r := RawRecord{ReceivedAt: time.Unix(1700000000, 5).UTC(), Provider: "p", Account: hvalue, Kind: "k", Method: "POST", Path: path,
			RemoteAddr: hvalue, ClientIP: path, Headers: map[string][]string{hname: {hvalue, path}},
			Body: body, BodyLength: int64(len(body)), Verdict: "rejected", Reason: hvalue, Status: 400}
		if r.Body == nil {
			r.Body = []byte{}
		}
		if dropHeaders[hname] {
			r.Headers = map[string][]string{}
		}
		got, err := DecodeRawRecord(wire(t, EncodeRawRecord("s", &r).Header), r.Body)
		if err != nil {
			t.Fatalf("encoded record does not decode: %v", err)
		}
		if r.Reason == "" {
			r.Reason = "" // absent header: decodes as empty, same value
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip differs:\n got  %+v\n want %+v", got, r)
		}
	})
}

// Every verdict's records have a stream: rejected on PAYHOOK_RAW_REJECTED,
// every other one on PAYHOOK_RAW (natsbus.RawResults).
func TestEveryVerdictHasARawStream(t *testing.T) {
	for _, v := range []string{VerdictAccepted, VerdictDuplicate, VerdictStale, VerdictConflict, VerdictIgnored, VerdictUnavailable} {
		if !slices.Contains(natsbus.RawResults, v) {
			t.Errorf("verdict %q is not among PAYHOOK_RAW's results %v", v, natsbus.RawResults)
		}
	}
	if slices.Contains(natsbus.RawResults, VerdictRejected) || natsbus.SubjectRawRejected != "payhook.raw.*."+VerdictRejected {
		t.Errorf("rejected records must be on PAYHOOK_RAW_REJECTED only")
	}
}

// BenchmarkEncodeRawRecord is the per-request cost of rendering a record
// (a 1 KiB callback with five request headers).
func BenchmarkEncodeRawRecord(b *testing.B) {
	r := RawRecord{ReceivedAt: time.Now(), Provider: "jpglo", Account: "glo-in", Kind: "payin", Method: "POST",
		Path: "/v1/callbacks/jpglo/glo-in/payin", RemoteAddr: "203.0.113.7:5000", ClientIP: "203.0.113.7",
		Headers: map[string][]string{"Content-Type": {"application/json"}, "User-Agent": {"Go-http-client/1.1"}, "Accept-Encoding": {"gzip"},
			"Content-Length": {"1024"}, "X-Forwarded-For": {"198.51.100.1"}},
		Body: bytes.Repeat([]byte("a"), 1024), BodyLength: 1024, Verdict: "accepted", Status: 200, EventID: "evt_0123456789abcdef", DurationMS: 1.5}
	b.ReportAllocs()
	for b.Loop() {
		_ = EncodeRawRecord("payhook.raw.jpglo.accepted", &r)
	}
}
