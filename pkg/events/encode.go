package events

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendCloudEvent renders the CloudEvent envelope of e without reflection:
// it runs once per stored event, on the hot path. The output is byte for
// byte what encoding/json produces for e.Envelope() with SetEscapeHTML(false)
// (json.Marshal differs only in escaping <, > and &);
// FuzzEncoderMatchesEncodingJSON holds the two equal, conflicts included.
//
// Why hand-written: on the typical 860-byte jpglo pay-in (10 provider
// fields), go test ./pkg/events -bench MarshalCloudEvent on the 2-core
// reference box gives
//
//	BenchmarkMarshalCloudEvent              2.2–2.5 µs/op  1232 B/op   3 allocs/op
//	BenchmarkMarshalCloudEventEncodingJSON  5.4–6.0 µs/op  2288 B/op  29 allocs/op
//
// 2.4× faster with a tenth of the allocations, and the encode is 4–5 % of
// ingress CPU at max load even so (docs/benchmarks.md, ingress profile):
// encoding/json would make it about the size of the publish's own share.
func (e *Event) appendCloudEvent(b []byte, id string) ([]byte, error) {
	b, err := e.appendHead(b, id, e.Type())
	if err != nil {
		return nil, err
	}
	if b, err = e.appendData(b); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendConflict renders the conflict CloudEvent (ConflictEnvelope) the
// same way: the event's data plus the terminal fact that stands.
func (e *Event) appendConflict(b []byte, id string, prevStatus Status, prevID string) ([]byte, error) {
	b, err := e.appendHead(b, id, "payhook."+string(e.Kind)+"."+string(StatusConflict))
	if err != nil {
		return nil, err
	}
	if b, err = e.appendData(b); err != nil {
		return nil, err
	}
	b = b[:len(b)-1] // reopen the data object
	b = append(b, `,"previous_status":`...)
	b = appendString(b, string(prevStatus))
	b = append(b, `,"previous_event_id":`...)
	b = appendString(b, prevID)
	return append(b, '}', '}'), nil
}

// appendHead writes the envelope's attributes up to "data":.
func (e *Event) appendHead(b []byte, id, typ string) ([]byte, error) {
	b = append(b, `{"specversion":"1.0","id":`...)
	b = appendString(b, id)
	b = append(b, `,"source":`...)
	b = appendString(b, e.Source())
	b = append(b, `,"type":`...)
	b = appendString(b, typ)
	if e.MerchantOrderID != "" {
		b = append(b, `,"subject":`...)
		b = appendString(b, e.MerchantOrderID)
	}
	b = append(b, `,"time":`...)
	b, err := appendTime(b, e.ReceivedAt.UTC())
	if err != nil {
		return nil, err
	}
	return append(b, `,"datacontenttype":"application/json","data":`...), nil
}

func (e *Event) appendData(b []byte) ([]byte, error) {
	b = append(b, `{"provider":`...)
	b = appendString(b, e.Provider)
	b = append(b, `,"account":`...)
	b = appendString(b, e.Account)
	b = append(b, `,"kind":`...)
	b = appendString(b, string(e.Kind))
	b = append(b, `,"status":`...)
	b = appendString(b, string(e.Status))
	b = append(b, `,"merchant_order_id":`...)
	b = appendString(b, e.MerchantOrderID)
	if e.ProviderOrderID != "" {
		b = append(b, `,"provider_order_id":`...)
		b = appendString(b, e.ProviderOrderID)
	}
	if e.Reference != "" {
		b = append(b, `,"reference":`...)
		b = appendString(b, e.Reference)
	}
	b = append(b, `,"amount":`...)
	b = appendMoney(b, e.Amount)
	if e.RequestedAmount != nil {
		b = append(b, `,"requested_amount":`...)
		b = appendMoney(b, *e.RequestedAmount)
	}
	b = append(b, `,"amount_mismatch":`...)
	b = strconv.AppendBool(b, e.AmountMismatch)
	var err error
	b = append(b, `,"occurred_at":`...)
	if b, err = appendTime(b, e.OccurredAt); err != nil {
		return nil, err
	}
	b = append(b, `,"received_at":`...)
	if b, err = appendTime(b, e.ReceivedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"origin":`...)
	b = appendString(b, string(e.Origin))
	if len(e.ProviderFields) > 0 {
		b = append(b, `,"provider_fields":`...)
		if b, err = appendAny(b, e.ProviderFields); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendAny encodes a decoded provider field as encoding/json would (maps
// with sorted keys); the common shapes of decoded callbacks are written
// directly, anything else goes through encoding/json. It is the bulk of
// appendCloudEvent's saving: through reflection, provider_fields are most of
// encoding/json's 29 allocations per event.
func appendAny(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case json.Number:
		if !isNumber(string(v)) {
			break // encoding/json reports it ("invalid number literal")
		}
		return append(b, v...), nil
	case map[string]any:
		if v == nil {
			return append(b, "null"...), nil
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendAny(b, v[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendAny(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, raw...), nil
}

// isNumber reports whether s is a JSON number literal (the grammar
// encoding/json checks a json.Number against): -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}

func appendMoney(b []byte, m Money) []byte {
	b = append(b, `{"value":`...)
	b = appendString(b, m.Value)
	b = append(b, `,"currency":`...)
	b = appendString(b, m.Currency)
	return append(b, '}')
}

// appendTime writes t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds); like it, it refuses years outside 0..9999, which no reader
// could parse back.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("%w: time %s has a year outside 0..9999", ErrInvalid, t.UTC().Format(time.RFC3339))
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD, and U+2028/U+2029
// escaped (as encoding/json does, for JavaScript consumers).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendJSONString appends s to b as a JSON string (quoted and escaped,
// invalid UTF-8 replaced by U+FFFD), for encoders on the hot path that avoid
// reflection.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }
