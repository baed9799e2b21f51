// Package querytest holds the checks every provider's query client must
// pass against a fake provider that answers too late: a cancelled context
// or a passed deadline stops the call promptly with the context's error,
// and a client's own timeout is a temporary transport *providers.APIError. Each provider's tests bring the fake and the order
// it stalls on.
package querytest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/providers"
)

// Cancelled cancels ctx 50 ms into a query that the fake answers too late:
// q must return an error wrapping context.Canceled within 2 s.
func Cancelled(t testing.TB, q providers.Querier, acct providers.Account, order providers.Order, retrigger bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := q.Query(ctx, acct, order, retrigger)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("cancel did not stop the call (took %v)", took)
	}
}

// Deadline gives a query that the fake answers too late a 50 ms deadline:
// q must return an error wrapping context.DeadlineExceeded.
func Deadline(t testing.TB, q providers.Querier, acct providers.Account, order providers.Order, retrigger bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := q.Query(ctx, acct, order, retrigger)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
}

// TransportTimeout runs a query that the fake answers too late through q,
// a client whose *http.Client times out first: the error must be a
// temporary *providers.APIError with Code "transport" and Message "timeout".
func TransportTimeout(t testing.TB, q providers.Querier, acct providers.Account, order providers.Order) {
	t.Helper()
	_, err := q.Query(context.Background(), acct, order, false)
	var ae *providers.APIError
	if !errors.As(err, &ae) || !ae.Temporary || ae.Code != "transport" || ae.Message != "timeout" {
		t.Errorf("err = %v, want a temporary transport APIError with message timeout", err)
	}
}
