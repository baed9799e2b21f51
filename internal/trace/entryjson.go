package trace

import (
	"encoding/json"
	"strconv"
	"time"
)

// marshal renders e exactly as json.Marshal does. The dispatcher writes an
// entry per delivery attempt, and reflection was most of the cost of
// writing one; the common case (plain ASCII text, a time within years
// 0–9999, a latency written without an exponent) is appended by hand and
// anything else goes to json.Marshal. TestMarshalMatchesJSON holds the two
// to the same bytes.
func (e *Entry) marshal() []byte {
	if b, ok := e.appendJSON(make([]byte, 0, 320)); ok {
		return b
	}
	b, _ := json.Marshal(e)
	return b
}

// appendJSON appends e's fields in declaration order, omitempty as tagged;
// ok is false when a value needs json.Marshal's escaping or formatting.
func (e *Entry) appendJSON(b []byte) (_ []byte, ok bool) {
	if y := e.At.Year(); y < 0 || y > 9999 {
		return b, false
	}
	ok = true
	str := func(name, v string, omit bool) {
		if omit && v == "" {
			return
		}
		if !plain(v) {
			ok = false
			return
		}
		b = append(b, name...)
		b = append(b, '"')
		b = append(b, v...)
		b = append(b, '"')
	}
	num := func(name string, v int64) {
		if v != 0 {
			b = append(b, name...)
			b = strconv.AppendInt(b, v, 10)
		}
	}
	str(`{"type":`, e.Type, false)
	b = append(b, `,"at":"`...)
	b = e.At.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	str(`,"raw_stream":`, e.RawStream, true)
	if e.RawSeq != 0 {
		b = append(b, `,"raw_seq":`...)
		b = strconv.AppendUint(b, e.RawSeq, 10)
	}
	str(`,"verdict":`, e.Verdict, true)
	str(`,"reason":`, e.Reason, true)
	if e.Unverified {
		b = append(b, `,"unverified":true`...)
	}
	str(`,"event_id":`, e.EventID, true)
	str(`,"kind":`, e.Kind, true)
	str(`,"event_status":`, e.EventStatus, true)
	str(`,"origin":`, e.Origin, true)
	if e.EventSeq != 0 {
		b = append(b, `,"event_seq":`...)
		b = strconv.AppendUint(b, e.EventSeq, 10)
	}
	str(`,"subscriber":`, e.Subscriber, true)
	num(`,"attempt":`, int64(e.Attempt))
	num(`,"http_status":`, int64(e.HTTPStatus))
	if f := e.LatencyMS; f != 0 {
		// json.Marshal writes 1e-6 ≤ |f| < 1e21 without an exponent.
		if a := max(f, -f); a < 1e-6 || a >= 1e21 {
			return b, false
		}
		b = append(b, `,"latency_ms":`...)
		b = strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	str(`,"error":`, e.Error, true)
	str(`,"outcome":`, e.Outcome, true)
	num(`,"status":`, int64(e.Status))
	return append(b, '}'), ok
}

// plain reports whether json.Marshal writes s between quotes as it is:
// printable ASCII but for the quote, the backslash and the HTML characters
// it escapes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
