package cashypro

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/strictjson"
)

// maxDepth bounds nesting; CashyPro's objects are flat apart from the query
// reply's "data".
const maxDepth = 16

// object is a JSON object with each top-level value kept exactly as written,
// so that a number like 20000.00 keeps its digits for signing and money.
type object struct {
	b    []byte
	keys []string
	// fields is the whole object decoded, numbers as json.Number (their exact
	// digits), strings unescaped.
	fields map[string]any
	// raw holds the top-level values' bytes; built only when a nested object
	// or array needs its exact text (rare: the query reply's "data").
	raw map[string]json.RawMessage
}

// parseObject reads one JSON object. It refuses duplicate keys at any depth
// (the standard decoder silently keeps the last one, so the signer and we
// could read different values from the same bytes), nesting deeper than
// maxDepth and anything after the object (strictjson).
func parseObject(b []byte) (*object, error) {
	fields, err := strictjson.DecodeObject(b, maxDepth)
	if err != nil {
		if errors.Is(err, strictjson.ErrTooDeep) {
			return nil, fmt.Errorf("%w: %v", strictjson.ErrSyntax, err)
		}
		return nil, err
	}
	o := &object{b: b, fields: fields, keys: make([]string, 0, len(fields))}
	for k := range fields {
		o.keys = append(o.keys, k)
	}
	return o, nil
}

// rawOf returns the exact bytes of a top-level value (nil when absent).
func (o *object) rawOf(key string) json.RawMessage {
	if o.raw == nil {
		o.raw = map[string]json.RawMessage{}
		// b is a valid object without duplicate keys (strictjson).
		if err := json.Unmarshal(o.b, &o.raw); err != nil {
			return nil
		}
	}
	return o.raw[key]
}

// text returns a scalar field as text: a string unquoted, a number or bool
// exactly as written. ok is false when the key is absent or null. Objects
// and arrays are an error.
func (o *object) text(key string) (s string, ok bool, err error) {
	switch v := o.fields[key].(type) {
	case nil:
		return "", false, nil // absent or null
	case string:
		return v, true, nil
	case json.Number:
		return string(v), true, nil // the digits as written
	case bool:
		return strconv.FormatBool(v), true, nil // true/false as written
	default:
		return "", false, fmt.Errorf("%s is not a scalar", key)
	}
}

// clip bounds a provider-supplied value quoted in an error.
func clip(s string) string { return providers.Clip(s, 32) }
