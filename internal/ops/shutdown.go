package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
)

// Inflight counts requests being handled, so that a drain can tell a
// request still at work from a connection that merely stays open.
type Inflight struct{ n atomic.Int64 }

// Wrap counts every request h handles.
func (f *Inflight) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.n.Add(1)
		defer f.n.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// Load is the number of requests being handled now.
func (f *Inflight) Load() int64 { return f.n.Load() }

// Shutdown drains srv: it stops accepting and waits, until ctx ends, for
// every request in flight to finish. http.Server.Shutdown also waits for a
// connection opened just before the drain that has not sent a request yet
// (up to 5 s, net/http's grace for new connections); when ctx ends and no
// request is in flight, only such connections are left: they are closed and
// the drain counts as clean. An error means requests were cut off.
func Shutdown(ctx context.Context, srv *http.Server, f *Inflight) error {
	err := srv.Shutdown(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	n := f.Load()
	_ = srv.Close()
	if n == 0 {
		return nil
	}
	return fmt.Errorf("drain cut off %d requests in flight: %w", n, err)
}

// FirstStop waits until ctx ends or one of a service's two parts returns:
// its HTTP server (serveErr) or its work (runErr), each a channel with room
// for one value that receives the part's result once. The first part to
// stop stops all: it returns that part's error ("http: " prefixed for the
// server; nil when ctx ended first) and puts a nil back in its channel, so
// the caller's teardown can receive from both channels alike.
func FirstStop(ctx context.Context, serveErr, runErr chan error) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-serveErr:
		serveErr <- nil
		return fmt.Errorf("http: %w", err)
	case err := <-runErr:
		runErr <- nil
		return err
	}
}
