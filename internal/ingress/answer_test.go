package ingress

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/payhook/payhook/internal/publisher"
	"github.com/payhook/payhook/pkg/providers"
)

// TestAnswer holds the one mapping from how a callback ended to its HTTP
// answer to the statuses docs/interfaces.md promises.
func TestAnswer(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		status     int
		reason     providers.Reason
		detailSame bool // the detail is err.Error()
	}{
		{"stored", nil, http.StatusOK, "", false},
		{"ignored", fmt.Errorf("%w: customer.created", providers.ErrIgnored), http.StatusOK, "", true},
		{"unknown provider", &refusal{providers.ReasonUnknownProvider, "no such provider"}, http.StatusNotFound, providers.ReasonUnknownProvider, true},
		{"method", &refusal{providers.ReasonMethodNotAllowed, "callbacks are POSTed"}, http.StatusMethodNotAllowed, providers.ReasonMethodNotAllowed, true},
		{"ip", &refusal{providers.ReasonIPNotAllowed, "not allowed"}, http.StatusForbidden, providers.ReasonIPNotAllowed, true},
		{"too large", &refusal{providers.ReasonTooLarge, "body over 1 bytes"}, http.StatusRequestEntityTooLarge, providers.ReasonTooLarge, true},
		{"too old", &refusal{providers.ReasonTooOld, "signed long ago"}, http.StatusBadRequest, providers.ReasonTooOld, true},
		{"store down", errEventStoreUnavailable, http.StatusServiceUnavailable, providers.ReasonUnavailable, true},
		{"record down", errRecordUnavailable, http.StatusServiceUnavailable, providers.ReasonUnavailable, true},
		{"undecryptable", providers.Reject(providers.ReasonUndecryptable, providers.ErrDecrypt, "bad padding"), http.StatusUnauthorized, providers.ReasonUndecryptable, false},
		{"bad signature", providers.Reject(providers.ReasonBadSignature, providers.ErrSignature, "no match"), http.StatusUnauthorized, providers.ReasonBadSignature, true},
		{"no sign field", providers.Reject(providers.ReasonMissingField, providers.ErrSignature, "no sign"), http.StatusUnauthorized, providers.ReasonMissingField, true},
		{"malformed", providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "not JSON"), http.StatusBadRequest, providers.ReasonMalformed, true},
		{"stale at the provider", providers.Reject(providers.ReasonTooOld, providers.ErrStale, "beyond 300s"), http.StatusBadRequest, providers.ReasonTooOld, true},
		{"unreasoned", errors.New("some decoder error"), http.StatusBadRequest, providers.ReasonInvalid, true},
		{"store refuses the event", errors.Join(publisher.ErrInvalid, errors.New("amount")), http.StatusBadRequest, providers.ReasonInvalidEvent, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, reason, detail := answer(c.err)
			if status != c.status || reason != c.reason {
				t.Errorf("answer = %d %q, want %d %q", status, reason, c.status, c.reason)
			}
			switch {
			case c.detailSame && detail != c.err.Error():
				t.Errorf("detail %q, want %q", detail, c.err.Error())
			case c.reason == providers.ReasonUndecryptable && detail != decryptDetail:
				t.Errorf("detail %q of a decryption failure, want the one %q", detail, decryptDetail)
			}
		})
	}
}

// TestEveryRefusalHasAStatus: a reason ingress decides itself without a
// status would be answered 0.
func TestEveryRefusalHasAStatus(t *testing.T) {
	for r, status := range refusalStatus {
		if status < 400 || status > 599 {
			t.Errorf("%s: status %d", r, status)
		}
	}
	for _, r := range []providers.Reason{
		providers.ReasonUnknownRoute, providers.ReasonMethodNotAllowed, providers.ReasonUnknownProvider,
		providers.ReasonUnknownAccount, providers.ReasonWrongKind, providers.ReasonIPNotAllowed,
		providers.ReasonTooLarge, providers.ReasonUnreadable, providers.ReasonTooOld,
		providers.ReasonFutureTimestamp, providers.ReasonUnavailable,
	} {
		if _, ok := refusalStatus[r]; !ok {
			t.Errorf("%s: no status in refusalStatus", r)
		}
	}
}
