package querytest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/querytest"
)

// querier answers with err, after waiting for ctx when wait is set.
type querier struct {
	wait bool
	err  error
}

func (q querier) Query(ctx context.Context, _ providers.Account, _ providers.Order, _ bool) (providers.QueryResult, error) {
	if q.wait {
		<-ctx.Done()
		return providers.QueryResult{}, fmt.Errorf("x query: %w", ctx.Err())
	}
	return providers.QueryResult{}, q.err
}

type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }

func TestChecks(t *testing.T) {
	transport := &providers.APIError{Code: "transport", Message: "timeout", Temporary: true}
	tests := []struct {
		name  string
		check func(testing.TB, providers.Querier)
		q     providers.Querier
		fail  bool
	}{
		{"cancel honoured", cancelled, querier{wait: true}, false},
		{"cancel ignored", cancelled, querier{err: errors.New("boom")}, true},
		{"deadline honoured", deadline, querier{wait: true}, false},
		{"deadline ignored", deadline, querier{}, true},
		{"transport timeout", timeout, querier{err: fmt.Errorf("w: %w", transport)}, false},
		{"permanent transport error", timeout, querier{err: &providers.APIError{Code: "transport", Message: "timeout"}}, true},
		{"plain error", timeout, querier{err: context.DeadlineExceeded}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			start := time.Now()
			tt.check(r, tt.q)
			if r.failed != tt.fail || time.Since(start) > time.Second {
				t.Errorf("failed = %v after %v, want %v", r.failed, time.Since(start), tt.fail)
			}
		})
	}
}

var acct = providers.Account{ID: "a"}
var order = providers.Order{Kind: "payin", MerchantOrderID: "SLOW"}

func cancelled(tb testing.TB, q providers.Querier) { querytest.Cancelled(tb, q, acct, order, false) }
func deadline(tb testing.TB, q providers.Querier)  { querytest.Deadline(tb, q, acct, order, false) }
func timeout(tb testing.TB, q providers.Querier)   { querytest.TransportTimeout(tb, q, acct, order) }
