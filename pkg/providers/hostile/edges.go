package hostile

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/internal/simwire"
)

// UnicodeEdges are strings at unicode's edges: bidi controls, zero-width
// joiners, combining marks, emoji, NUL, line separators, a BOM in the middle.
var UnicodeEdges = []string{
	"\u202eevil\u202c", // right-to-left override … pop
	"Asha\u200fVerma",  // right-to-left mark
	"\U0001F468\u200d\U0001F469\u200d\U0001F467", // family emoji joined with ZWJ
	"Jose\u0301 Zoe\u0308",                       // combining acute and diaeresis
	"Z\u0337\u0322a\u0335l\u0336g\u0337o\u0338",  // stacked combining marks
	"\U0001F4B8\U0001F642 pay",                   // emoji
	"nul\x00byte",                                // NUL (escaped as \u0000 in JSON)
	"line\u2028sep\u2029para",                    // JavaScript line terminators
	"zero\u200bwidth\ufeffbom",                   // zero-width space, BOM mid-string
	"\u0645\u062d\u0645\u062f",                   // Arabic (RTL script)
}

// IDEdgesOK and IDEdgesBad split UnicodeEdges by whether an order id
// carrying one is acceptable to events.ValidOrderID: printable characters
// (emoji, combining marks, RTL script) are; controls, format characters
// (bidi overrides, zero-width) and line separators are not, and ingress
// refuses them as invalid_event.
var IDEdgesOK, IDEdgesBad = splitIDEdges()

func splitIDEdges() (ok, bad []string) {
	for _, e := range UnicodeEdges {
		if events.ValidOrderID("BI-1" + e) {
			ok = append(ok, e)
		} else {
			bad = append(bad, e)
		}
	}
	return ok, bad
}

// InvalidUTF8 are byte sequences that are not UTF-8: a stray continuation
// byte, overlong forms, a surrogate, a code point past U+10FFFF, a cut sequence.
var InvalidUTF8 = []string{"\xff", "\xc3\x28", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}

// OtherContentTypes are Content-Type values no callback decoder reads.
var OtherContentTypes = []string{"text/plain", "application/xml", "text/html; charset=iso-8859-1",
	"multipart/form-data; boundary=x", "application/octet-stream", "", "application/json; charset=utf-16"}

// Latin1 is b (UTF-8) in ISO 8859-1, '?' for what it cannot spell.
func Latin1(b []byte) []byte {
	var out []byte
	for _, r := range string(b) {
		if r < 256 {
			out = append(out, byte(r))
		} else {
			out = append(out, '?')
		}
	}
	return out
}

// UTF16 is b (UTF-8) in UTF-16, big or little endian, with or without a BOM.
func UTF16(b []byte, bigEndian, bom bool) []byte {
	u := utf16.Encode([]rune(string(b)))
	if bom {
		u = append([]uint16{0xFEFF}, u...)
	}
	out := make([]byte, 0, 2*len(u))
	for _, x := range u {
		if bigEndian {
			out = append(out, byte(x>>8), byte(x))
		} else {
			out = append(out, byte(x), byte(x>>8))
		}
	}
	return out
}

// Nested is inner inside depth opens and closes.
func Nested(depth int, open, close, inner string) string {
	return strings.Repeat(open, depth) + inner + strings.Repeat(close, depth)
}

// BumpDigits changes a raw JSON number or digit string so that it differs.
func BumpDigits(raw string) string {
	if strings.HasSuffix(raw, `"`) {
		return raw[:len(raw)-1] + `1"`
	}
	return raw + "1"
}

// FlipHex is another hex digit than c.
func FlipHex(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

// ClipName shortens a long raw value for a mutation's name.
func ClipName(s string) string {
	if len(s) > 24 {
		return s[:12] + "…(" + strconv.Itoa(len(s)) + " chars)"
	}
	return s
}

// Cents is minor units of a two-digit currency as a decimal: 12345 is "123.45".
func Cents(minor int) string { return simwire.Decimal(strconv.Itoa(minor), 2) }

// MinorUnitMax is 2^64, an amount past any 64-bit integer that is still an
// exact decimal within payhook's 40-digit limit: valid wherever amounts
// are integers of minor units.
const MinorUnitMax = "18446744073709551616"

// MinorUnitEdges are raw JSON amounts for a wire whose amounts are integer
// counts of minor units: out of range, in exponent form, negative, a
// fraction, a string, and MinorUnitMax.
var MinorUnitEdges = []string{"1" + strings.Repeat("0", 400), "1e400", "-100", "100.5", "1E2", "-0", `"100"`, MinorUnitMax}

// AddMinorUnitEdges adds a huge_number mutation named name per
// MinorUnitEdges value, which set writes into a fresh callback before
// signing: MinorUnitMax must be accepted, any other gets rejected(raw).
func AddMinorUnitEdges(ms *Mutations, name string, set func(c *Callback, raw string), rejected func(raw string) Want) {
	for _, raw := range MinorUnitEdges {
		want := Valid("2^64 minor units is an exact decimal: no overflow, within the 40-digit limit")
		if raw != MinorUnitMax {
			want = rejected(raw)
		}
		ms.Add(ClassHugeNumber, name+" "+ClipName(raw), BeforeSigning(want, func(g Gen, c *Callback) { set(c, raw) }))
	}
}

// UnixTimeEdges are raw JSON values that are not a unix time in seconds:
// out of range, negative, a fraction, a string.
var UnixTimeEdges = []string{"1e20", "-1", "99999999999999999999999", "1.5", `"1700000000"`}

// AddUnixTimeEdges adds a huge_number mutation named name per
// UnixTimeEdges value and per extra one, which set writes into a fresh
// callback before signing; each wants w.
func AddUnixTimeEdges(ms *Mutations, name string, extra []string, set func(c *Callback, raw string), w Want) {
	for _, raw := range append(slices.Clone(UnixTimeEdges), extra...) {
		ms.Add(ClassHugeNumber, name+" "+raw, BeforeSigning(w, func(g Gen, c *Callback) { set(c, raw) }))
	}
}
