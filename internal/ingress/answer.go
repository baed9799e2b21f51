package ingress

import (
	"errors"
	"net/http"

	"github.com/payhook/payhook/internal/publisher"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// refusal is a request ingress refuses on its own account, around the
// provider's Parse: its reason, and the detail its reply carries (no
// payload, no secrets).
type refusal struct {
	reason providers.Reason
	detail string
}

func (r *refusal) Error() string { return r.detail }

// refusalStatus is the HTTP status of each reason ingress decides itself
// (the table of docs/operations.md "Reject reasons").
var refusalStatus = map[providers.Reason]int{
	providers.ReasonUnknownRoute:     http.StatusNotFound,
	providers.ReasonMethodNotAllowed: http.StatusMethodNotAllowed,
	providers.ReasonUnknownProvider:  http.StatusNotFound,
	providers.ReasonUnknownAccount:   http.StatusNotFound,
	providers.ReasonWrongKind:        http.StatusNotFound,
	providers.ReasonIPNotAllowed:     http.StatusForbidden,
	providers.ReasonTooLarge:         http.StatusRequestEntityTooLarge,
	providers.ReasonUnreadable:       http.StatusBadRequest,
	providers.ReasonTooOld:           http.StatusBadRequest,
	providers.ReasonFutureTimestamp:  http.StatusBadRequest,
	providers.ReasonUnavailable:      http.StatusServiceUnavailable,
}

// Ingress's refusals when the event store or the raw record of a refusal
// cannot be written now: 503, so that the provider retries.
var (
	errEventStoreUnavailable = &refusal{providers.ReasonUnavailable, "event store unavailable; retry later"}
	errRecordUnavailable     = &refusal{providers.ReasonUnavailable, "cannot record the request now; retry later"}
)

// decryptDetail is the one detail of every decryption failure (see answer).
const decryptDetail = "cannot decrypt the body"

// answer is the one mapping from how a callback ended to what ingress
// answers. A nil err (the event is stored, now or before) and one wrapping
// providers.ErrIgnored are acknowledged: 200, and the reply is the
// provider's own Ack. Anything else is refused with a status and the
// reason and detail of its {"error","detail"} body:
//   - ingress's own refusals (*refusal): by reason, refusalStatus;
//   - a decryption failure: 401 and one detail for all. mpurse bodies are
//     AES without a MAC: a reply that told "bad padding" from "decrypts,
//     but not JSON" would be a padding oracle on CBC accounts, so the cause
//     goes to the log only (outcome.cause);
//   - a bad or missing signature, or no key to check one with: 401;
//   - an event the store refuses to render (publisher.ErrInvalid): 400
//     invalid_event;
//   - any other rejection of the provider's Parse: 400 with its reason.
//
// The 429 of a client past its rejection rate is decided after this, when
// the refusal is recorded (Server.record), and keeps the reason for the
// counters.
func answer(err error) (status int, reason providers.Reason, detail string) {
	var r *refusal
	switch {
	case err == nil:
		return http.StatusOK, "", ""
	case errors.Is(err, providers.ErrIgnored):
		return http.StatusOK, "", err.Error()
	case errors.As(err, &r):
		return refusalStatus[r.reason], r.reason, r.detail
	case errors.Is(err, providers.ErrDecrypt):
		return http.StatusUnauthorized, providers.ReasonOf(err), decryptDetail
	case errors.Is(err, providers.ErrSignature):
		return http.StatusUnauthorized, providers.ReasonOf(err), err.Error()
	case errors.Is(err, publisher.ErrInvalid):
		return http.StatusBadRequest, providers.ReasonInvalidEvent, err.Error()
	}
	return http.StatusBadRequest, providers.ReasonOf(err), err.Error()
}

// answered is o answered as answer maps err. Acknowledged, its reply is
// p's Ack for kind (p and kind are unused otherwise, so a refusal before
// the provider is known passes nil); an ignored callback gets verdict
// ignored, a stored one keeps the verdict its caller sets. Refused, its
// verdict is rejected, or unavailable for a 503; a decryption failure's
// error is kept as its cause, for the log only.
func (o outcome) answered(err error, p providers.Inbound, kind events.Kind) outcome {
	o.status, o.reason, o.detail = answer(err)
	switch {
	case o.status == http.StatusOK:
		o.reply = p.Ack(kind)
		if err != nil {
			o.verdict = VerdictIgnored
		}
	case o.status == http.StatusServiceUnavailable:
		o.verdict = VerdictUnavailable
	default:
		o.verdict = VerdictRejected
		if errors.Is(err, providers.ErrDecrypt) {
			o.cause = err.Error()
		}
	}
	return o
}
