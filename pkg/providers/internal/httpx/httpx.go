// Package httpx is the outbound request plumbing the provider clients
// share: the default client, the base_url check, a bounded
// read of the answer, the HTTP status classes, and the *providers.APIError
// for transport failures and non-2xx statuses. What an answer's body means
// stays in each provider's package.
package httpx

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/providers"
)

// Client returns hc, or when hc is nil an *http.Client whose whole-request
// timeout is timeout (each provider's DefaultTimeout).
func Client(hc *http.Client, timeout time.Duration) *http.Client {
	if hc == nil {
		hc = &http.Client{Timeout: timeout}
	}
	return hc
}

// Endpoint joins an account's base_url and path, refusing a base that is
// empty or not an absolute http(s) URL. Errors name no URL.
func Endpoint(base, path string) (string, error) {
	if base == "" {
		return "", errors.New("account has no base_url")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("base_url is not an http(s) URL")
	}
	return strings.TrimRight(base, "/") + path, nil
}

// ReadLimited reads r up to max+1 bytes, so that a result longer than max
// tells the caller the answer was over its bound.
func ReadLimited(r io.Reader, max int) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, int64(max)+1))
}

// OK reports whether an HTTP status is 2xx.
func OK(status int) bool { return status >= 200 && status <= 299 }

// Temporary reports whether a non-2xx HTTP status may pass on a retry: 5xx
// and 429 Too Many Requests.
func Temporary(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests
}

// StatusError is the *providers.APIError for a non-2xx status: Code
// "http_NNN", Message the status text, Temporary as Temporary says. Callers
// replace Code and Message when the body still carries the provider's own.
func StatusError(provider, op string, status int) *providers.APIError {
	return &providers.APIError{Provider: provider, Op: op, HTTP: status, Code: fmt.Sprintf("http_%d", status),
		Message: http.StatusText(status), Temporary: Temporary(status)}
}

// Do sends req with hc and reads at most max bytes of the answer, whatever
// its status. Failures are errors that never include the URL (which may
// carry a signature):
//   - a cancelled or expired request context: the context's error, wrapped
//     as "<provider> <op>: ...";
//   - a transport failure: a temporary *providers.APIError with Code
//     "transport" and Message "timeout" or "request failed";
//   - a failed read of the answer: the same, with HTTP set and Message
//     "reading the answer failed";
//   - an answer over max bytes: a *providers.APIError with Code "too_large".
func Do(hc *http.Client, req *http.Request, provider, op string, max int) (status int, body []byte, err error) {
	resp, err := hc.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", provider, op, ctxErr)
		}
		msg := "request failed"
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			msg = "timeout"
		}
		return 0, nil, &providers.APIError{Provider: provider, Op: op, Code: "transport", Message: msg, Temporary: true}
	}
	defer resp.Body.Close()
	raw, err := ReadLimited(resp.Body, max)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", provider, op, ctxErr)
		}
		return 0, nil, &providers.APIError{Provider: provider, Op: op, HTTP: resp.StatusCode, Code: "transport", Message: "reading the answer failed", Temporary: true}
	}
	if len(raw) > max {
		return 0, nil, &providers.APIError{Provider: provider, Op: op, HTTP: resp.StatusCode, Code: "too_large", Message: fmt.Sprintf("answer over %d bytes", max)}
	}
	return resp.StatusCode, raw, nil
}
