package providersim

import (
	"fmt"
	"net/http"
)

// payload is one callback as it goes on the wire.
type payload struct {
	header http.Header
	body   []byte
}

// build renders the callback the provider sends for ord in status, through
// its simulated side. Called with s.mu held; ord's fields are stable.
func build(ord *order, status Outcome, corrupt bool) (payload, error) {
	if sp, ok := simulated[ord.o.Provider]; ok {
		return buildSimulated(sp, ord, status, corrupt)
	}
	return payload{}, fmt.Errorf("%w: %s has no simulated side", ErrUnsupported, ord.o.Provider)
}

// ackOf reports whether reply is what the provider takes as "received"
// (providers.Simulated.SimAcked).
func ackOf(provider string, status int, body []byte) bool {
	if sp, ok := simulated[provider]; ok {
		return sp.SimAcked(status, body)
	}
	return false
}
