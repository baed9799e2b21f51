package providersim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"

	"github.com/payhook/payhook/pkg/events"
)

// payload is one callback as it goes on the wire.
type payload struct {
	header http.Header
	body   []byte
}

// build renders the callback the provider sends for ord in status. Called
// with s.mu held; ord's fields are stable.
func build(ord *order, status Outcome, corrupt bool) (payload, error) {
	if sp, ok := simulated[ord.o.Provider]; ok {
		return buildSimulated(sp, ord, status, corrupt)
	}
	switch ord.o.Provider {
	}
	return payload{}, fmt.Errorf("%w: %s sends no callbacks", ErrUnsupported, ord.o.Provider)
}

// corruptHex flips the first hex digit of a signature, keeping its case.
func corruptHex(sign string) string {
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

func minor(m events.Money, places int) json.Number {
	n, err := m.Minor(places)
	if err != nil {
		return json.Number("0") // CreateOrder checked the precision
	}
	return json.Number(n.String())
}

type kv struct {
	k string
	v any
}

// marshalOrdered writes a JSON object with keys in the given order.
func marshalOrdered(f []kv) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ackOf reports whether reply is the provider's "received": jpglo
// {"status":0,...}; mrnpay HTTP 200 "success"; mpurse "SUCCESS"; cashypro
// HTTP 200, 301 or 302 whatever the body.
func ackOf(provider string, status int, body []byte) bool {
	if sp, ok := simulated[provider]; ok {
		return sp.SimAcked(status, body)
	}
	switch provider {
	}
	return false
}

func bigInt(n int64) *big.Int { return big.NewInt(n) }
