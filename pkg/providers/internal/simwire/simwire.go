// Package simwire holds what the older providers' simulated sides
// (pkg/providers/<name>/sim.go) share: JSON objects with keys in a given
// order, exact amounts, corrupted signatures and bounded request reading.
// Package hostile writes its amounts with Decimal too.
package simwire

import (
	"bytes"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/payhook/payhook/pkg/events"
)

// MaxRequest bounds a merchant API request body.
const MaxRequest = 64 << 10

// KV is one key of an ordered JSON object.
type KV struct {
	K string
	V any
}

// Ordered writes a JSON object with keys in the given order.
func Ordered(f []KV) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.K)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(e.V)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// MustOrdered is Ordered for values that always marshal (strings,
// numbers, raw JSON); it renders an unmarshalable one as "{}".
func MustOrdered(f []KV) json.RawMessage {
	b, err := Ordered(f)
	if err != nil {
		return json.RawMessage("{}")
	}
	return b
}

// WriteJSON answers with the ordered object f.
func WriteJSON(w http.ResponseWriter, status int, f []KV) {
	b, err := Ordered(f)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// CorruptHex flips the first hex digit of a signature, keeping its case.
func CorruptHex(sign string) string {
	if sign == "" {
		return "0"
	}
	b := []byte(sign)
	switch {
	case b[0] == '0':
		b[0] = '1'
	case b[0] >= 'a' && b[0] <= 'f', b[0] >= 'A' && b[0] <= 'F':
		b[0]--
		if b[0] == 'a'-1 || b[0] == 'A'-1 {
			b[0] = '9'
		}
	default:
		b[0] = '0'
	}
	return string(b)
}

// Minor renders m as an integer count of 10^-places units (the simulator
// checked the precision when it created the order; "0" otherwise).
func Minor(m events.Money, places int) json.Number {
	n, err := m.Minor(places)
	if err != nil {
		return json.Number("0")
	}
	return json.Number(n.String())
}

// Fixed renders m with exactly places fraction digits ("20000.00").
func Fixed(m events.Money, places int) string {
	n, err := m.Minor(places)
	if err != nil {
		return m.Value
	}
	return Decimal(n.String(), places)
}

// Decimal places a decimal point places digits from the right of digits,
// a non-negative integer: Decimal("12345", 2) is "123.45", Decimal("5", 2)
// "0.05".
func Decimal(digits string, places int) string {
	if places == 0 {
		return digits
	}
	if len(digits) <= places {
		digits = strings.Repeat("0", places-len(digits)+1) + digits
	}
	return digits[:len(digits)-places] + "." + digits[len(digits)-places:]
}

// WrongMethod answers 405 with Allow: method, and reports true, when r is
// not a method request.
func WrongMethod(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return false
	}
	w.Header().Set("Allow", method)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return true
}

// ReadBody reads a request body of at most MaxRequest bytes.
func ReadBody(r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxRequest+1))
	return b, err == nil && len(b) <= MaxRequest
}

// DecodeFlat decodes a JSON object keeping numbers exact.
func DecodeFlat(b []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// EqualFold compares two signatures case-insensitively in constant time.
func EqualFold(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(a)), []byte(strings.ToLower(b))) == 1
}

// ValidMD5 reports whether s is 32 hex digits.
func ValidMD5(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 16
}

// IsDigits reports whether s is one or more ASCII digits.
func IsDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
