package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

func serve(t *testing.T, h http.Handler) (*http.Server, *Inflight, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Inflight{}
	srv := &http.Server{Handler: f.Wrap(h)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return srv, f, ln.Addr().String()
}

// A connection that never sends a request must not turn a clean drain into
// an error (net/http waits 5 s for such connections).
func TestShutdownIgnoresConnectionsWithoutRequests(t *testing.T) {
	srv, _, addr := serve(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond) // accepted: StateNew
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := Shutdown(ctx, srv, &Inflight{}); err != nil {
		t.Fatalf("Shutdown = %v, want nil", err)
	}
}

func TestShutdownReportsRequestsCutOff(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	srv, f, addr := serve(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(started)
		<-release
	}))
	defer close(release)
	go func() {
		if resp, err := http.Post("http://"+addr, "text/plain", nil); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	if f.Load() != 1 {
		t.Fatalf("in flight = %d, want 1", f.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := Shutdown(ctx, srv, f); err == nil {
		t.Fatal("Shutdown = nil with a request still in flight")
	}
}

// FirstStop returns the first part's error (the server's marked "http: ",
// none when ctx ended) and leaves a nil in that part's channel.
func TestFirstStop(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		name             string
		serve, run       error // sent before FirstStop, nil: nothing sent
		cancel           bool
		want             string
		serveNil, runNil bool // a nil is waiting in that channel afterwards
	}{
		{name: "ctx", cancel: true, want: "<nil>"},
		{name: "http", serve: boom, want: "http: boom", serveNil: true},
		{name: "run", run: boom, want: "boom", runNil: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			serveErr, runErr := make(chan error, 1), make(chan error, 1)
			if c.serve != nil {
				serveErr <- c.serve
			}
			if c.run != nil {
				runErr <- c.run
			}
			if c.cancel {
				cancel()
			}
			if got := fmt.Sprint(FirstStop(ctx, serveErr, runErr)); got != c.want {
				t.Fatalf("FirstStop = %s, want %s", got, c.want)
			}
			if got := len(serveErr) == 1; got != c.serveNil {
				t.Fatalf("serveErr holds a value: %v, want %v", got, c.serveNil)
			}
			if got := len(runErr) == 1; got != c.runNil {
				t.Fatalf("runErr holds a value: %v, want %v", got, c.runNil)
			}
		})
	}
}
