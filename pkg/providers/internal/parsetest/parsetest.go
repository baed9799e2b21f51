// Package parsetest holds the invariant every provider's Parse fuzz target
// checks on each input: either a rejection with a reason, or an event that
// is valid and can be published.
package parsetest

import (
	"errors"
	"testing"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Outcome checks what Parse returned for one input and reports whether it
// accepted it. An error must be a *providers.RejectError with a reason, or
// providers.ErrIgnored (verified, but no event: not accepted either); an
// accepted event must pass Validate and MarshalCloudEvent. Failures are
// fatal; label (the kind, say) prefixes their messages when not empty.
func Outcome(tb testing.TB, label string, ev events.Event, err error) (accepted bool) {
	tb.Helper()
	if label != "" {
		label += ": "
	}
	if errors.Is(err, providers.ErrIgnored) {
		return false
	}
	if err != nil {
		var re *providers.RejectError
		if !errors.As(err, &re) || re.Reason == "" {
			tb.Fatalf("%serror is not a reasoned *providers.RejectError: %v", label, err)
		}
		return false
	}
	if err := ev.Validate(); err != nil {
		tb.Fatalf("%saccepted an invalid event: %v", label, err)
	}
	if _, err := ev.MarshalCloudEvent(); err != nil {
		tb.Fatalf("%sMarshalCloudEvent: %v", label, err)
	}
	return true
}
