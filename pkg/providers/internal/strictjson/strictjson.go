// Package strictjson reads one JSON object from untrusted bytes the strict
// way the provider packages need: exact numbers (json.Number), no duplicate
// key at any depth, bounded nesting, nothing after the object.
//
// The standard decoder keeps the last of duplicate keys silently (and
// Python's json.loads does too), but a signer and a reader disagreeing about
// which one counts is how signature and decryption checks get bypassed, so
// a duplicate is refused instead. Errors carry no body bytes; a duplicate
// key is quoted clipped to 32 bytes.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Error classes. Every error DecodeObject returns wraps exactly one of
// ErrSyntax, ErrNotObject, ErrDuplicate or ErrTooDeep; trailing data wraps
// ErrTrailing as well as ErrSyntax.
var (
	// ErrSyntax is input that is not JSON (or not one JSON value).
	ErrSyntax = errors.New("invalid JSON")
	// ErrTrailing is data after the object.
	ErrTrailing = errors.New("data after the object")
	// ErrNotObject is JSON whose top-level value is not an object.
	ErrNotObject = errors.New("not a JSON object")
	// ErrDuplicate is a key repeated within one object.
	ErrDuplicate = errors.New("duplicate key")
	// ErrTooDeep is nesting beyond the caller's limit.
	ErrTooDeep = errors.New("nested too deep")
)

// DecodeObject decodes b as exactly one JSON object into map[string]any.
// Values are string, json.Number (the exact digits), bool, nil, []any
// (never nil) and map[string]any. The top-level object is nesting level 1;
// an object or array that would open level maxDepth+1 is ErrTooDeep.
// Invalid UTF-8 is not refused here (encoding/json replaces it in strings);
// callers that must refuse it check first.
func DecodeObject(b []byte, maxDepth int) (map[string]any, error) {
	if m, ok := fastDecode(b, maxDepth); ok {
		return m, nil
	}
	return slowDecode(b, maxDepth)
}

// fastDecode handles the common case, a valid object within maxDepth and
// without duplicate keys, without the token-by-token reader (several times
// faster; callbacks are on the hot path). Anything else returns ok=false and
// goes through slowDecode, which finds and names the problem.
//
// Duplicates are found by counting: every ':' outside a string in valid JSON
// separates a key from its value, so the document has as many keys as such
// colons; decoding into maps merges duplicates, so the maps hold fewer keys
// exactly when some object repeats one.
func fastDecode(b []byte, maxDepth int) (map[string]any, bool) {
	keys, depth, first := scan(b)
	if first != '{' || depth > maxDepth || !json.Valid(b) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	if countKeys(m) != keys {
		return nil, false
	}
	return m, true
}

// scan returns the number of ':' outside strings, the deepest nesting of
// objects and arrays, and the first non-space byte.
func scan(b []byte) (colons, maxDepth int, first byte) {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		if first == 0 {
			first = c
		}
		switch c {
		case '"':
			inString = true
		case ':':
			colons++
		case '{', '[':
			depth++
			maxDepth = max(maxDepth, depth)
		case '}', ']':
			depth--
		}
	}
	return colons, maxDepth, first
}

func countKeys(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := len(v)
		for _, e := range v {
			n += countKeys(e)
		}
		return n
	case []any:
		n := 0
		for _, e := range v {
			n += countKeys(e)
		}
		return n
	default:
		return 0
	}
}

// slowDecode reads token by token, rejecting duplicate keys, depth beyond
// maxDepth and trailing data with a precise error.
func slowDecode(b []byte, maxDepth int) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, syntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, ErrNotObject
	}
	r := reader{dec: dec, maxDepth: maxDepth}
	m, err := r.members(1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, ErrTrailing)
	}
	return m, nil
}

func syntax(err error) error { return fmt.Errorf("%w: %v", ErrSyntax, err) }

// depthError is ErrTooDeep, worded with the limit: "nested deeper than 16".
type depthError int

func (e depthError) Error() string        { return fmt.Sprintf("nested deeper than %d", int(e)) }
func (e depthError) Is(target error) bool { return target == ErrTooDeep }

type reader struct {
	dec      *json.Decoder
	maxDepth int
}

// members reads the members of an object whose '{' was consumed; depth is
// that object's nesting level.
func (r reader) members(depth int) (map[string]any, error) {
	m := map[string]any{}
	for r.dec.More() {
		tok, err := r.dec.Token()
		if err != nil {
			return nil, syntax(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: object key is not a string", ErrSyntax)
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("%w %q", ErrDuplicate, clip(key))
		}
		v, err := r.value(depth)
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
	if _, err := r.dec.Token(); err != nil { // the closing '}'
		return nil, syntax(err)
	}
	return m, nil
}

// value reads one value inside a container at nesting level depth.
func (r reader) value(depth int) (any, error) {
	tok, err := r.dec.Token()
	if err != nil {
		return nil, syntax(err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	if depth >= r.maxDepth {
		return nil, depthError(r.maxDepth)
	}
	switch d {
	case '{':
		return r.members(depth + 1)
	case '[':
		list := []any{}
		for r.dec.More() {
			v, err := r.value(depth + 1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		if _, err := r.dec.Token(); err != nil { // the closing ']'
			return nil, syntax(err)
		}
		return list, nil
	default:
		return nil, fmt.Errorf("%w: unexpected %v", ErrSyntax, d)
	}
}

// NumbersAsText returns v with every json.Number replaced by its exact
// text, recursively through maps and slices (which are copied), as
// provider_fields carry them ("amount": "20000.00").
func NumbersAsText(v any) any {
	switch v := v.(type) {
	case json.Number:
		return string(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = NumbersAsText(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = NumbersAsText(e)
		}
		return out
	default:
		return v
	}
}

// clip bounds a provider-supplied key quoted in an error.
func clip(s string) string {
	if len(s) > 32 {
		s = strings.ToValidUTF8(s[:32], "") + "…"
	}
	return s
}
