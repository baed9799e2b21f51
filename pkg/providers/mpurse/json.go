package mpurse

import (
	"errors"

	"github.com/payhook/payhook/pkg/providers/internal/strictjson"
)

// maxDepth bounds nesting in decrypted JSON; MPurse's object is flat.
const maxDepth = 16

// decodeObject decodes one JSON object with exact numbers (json.Number),
// refusing duplicate keys at any depth and anything after the object
// (strictjson). The standard decoder keeps the last of duplicate keys
// silently; two parties reading the same bytes differently is how signature
// and decryption checks get bypassed, so we refuse instead.
func decodeObject(b []byte) (map[string]any, error) {
	return strictjson.DecodeObject(b, maxDepth)
}

// isSyntaxError tells plaintext that is not a JSON object at all (as
// opposed to JSON of the wrong shape: a duplicate key, too deep).
func isSyntaxError(err error) bool {
	return errors.Is(err, strictjson.ErrSyntax) || errors.Is(err, strictjson.ErrNotObject)
}
