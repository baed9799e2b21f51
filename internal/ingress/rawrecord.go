package ingress

// The raw record: one inbound request as stored on PAYHOOK_RAW or
// PAYHOOK_RAW_REJECTED (its body as the message data, the rest as
// Payhook-* headers), and its encoding and decoding. raw.go decides when a
// request is recorded.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// RawRecord is one inbound request as received, with its verdict, as stored
// on payhook.raw.{provider}.{verdict}: PAYHOOK_RAW for the verdicts of
// requests that verified, PAYHOOK_RAW_REJECTED for rejected ones.
//
// On the bus a record is a NATS message whose data is the body exactly as
// received and whose headers are the envelope (RawHeader* below, every value
// percent-escaped; docs/operations.md "Raw record format"). EncodeRawRecord
// writes it, DecodeRawRecord reads it.
type RawRecord struct {
	ReceivedAt time.Time
	Provider   string
	Account    string
	Kind       string
	Method     string
	Path       string // the URL path, decoded
	RemoteAddr string // the socket peer, host:port
	// ClientIP is the address the account allowlist and the rejection
	// limiter judge: the socket peer, or the last address of
	// ingress.trusted_proxy_header when the peer is a trusted proxy.
	ClientIP string
	// Headers are the request headers, less the credentials of whoever
	// proxied the call (Authorization, Cookie, Proxy-Authorization).
	Headers map[string][]string
	// Body is the body as received, byte for byte; when BodyTruncated only
	// its first bytes (unrouted requests keep UnroutedBodyBytes).
	Body []byte
	// BodyLength is the length of the whole body as read. It is below the
	// real length only when the body was over ingress.body_limit: reading
	// stops at body_limit+1 bytes.
	BodyLength    int64
	BodyTruncated bool
	// BodySHA256 is the hex SHA-256 of the whole body as read; set when
	// BodyTruncated.
	BodySHA256 string
	Verdict    string
	Reason     string
	Status     int
	EventID    string
	// OrderID is the order id (merchant's, else the provider's) of a
	// rejected request that verified and decoded (too_old,
	// future_timestamp, invalid_event), so that the trace index can list
	// it under its order; empty otherwise.
	OrderID    string
	DurationMS float64
	// ClaimedOrderID is the order id that the bytes of a rejected request
	// that did not verify claim (providers.ClaimedOrder), so that the trace
	// index can list the refusal under that order, marked unverified: anyone
	// can claim any order. Set only for a configured account, when the id is
	// events.ValidOrderID and within its bounds (record); never with OrderID.
	ClaimedOrderID string
}

// Headers of a raw record message. RawFormat is the value of
// RawHeaderFormat: a reader refuses other values.
const (
	RawFormat = "1"

	RawHeaderFormat        = "Payhook-Record"
	RawHeaderReceivedAt    = "Payhook-Received-At" // RFC 3339, nanoseconds, UTC
	RawHeaderProvider      = "Payhook-Provider"
	RawHeaderAccount       = "Payhook-Account"
	RawHeaderKind          = "Payhook-Kind"
	RawHeaderMethod        = "Payhook-Method"
	RawHeaderPath          = "Payhook-Path"
	RawHeaderRemoteAddr    = "Payhook-Remote-Addr"
	RawHeaderClientIP      = "Payhook-Client-Ip"
	RawHeaderVerdict       = "Payhook-Verdict"
	RawHeaderReason        = "Payhook-Reason"   // absent when empty
	RawHeaderStatus        = "Payhook-Status"   // the HTTP status answered
	RawHeaderEventID       = "Payhook-Event-Id" // absent when empty
	RawHeaderOrderID       = "Payhook-Order-Id" // rejected after verifying only; absent otherwise
	RawHeaderDurationMS    = "Payhook-Duration-Ms"
	RawHeaderBodyLength    = "Payhook-Body-Length"
	RawHeaderBodyTruncated = "Payhook-Body-Truncated" // "true", absent otherwise
	RawHeaderBodySHA256    = "Payhook-Body-Sha256"    // with Payhook-Body-Truncated
	// RawHeaderRequestHeader is repeated, once per request header value:
	// "{name}: {value}", names in sorted order, values in received order.
	RawHeaderRequestHeader = "Payhook-Header"

	// RawHeaderClaimedOrderID: on a rejected record of a request that did
	// not verify only, the order id its bytes claim (never trusted); absent
	// otherwise.
	RawHeaderClaimedOrderID = "Payhook-Claimed-Order-Id"
)

// rawEnvelopeBytes bounds the envelope of a record besides the path and the
// request headers: the other Payhook-* headers, with a 64-byte event id and
// the longest IPv6 addresses, and a 128-byte (claimed) order id (TestRawRecordSize).
const rawEnvelopeBytes = 700

// EncodeRawRecord renders r as the message stored on subject: r.Body as
// the data, the rest as headers. Request headers named in dropHeaders are
// left out. The headers take at most len(path) + Σ(len(name)+len(value)+18)
// over the request headers + rawEnvelopeBytes, counting printable ASCII;
// a byte outside it is escaped to three.
func EncodeRawRecord(subject string, r *RawRecord) *nats.Msg {
	h := make(nats.Header, 20)
	// One backing array for every single-valued header, and one string for
	// every value rendered here (the time, the numbers and the request
	// header lines), each header a substring of it: a record is rendered
	// for every request.
	vals := make([]string, 0, 18)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	var nameBuf [16]string
	names := nameBuf[:0]
	n, size := 0, 0
	for k, vs := range r.Headers {
		if !dropHeaders[k] {
			names = append(names, k)
			n += len(vs)
			for _, v := range vs {
				size += escapedLen(k, true) + 2 + escapedLen(v, false)
			}
		}
	}
	slices.Sort(names)
	var sb strings.Builder
	sb.Grow(size + 96) // the time (35 bytes at most), status, duration and length
	var scratch [40]byte
	sb.Write(r.ReceivedAt.UTC().AppendFormat(scratch[:0], time.RFC3339Nano))
	atEnd := sb.Len()
	sb.Write(strconv.AppendInt(scratch[:0], int64(r.Status), 10))
	statusEnd := sb.Len()
	sb.Write(strconv.AppendFloat(scratch[:0], r.DurationMS, 'f', -1, 64))
	durationEnd := sb.Len()
	sb.Write(strconv.AppendInt(scratch[:0], r.BodyLength, 10))
	lengthEnd := sb.Len()
	for _, k := range names {
		for _, v := range r.Headers[k] {
			writeEscaped(&sb, k, true)
			sb.WriteString(": ")
			writeEscaped(&sb, v, false)
		}
	}
	all := sb.String()

	set(RawHeaderFormat, RawFormat)
	set(RawHeaderReceivedAt, all[:atEnd])
	set(RawHeaderProvider, escapeValue(r.Provider))
	set(RawHeaderAccount, escapeValue(r.Account))
	set(RawHeaderKind, escapeValue(r.Kind))
	set(RawHeaderMethod, escapeValue(r.Method))
	set(RawHeaderPath, escapeValue(r.Path))
	set(RawHeaderRemoteAddr, escapeValue(r.RemoteAddr))
	set(RawHeaderClientIP, escapeValue(r.ClientIP))
	set(RawHeaderVerdict, escapeValue(r.Verdict))
	if r.Reason != "" {
		set(RawHeaderReason, escapeValue(r.Reason))
	}
	set(RawHeaderStatus, all[atEnd:statusEnd])
	if r.EventID != "" {
		set(RawHeaderEventID, escapeValue(r.EventID))
	}
	if r.OrderID != "" {
		set(RawHeaderOrderID, escapeValue(r.OrderID))
	}
	if r.ClaimedOrderID != "" {
		set(RawHeaderClaimedOrderID, escapeValue(r.ClaimedOrderID))
	}
	set(RawHeaderDurationMS, all[statusEnd:durationEnd])
	set(RawHeaderBodyLength, all[durationEnd:lengthEnd])
	if r.BodyTruncated {
		set(RawHeaderBodyTruncated, "true")
		set(RawHeaderBodySHA256, escapeValue(r.BodySHA256))
	}
	if n > 0 {
		lines := make([]string, 0, n)
		off := lengthEnd
		for _, k := range names {
			for _, v := range r.Headers[k] {
				end := off + escapedLen(k, true) + 2 + escapedLen(v, false)
				lines = append(lines, all[off:end])
				off = end
			}
		}
		h[RawHeaderRequestHeader] = lines
	}
	return &nats.Msg{Subject: subject, Header: h, Data: r.Body}
}

// ErrRawRecord is wrapped by every DecodeRawRecord error.
var ErrRawRecord = errors.New("not a valid raw record")

// DecodeRawRecord reads a raw record from a message's headers and data (as
// EncodeRawRecord wrote it). A message without Payhook-Record whose data is
// a JSON object is read as the JSON record earlier payhook versions stored.
// Every error wraps ErrRawRecord and names the header at fault; it reads
// the headers one after the other, which is why it is one long function.
func DecodeRawRecord(h nats.Header, data []byte) (RawRecord, error) {
	format, ok := h[RawHeaderFormat]
	if !ok {
		if len(data) > 0 && data[0] == '{' {
			return decodeJSONRecord(data)
		}
		return RawRecord{}, fmt.Errorf("%w: no %s header", ErrRawRecord, RawHeaderFormat)
	}
	var firstErr error
	get := func(k string, required bool) string {
		vs := h[k]
		if len(vs) != 1 {
			if (required || len(vs) > 1) && firstErr == nil {
				firstErr = fmt.Errorf("%w: %s: want one value, got %d", ErrRawRecord, k, len(vs))
			}
			return ""
		}
		v, err := unescape(vs[0])
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%w: %s: %v", ErrRawRecord, k, err)
		}
		return v
	}
	if len(format) != 1 || format[0] != RawFormat {
		return RawRecord{}, fmt.Errorf("%w: %s: format %q, this reader knows %q", ErrRawRecord, RawHeaderFormat, strings.Join(format, ","), RawFormat)
	}
	r := RawRecord{
		Provider: get(RawHeaderProvider, true), Account: get(RawHeaderAccount, true), Kind: get(RawHeaderKind, true),
		Method: get(RawHeaderMethod, true), Path: get(RawHeaderPath, true),
		RemoteAddr: get(RawHeaderRemoteAddr, true), ClientIP: get(RawHeaderClientIP, true),
		Verdict: get(RawHeaderVerdict, true), Reason: get(RawHeaderReason, false), EventID: get(RawHeaderEventID, false),
		OrderID: get(RawHeaderOrderID, false), ClaimedOrderID: get(RawHeaderClaimedOrderID, false),
		BodySHA256: get(RawHeaderBodySHA256, false),
		Body:       data,
	}
	at, status, dur, length, trunc := get(RawHeaderReceivedAt, true), get(RawHeaderStatus, true), get(RawHeaderDurationMS, true), get(RawHeaderBodyLength, true), get(RawHeaderBodyTruncated, false)
	if firstErr != nil {
		return RawRecord{}, firstErr
	}
	var err error
	if r.ReceivedAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
		return RawRecord{}, fmt.Errorf("%w: %s: not an RFC 3339 time: %q", ErrRawRecord, RawHeaderReceivedAt, at)
	}
	if r.Status, err = strconv.Atoi(status); err != nil || r.Status < 100 || r.Status > 599 {
		return RawRecord{}, fmt.Errorf("%w: %s: not an HTTP status: %q", ErrRawRecord, RawHeaderStatus, status)
	}
	if r.DurationMS, err = strconv.ParseFloat(dur, 64); err != nil || r.DurationMS < 0 {
		return RawRecord{}, fmt.Errorf("%w: %s: not a duration in ms: %q", ErrRawRecord, RawHeaderDurationMS, dur)
	}
	if r.BodyLength, err = strconv.ParseInt(length, 10, 64); err != nil || r.BodyLength < 0 {
		return RawRecord{}, fmt.Errorf("%w: %s: not a length: %q", ErrRawRecord, RawHeaderBodyLength, length)
	}
	switch trunc {
	case "":
		if r.BodyLength != int64(len(data)) || r.BodySHA256 != "" {
			return RawRecord{}, fmt.Errorf("%w: %s is %d, the data %d bytes", ErrRawRecord, RawHeaderBodyLength, r.BodyLength, len(data))
		}
	case "true":
		r.BodyTruncated = true
		if r.BodyLength < int64(len(data)) {
			return RawRecord{}, fmt.Errorf("%w: %s is %d, below the %d bytes kept", ErrRawRecord, RawHeaderBodyLength, r.BodyLength, len(data))
		}
		if sum, err := hex.DecodeString(r.BodySHA256); err != nil || len(sum) != sha256.Size {
			return RawRecord{}, fmt.Errorf("%w: %s: not a hex SHA-256: %q", ErrRawRecord, RawHeaderBodySHA256, r.BodySHA256)
		}
	default:
		return RawRecord{}, fmt.Errorf("%w: %s: want \"true\" or absent, got %q", ErrRawRecord, RawHeaderBodyTruncated, trunc)
	}
	r.Headers = make(map[string][]string, len(h[RawHeaderRequestHeader]))
	for _, line := range h[RawHeaderRequestHeader] {
		// NATS trims the line, so an empty value leaves "name:".
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return RawRecord{}, fmt.Errorf("%w: %s: no ':' in %q", ErrRawRecord, RawHeaderRequestHeader, line)
		}
		value = strings.TrimPrefix(value, " ")
		n, err1 := unescape(name)
		v, err2 := unescape(value)
		if err := errors.Join(err1, err2); err != nil || n == "" {
			return RawRecord{}, fmt.Errorf("%w: %s: %q: bad name or escape", ErrRawRecord, RawHeaderRequestHeader, line)
		}
		r.Headers[n] = append(r.Headers[n], v)
	}
	return r, nil
}

// decodeJSONRecord reads the JSON raw record of earlier payhook versions:
// the body as a JSON string when UTF-8, else base64 in body_base64.
func decodeJSONRecord(data []byte) (RawRecord, error) {
	var j struct {
		ReceivedAt time.Time           `json:"received_at"`
		Provider   string              `json:"provider"`
		Account    string              `json:"account"`
		Kind       string              `json:"kind"`
		Method     string              `json:"method"`
		Path       string              `json:"path"`
		RemoteAddr string              `json:"remote_addr"`
		Headers    map[string][]string `json:"headers"`
		Body       string              `json:"body"`
		BodyBase64 []byte              `json:"body_base64"`
		Verdict    string              `json:"verdict"`
		Reason     string              `json:"reason"`
		Status     int                 `json:"status"`
		EventID    string              `json:"event_id"`
		DurationMS float64             `json:"duration_ms"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return RawRecord{}, fmt.Errorf("%w: no %s header and not a JSON record: %v", ErrRawRecord, RawHeaderFormat, err)
	}
	if j.Verdict == "" {
		return RawRecord{}, fmt.Errorf("%w: JSON record without a verdict", ErrRawRecord)
	}
	body := []byte(j.Body)
	if len(j.BodyBase64) > 0 {
		body = j.BodyBase64
	}
	return RawRecord{
		ReceivedAt: j.ReceivedAt, Provider: j.Provider, Account: j.Account, Kind: j.Kind,
		Method: j.Method, Path: j.Path, RemoteAddr: j.RemoteAddr, Headers: j.Headers,
		Body: body, BodyLength: int64(len(body)),
		Verdict: j.Verdict, Reason: j.Reason, Status: j.Status, EventID: j.EventID, DurationMS: j.DurationMS,
	}, nil
}

// escapeValue makes v safe as a NATS header value, reversibly: '%', every
// byte outside printable ASCII, and a space or tab at either end (NATS
// trims those) become %XX. Printable ASCII — every value a provider
// normally sends — stays as it is.
func escapeValue(v string) string { return escape(v, false) }

// escapeName is escapeValue that also escapes ':', which ends a name.
func escapeName(v string) string { return escape(v, true) }

func escape(v string, name bool) string {
	if escapedLen(v, name) == len(v) {
		return v
	}
	var sb strings.Builder
	sb.Grow(escapedLen(v, name))
	writeEscaped(&sb, v, name)
	return sb.String()
}

// needsEscape reports whether v[i] is escaped (see escapeValue).
func needsEscape(v string, i int, name bool) bool {
	c := v[i]
	return c == '%' || c < 0x20 || c >= 0x7f || (c == ' ' && (i == 0 || i == len(v)-1)) || (name && c == ':')
}

// escapedLen is the length of escape(v, name).
func escapedLen(v string, name bool) int {
	n := len(v)
	for i := range len(v) {
		if needsEscape(v, i, name) {
			n += 2
		}
	}
	return n
}

// writeEscaped writes escape(v, name) to sb.
func writeEscaped(sb *strings.Builder, v string, name bool) {
	const hexDigits = "0123456789ABCDEF"
	clean := 0 // v[clean:i] needs no escape
	for i := range len(v) {
		if needsEscape(v, i, name) {
			sb.WriteString(v[clean:i])
			sb.Write([]byte{'%', hexDigits[v[i]>>4], hexDigits[v[i]&15]})
			clean = i + 1
		}
	}
	sb.WriteString(v[clean:])
}

// unescape reverses escape; a '%' not followed by two hex digits is an error.
func unescape(v string) (string, error) {
	i := strings.IndexByte(v, '%')
	if i < 0 {
		return v, nil
	}
	b := make([]byte, 0, len(v))
	b = append(b, v[:i]...)
	for ; i < len(v); i++ {
		if v[i] != '%' {
			b = append(b, v[i])
			continue
		}
		if i+2 >= len(v) {
			return "", fmt.Errorf("truncated escape at byte %d", i)
		}
		x, err := hex.DecodeString(v[i+1 : i+3])
		if err != nil {
			return "", fmt.Errorf("bad escape %q at byte %d", v[i:i+3], i)
		}
		b = append(b, x[0])
		i += 2
	}
	return string(b), nil
}
