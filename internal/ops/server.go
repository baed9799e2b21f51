package ops

import (
	"net/http"
	"time"
)

// Timeouts bound what one client can hold of an HTTP server: a connection
// that sends its headers byte by byte (slowloris), a body that never ends,
// a reader that never reads the reply, an idle keep-alive connection, and
// the size of the request headers.
type Timeouts struct {
	// ReadHeader bounds reading the request line and headers.
	ReadHeader time.Duration
	// Read bounds reading the whole request, body included, from the
	// moment the connection is accepted (or the previous request ended).
	Read time.Duration
	// Write bounds everything after the headers are read: reading the
	// body, the handler, and writing the reply. It must exceed the
	// longest handler (ingress: publish_timeout, twice; see ingress.Serve).
	Write time.Duration
	// Idle closes a keep-alive connection with no request for this long.
	Idle time.Duration
	// MaxHeaderBytes caps the request line and headers; larger gets 431.
	// (net/http allows 4 KiB of slack above it.)
	MaxHeaderBytes int
}

// DefaultTimeouts are every payhook HTTP server's, unless a server says
// otherwise: callbacks and admin requests are small (a few KiB) and sent
// at once, so 10 s for the headers and 30 s for the whole request leave
// room for a slow network; 60 s of write covers the longest handler (a
// reconciler UTR submission waits up to 25 s for the provider); 120 s idle
// keeps connection reuse for providers that post in bursts; 16 KiB of
// headers is four times what any provider sends.
var DefaultTimeouts = Timeouts{
	ReadHeader:     10 * time.Second,
	Read:           30 * time.Second,
	Write:          60 * time.Second,
	Idle:           120 * time.Second,
	MaxHeaderBytes: 16 << 10,
}

// NewServer is the one place payhook's HTTP servers (ingress, dispatcher,
// reconciler, devstack's demo subscriber, the provider simulator, the
// benchmark's baselines) are built: h behind t's timeouts and header cap.
// A zero field of t takes DefaultTimeouts' value.
func NewServer(h http.Handler, t Timeouts) *http.Server {
	d := DefaultTimeouts
	pick := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	maxHeader := t.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = d.MaxHeaderBytes
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: pick(t.ReadHeader, d.ReadHeader),
		ReadTimeout:       pick(t.Read, d.Read),
		WriteTimeout:      pick(t.Write, d.Write),
		IdleTimeout:       pick(t.Idle, d.Idle),
		MaxHeaderBytes:    maxHeader,
	}
}
