package ingress

import (
	"fmt"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ops"
)

// envelopeBytes bounds what a raw record or an event adds around the
// request's bytes: field names, the verdict, times, ids (each at most a
// few hundred bytes), the CloudEvent attributes and NATS headers.
const envelopeBytes = 4 << 10

// MaxMessageBytes bounds the largest NATS message a request within
// bodyLimit can become, with the headers allowed by net/http (up to
// ops.DefaultTimeouts.MaxHeaderBytes, plus the 4 KiB it allows above it):
//   - its event holds the decoded body fields as JSON strings, and JSON may
//     spell one byte in six ("\u0001", "\u003c"): 6 × body;
//   - its raw record holds the body once, as the message data, and the
//     request line and headers percent-escaped in NATS headers: a byte
//     outside printable ASCII takes three, and each header line gains
//     "Payhook-Header: " (a minimal 4-byte line "A:\r\n" becomes 20):
//     at most body + 5 × headers.
//
// 6 × (body + headers) + envelopeBytes is above both, and is what ingress
// checks at start.
func MaxMessageBytes(bodyLimit int64) int64 {
	headers := int64(ops.DefaultTimeouts.MaxHeaderBytes) + 4<<10
	return 6*(bodyLimit+headers) + envelopeBytes
}

// MaxBodyLimit is the largest ingress.body_limit whose every record fits
// in a NATS message of maxPayload bytes (NATS's default 1 MiB: 150 KiB).
func MaxBodyLimit(maxPayload int64) int64 {
	headers := int64(ops.DefaultTimeouts.MaxHeaderBytes) + 4<<10
	return (maxPayload-envelopeBytes)/6 - headers
}

// CheckBodyLimit refuses a body_limit whose requests could not all be
// stored: a callback over the server's max_payload but under body_limit
// would be answered 503 on every retry and leave no raw record.
func CheckBodyLimit(bodyLimit, maxPayload int64) error {
	if maxPayload <= 0 || MaxMessageBytes(bodyLimit) <= maxPayload {
		return nil
	}
	return &config.Error{Key: "ingress.body_limit", Msg: fmt.Sprintf(
		"%d bytes is more than the NATS server's max_payload (%d bytes) can store: a raw record of such a request may take %d bytes; set body_limit to at most %d or raise max_payload",
		bodyLimit, maxPayload, MaxMessageBytes(bodyLimit), MaxBodyLimit(maxPayload))}
}
