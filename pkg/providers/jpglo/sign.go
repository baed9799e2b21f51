package jpglo

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/payhook/payhook/pkg/providers/internal/md5sign"
)

// Sign computes the jpglo signature of params under key (seed 签名步骤):
// every field whose value is not nil, sorted by name in ASCII order, joined
// as name=value with "&", then "&key=" + key, MD5, upper-case hex. Empty
// strings are included ("remark="). A "sign" entry in params is ignored, so a
// whole decoded body can be passed. Values are rendered by PyStr.
func Sign(params map[string]any, key string) string {
	return md5sign.Upper(SigningString(params, key))
}

// SigningString is the text Sign hashes: the sorted, non-nil fields other
// than "sign" as name=PyStr(value), joined with "&", then "&key=" + key.
// It contains the key: never log it.
func SigningString(params map[string]any, key string) string {
	names := make([]string, 0, len(params))
	for k, v := range params {
		if k == "sign" || isNil(v) {
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names) // byte-wise: the seed's "ASCII 升序"
	// One builder, values written in place (this runs for every callback):
	// the same text as md5sign.SortedString over PyStr of each value.
	var b strings.Builder
	b.Grow(256 + len(key))
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte('=')
		if s, ok := params[k].(string); ok {
			b.WriteString(s)
		} else {
			writePy(&b, params[k])
		}
		b.WriteByte('&')
	}
	b.WriteString("key=")
	b.WriteString(key)
	return b.String()
}

// PyStr renders v the way jpglo's Python server prints a decoded JSON value
// with str(): strings as they are, integers plainly, booleans True/False,
// nil None, floats as Python's repr, lists and dicts as Python's repr
// (['a', 'b'], {'k': 1}). The list form was checked against the
// seed's appeal request. Go maps have no order, so dict keys are sorted;
// Verify refuses nested objects rather than guess their order.
//
// Accepted types: string, json.Number, bool, nil, every int, uint and float
// kind, slices/arrays of those, and map[string]any; anything else is
// rendered with fmt.Sprint.
func PyStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var b strings.Builder
	writePy(&b, v)
	return b.String()
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// writePy writes repr(v) for anything but a top-level string (PyStr handles that).
func writePy(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case string:
		writePyRepr(b, x)
	case json.Number:
		b.WriteString(pyNumber(string(x)))
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case float64:
		b.WriteString(pyFloat(x))
	case float32:
		b.WriteString(pyFloat(float64(x)))
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writePyRepr(b, k)
			b.WriteString(": ")
			writePy(b, x[k])
		}
		b.WriteByte('}')
	default:
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			b.WriteString(strconv.FormatInt(rv.Int(), 10))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			b.WriteString(strconv.FormatUint(rv.Uint(), 10))
		case reflect.Slice, reflect.Array:
			if rv.Kind() == reflect.Slice && rv.IsNil() {
				b.WriteString("None")
				return
			}
			b.WriteByte('[')
			for i := 0; i < rv.Len(); i++ {
				if i > 0 {
					b.WriteString(", ")
				}
				writePy(b, rv.Index(i).Interface())
			}
			b.WriteByte(']')
		case reflect.Pointer:
			if rv.IsNil() {
				b.WriteString("None")
				return
			}
			writePy(b, rv.Elem().Interface())
		default:
			fmt.Fprint(b, v)
		}
	}
}

// pyNumber renders a JSON number as Python's json.loads + str would: an
// integer literal stays as written (Python ints are unbounded; "-0" is 0),
// anything with a fraction or exponent becomes a Python float.
func pyNumber(s string) string {
	if isIntLiteral(s) {
		if strings.Trim(s, "-0") == "" {
			return "0"
		}
		return s
	}
	// float64 here reproduces Python's own float conversion for the signing
	// text only; amounts never take this path (they must be integer literals).
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return s
	}
	return pyFloat(f)
}

// pyFloat is Python 3's repr(float): the shortest round-tripping digits, in
// fixed notation with at least ".0" when the decimal exponent is in
// [-4, 16), otherwise scientific with a two-digit exponent ("1e+16", "1e-05").
func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX, Go pads the exponent to 2 digits like C
	i := strings.LastIndexByte(e, 'e')
	exp, _ := strconv.Atoi(e[i+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

func isIntLiteral(s string) bool {
	d := strings.TrimPrefix(s, "-")
	if d == "" {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

// writePyRepr writes Python 3's repr(str): single quotes unless the text
// holds a single quote and no double quote; backslash escapes for the quote,
// backslash, \t \n \r, other control and non-printable characters as \xNN,
// \uNNNN or \UNNNNNNNN; printable non-ASCII characters as they are.
func writePyRepr(b *strings.Builder, s string) {
	quote := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	b.WriteRune(quote)
	for _, r := range s {
		switch {
		case r == quote || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(b, `\x%02x`, r)
		case r < 0x7f:
			b.WriteRune(r)
		case unicode.IsPrint(r): // Go's IsPrint matches str.isprintable: no Z* but ' ', no C*
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			fmt.Fprintf(b, `\U%08x`, r)
		}
	}
	b.WriteRune(quote)
}
