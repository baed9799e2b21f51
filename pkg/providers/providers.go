// Package providers declares what every payment-provider package implements
// and the errors they share. Each provider lives in pkg/providers/<name> and
// takes raw bytes and headers, never an HTTP framework's context.
package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/events"
)

// Account is one merchant account at a provider, as configured (docs/config.md
// "accounts"). The keys every provider shares are fields; the provider's own
// keys (merchant_id, secret, aes_key, sign_rule, api_key, ...) are in Keys,
// as written, and only the provider's package reads them: it checks them
// through its Credentials role. Secrets are never logged.
type Account struct {
	ID       string   `yaml:"id"`
	Provider string   `yaml:"provider"`
	BaseURL  string   `yaml:"base_url,omitempty"`
	Currency string   `yaml:"currency"`
	AllowIPs []string `yaml:"allow_ips,omitempty"`
	// MaxAge refuses a callback whose signed provider timestamp
	// (events.Event.SignedAt) is older than this (ReasonTooOld), so a
	// captured callback cannot be replayed once the dedupe store has
	// forgotten it. Zero leaves the age unchecked; a loaded config always
	// sets it (default: six sevenths of dedupe.window).
	MaxAge time.Duration `yaml:"max_age,omitempty"`
	// Keys are the provider's own keys of this account, by YAML key.
	Keys Keys `yaml:",inline"`
}

// Keys are a provider's own keys of an account, by YAML key ("secret").
type Keys map[string]string

// Key returns the value of the provider key name ("" when absent).
func (a Account) Key(name string) string { return a.Keys[name] }

// With returns a copy of a whose provider key name is value; a itself
// (and the map it shares with its copies) is left alone.
func (a Account) With(name, value string) Account {
	keys := make(Keys, len(a.Keys)+1)
	for k, v := range a.Keys {
		keys[k] = v
	}
	keys[name] = value
	a.Keys = keys
	return a
}

// Request is an inbound callback as received: the raw body is what gets verified.
type Request struct {
	Kind       events.Kind
	Header     http.Header
	Body       []byte
	RemoteAddr string
	ReceivedAt time.Time
}

// Reply is what the provider must get back for it to stop retrying.
type Reply struct {
	Status      int
	ContentType string
	Body        []byte
}

// Inbound is implemented by providers that call us back. Parse verifies the
// raw request (signature or decryption) and only then decodes it; any error
// is a *RejectError (or wraps one of the sentinels below).
type Inbound interface {
	Name() string
	// Kinds lists the callback kinds this provider sends.
	Kinds() []events.Kind
	// Parse verifies and decodes one callback into its event.
	Parse(acct Account, req Request) (events.Event, error)
	// Ack is the provider's own success reply for kind.
	Ack(kind events.Kind) Reply
}

// QueryResult is a provider's answer about one order, mapped to the canonical status.
type QueryResult struct {
	// Found is false when the provider does not know the order.
	Found  bool
	Status events.Status
	// Event is the event synthesized from the answer when Status is terminal
	// (Origin poll), or nil when the answer lacks what an event needs.
	Event *events.Event
}

// Order names the order a query or submission is about.
type Order struct {
	Kind            events.Kind
	MerchantOrderID string
	ProviderOrderID string
}

// Querier is implemented by providers with a query endpoint (cashypro,
// jpglo, mrnpay). Retrigger asks the provider to resend the callback while
// answering (mrnpay's callback=true); providers without it ignore the flag.
type Querier interface {
	Query(ctx context.Context, acct Account, order Order, retrigger bool) (QueryResult, error)
}

// Sentinel errors. Inbound failures are permanent: the same bytes will never verify.
var (
	ErrSignature   = errors.New("bad signature")
	ErrDecrypt     = errors.New("cannot decrypt")
	ErrMalformed   = errors.New("malformed callback")
	ErrKind        = errors.New("kind not sent by this provider")
	ErrAccount     = errors.New("account mismatch")
	ErrUnsupported = errors.New("not supported by this provider")
)

// ErrStale is wrapped by the rejection of a callback whose signed time is
// too far from when it arrived for the provider's own rule (Stripe's 300 s
// tolerance): a replay. Its reason is ReasonTooOld, and ingress answers it with
// 400 like its own accounts[].max_age check.
var ErrStale = errors.New("signed time outside the accepted window")

// ErrIgnored is returned (wrapped) by Parse for a callback that verified
// but tells nothing payhook publishes (an event type it does not map, such
// as a Stripe customer.created): it is acknowledged with the provider's
// Ack, so that the provider stops resending it, and recorded on
// PAYHOOK_RAW with verdict "ignored"; no event is stored.
var ErrIgnored = errors.New("verified, but not an event payhook publishes")

// RejectError is a callback that can never be accepted. Reason is its
// token for the reply, metrics and the raw record (reasons.go); Err carries
// detail without secrets or body bytes.
type RejectError struct {
	Reason Reason
	Err    error
}

func (e *RejectError) Error() string { return string(e.Reason) + ": " + e.Err.Error() }
func (e *RejectError) Unwrap() error { return e.Err }

// Reject builds a RejectError wrapping sentinel with formatted detail.
func Reject(reason Reason, sentinel error, format string, args ...any) error {
	return &RejectError{Reason: reason, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

// ReasonOf returns the reject reason of err, or ReasonInvalid for any other error.
func ReasonOf(err error) Reason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ReasonInvalid
}

// APIError is a provider's own error answer to an outbound call. It keeps the
// provider's code and message; Temporary tells whether retrying may help.
type APIError struct {
	Provider  string
	Op        string
	HTTP      int
	Code      string
	Message   string
	Temporary bool
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: provider error %s (http %d): %s", e.Provider, e.Op, e.Code, e.HTTP, e.Message)
}

// ErrNotFound is returned (wrapped) by outbound calls when the provider does not know the order.
var ErrNotFound = errors.New("order not found at provider")

// Checked is how every Parse returns its event: normalized as the
// publisher will (events.Event.Normalize), and refused with
// ReasonInvalidEvent when it still fails events.Event.Validate, so that an
// accepted callback is always one that can be stored. err passes through.
func Checked(ev events.Event, err error) (events.Event, error) {
	if err != nil {
		return events.Event{}, err
	}
	ev.Normalize()
	if err := ev.Validate(); err != nil {
		return events.Event{}, &RejectError{Reason: ReasonInvalidEvent, Err: errors.Join(ErrMalformed, err)}
	}
	return ev, nil
}

// Clip bounds a provider-supplied value quoted in an error or a reply
// field to n bytes (cut on a rune boundary, "…" appended), so that a
// hostile body cannot make logs and errors arbitrarily large.
func Clip(s string, n int) string {
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}
