package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/payhook/payhook/internal/tracing"
)

// Signer signs deliveries with every secret of a subscriber, by the
// Standard Webhooks library: "v1," + base64(HMAC-SHA256(key, id + "." +
// timestamp + "." + body)) per secret, space-separated for rotation.
type Signer struct {
	whs []*standardwebhooks.Webhook
}

// NewSigner decodes the whsec_ secrets.
func NewSigner(secrets []string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("dispatch: no signing secret")
	}
	s := &Signer{}
	for i, sec := range secrets {
		wh, err := standardwebhooks.NewWebhook(sec)
		if err != nil || len(strings.TrimPrefix(sec, "whsec_")) == 0 {
			// Never echo the secret itself (nor the library's error, which may quote it).
			return nil, fmt.Errorf("dispatch: secret %d is not a whsec_ base64 secret", i)
		}
		s.whs = append(s.whs, wh)
	}
	return s, nil
}

// Sign returns the webhook-signature header value for one delivery.
func (s *Signer) Sign(id string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, len(s.whs))
	for i, wh := range s.whs {
		sig, err := wh.Sign(id, ts, body)
		if err != nil {
			return "", fmt.Errorf("dispatch: sign: %w", err)
		}
		sigs[i] = sig
	}
	return strings.Join(sigs, " "), nil
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
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "payhook")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
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
