package dispatch

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/payhook/payhook/internal/tracing"
)

// Signer signs deliveries with every secret of a subscriber, by the
// Standard Webhooks scheme: "v1," + base64(HMAC-SHA256(key, id + "." +
// timestamp + "." + body)) per secret, space-separated for rotation. The
// secrets are checked by the Standard Webhooks library; the signing is
// done here, with a pool of keyed HMACs per secret, because the library's
// Sign copies the body into a string and keys a new HMAC per call (a tenth
// of the allocations of a delivery). TestSignerMatchesLibrary holds the
// two to the same bytes.
type Signer struct {
	macs []sync.Pool // of *macState, one pool per secret
}

// macState is a keyed HMAC-SHA256 and the scratch one signature needs.
type macState struct {
	h   hash.Hash
	pre []byte // id "." timestamp "."
	sum [sha256.Size]byte
}

// NewSigner decodes the whsec_ secrets.
func NewSigner(secrets []string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("dispatch: no signing secret")
	}
	s := &Signer{macs: make([]sync.Pool, len(secrets))}
	for i, sec := range secrets {
		_, err := standardwebhooks.NewWebhook(sec)
		raw := strings.TrimPrefix(sec, "whsec_")
		if err != nil || len(raw) == 0 {
			// Never echo the secret itself (nor the library's error, which may quote it).
			return nil, fmt.Errorf("dispatch: secret %d is not a whsec_ base64 secret", i)
		}
		key, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			return nil, fmt.Errorf("dispatch: secret %d is not a whsec_ base64 secret", i)
		}
		s.macs[i].New = func() any { return &macState{h: hmac.New(sha256.New, key)} }
	}
	return s, nil
}

// sigLen is the length of one "v1," + base64(32 bytes) signature.
const sigLen = len("v1,") + 44

// Sign returns the webhook-signature header value for one delivery.
func (s *Signer) Sign(id string, ts time.Time, body []byte) (string, error) {
	var out strings.Builder
	out.Grow(len(s.macs)*(sigLen+1) - 1)
	var enc [44]byte
	for i := range s.macs {
		m := s.macs[i].Get().(*macState)
		m.h.Reset()
		m.pre = append(m.pre[:0], id...)
		m.pre = append(m.pre, '.')
		m.pre = strconv.AppendInt(m.pre, ts.Unix(), 10)
		m.pre = append(m.pre, '.')
		m.h.Write(m.pre)
		m.h.Write(body)
		base64.StdEncoding.Encode(enc[:], m.h.Sum(m.sum[:0]))
		s.macs[i].Put(m)
		if i > 0 {
			out.WriteByte(' ')
		}
		out.WriteString("v1,")
		out.Write(enc[:])
	}
	return out.String(), nil
}

// Result is what one HTTP attempt came to.
type Result struct {
	Status     int           // HTTP status, 0 when no response
	Err        error         // transport error or non-2xx, nil when delivered
	RetryAfter time.Duration // from Retry-After, 0 when absent
	Duration   time.Duration
}

// errStatus is a non-2xx answer.
type errStatus int

func (e errStatus) Error() string { return "HTTP " + strconv.Itoa(int(e)) }

// Post sends one delivery: the CloudEvent body exactly as stored, signed.
func Post(ctx context.Context, client *http.Client, url string, s *Signer, id string, body []byte, now time.Time) Result {
	start := time.Now()
	res := post(ctx, client, url, s, id, body, now)
	res.Duration = time.Since(start)
	return res
}

func post(ctx context.Context, client *http.Client, url string, s *Signer, id string, body []byte, now time.Time) Result {
	sig, err := s.Sign(id, now, body)
	if err != nil {
		return Result{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Result{Err: fmt.Errorf("build request: %w", err)}
	}
	// As Header.Set would, under the canonical keys (what goes on the
	// wire), with one backing array for the five values.
	vals := [...]string{"application/json", "payhook", id, strconv.FormatInt(now.Unix(), 10), sig}
	req.Header["Content-Type"] = vals[0:1:1]
	req.Header["User-Agent"] = vals[1:2:2]
	req.Header["Webhook-Id"] = vals[2:3:3]
	req.Header["Webhook-Timestamp"] = vals[3:4:4]
	req.Header["Webhook-Signature"] = vals[4:5:5]
	// The delivery attempt's span (W3C traceparent), when tracing is on:
	// outside the signed content, like every header but webhook-*.
	tracing.InjectHTTP(ctx, req.Header)
	resp, err := client.Do(req)
	if err != nil {
		return Result{Err: transportError(err)}
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused; the body is ignored.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return Result{Status: resp.StatusCode}
	}
	return Result{Status: resp.StatusCode, Err: errStatus(resp.StatusCode), RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now)}
}

// transportError names what went wrong without the URL (which may carry
// credentials in its query).
func transportError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errors.New("timeout")
	case errors.Is(err, context.Canceled):
		return errors.New("cancelled")
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fmt.Errorf("%s: %v", oe.Op, oe.Err)
	}
	return errors.New("transport error")
}

// Disposition is what happens to a message after an attempt.
type Disposition int

// Dispositions, one per message outcome.
const (
	Delivered    Disposition = iota // 2xx: Ack
	Retry                           // NakWithDelay(backoff)
	DeadLettered                    // out of attempts: publish to the DLQ, then Ack
	Pause                           // 410 Gone: pause the subscriber, Nak (kept)
)

// Decide is the one function from an attempt's result to the message's
// disposition. attempt is 1-based; 410 pauses even on the last attempt so
// that an endpoint being retired never loses events to the DLQ.
func Decide(r Result, attempt, maxAttempts int) Disposition {
	switch {
	case r.Err == nil:
		return Delivered
	case r.Status == http.StatusGone:
		return Pause
	case attempt >= maxAttempts:
		return DeadLettered
	default:
		return Retry
	}
}
