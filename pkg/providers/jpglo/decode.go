package jpglo

import (
	"errors"
	"unicode/utf8"

	"github.com/payhook/payhook/pkg/providers/internal/strictjson"
)

// maxDepth bounds nesting in decoded JSON; jpglo bodies are flat (a list of
// receipt URLs is the deepest thing the seed shows), so 16 is generous.
const maxDepth = 16

var (
	errNotObject = errors.New("body is not a JSON object")
	errDupKey    = errors.New("duplicate key")
	errTooDeep   = errors.New("nesting too deep")
	errTrailing  = errors.New("data after the JSON object")
	errUTF8      = errors.New("body is not valid UTF-8")
	errSyntax    = errors.New("invalid JSON")
)

// decodeObject decodes b as exactly one JSON object into map[string]any,
// keeping numbers as json.Number (their exact digits). A key repeated in
// any object is an error (strictjson): Python's json.loads keeps the last
// duplicate and Go's the last too, but a signer and a reader disagreeing
// about which one counts is how forgeries start. Invalid UTF-8 is refused
// too. Errors are this package's fixed ones and carry no body bytes.
func decodeObject(b []byte) (map[string]any, error) {
	if !utf8.Valid(b) {
		return nil, errUTF8
	}
	obj, err := strictjson.DecodeObject(b, maxDepth)
	switch {
	case err == nil:
		return obj, nil
	case errors.Is(err, strictjson.ErrTrailing):
		return nil, errTrailing
	case errors.Is(err, strictjson.ErrNotObject):
		return nil, errNotObject
	case errors.Is(err, strictjson.ErrDuplicate):
		return nil, errDupKey
	case errors.Is(err, strictjson.ErrTooDeep):
		return nil, errTooDeep
	default:
		return nil, errSyntax
	}
}
