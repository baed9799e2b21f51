package ops

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveWith runs NewServer(h, t) on a local port and returns its address.
func serveWith(tb testing.TB, t Timeouts) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}), t)
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// closedWithin reports whether the server closes conn (EOF or reset on a
// read) within d.
func closedWithin(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 512)
	for {
		_, err := conn.Read(buf)
		if err == nil {
			continue // e.g. a 408 the server writes before closing
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

func TestDefaultTimeoutsAreSet(t *testing.T) {
	srv := NewServer(http.NotFoundHandler(), Timeouts{})
	if srv.ReadHeaderTimeout != 10*time.Second || srv.ReadTimeout != 30*time.Second ||
		srv.WriteTimeout != 60*time.Second || srv.IdleTimeout != 120*time.Second || srv.MaxHeaderBytes != 16<<10 {
		t.Errorf("defaults: %+v", srv)
	}
	srv = NewServer(http.NotFoundHandler(), Timeouts{Write: 45 * time.Second})
	if srv.WriteTimeout != 45*time.Second || srv.ReadHeaderTimeout != 10*time.Second {
		t.Errorf("override: write %s read-header %s", srv.WriteTimeout, srv.ReadHeaderTimeout)
	}
}

// TestSlowlorisIsClosed: a client sending its request headers one byte at a
// time is cut off once the read-header timeout has passed, though it never
// stops sending.
func TestSlowlorisIsClosed(t *testing.T) {
	addr := serveWith(t, Timeouts{ReadHeader: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Slow: aaaaaaaaaa\r\n", 50)
	start := time.Now()
	for i := 0; i < len(req); i++ {
		if _, err := conn.Write([]byte{req[i]}); err != nil {
			break // the server closed the connection: what we want
		}
		time.Sleep(20 * time.Millisecond)
		if time.Since(start) > 5*time.Second {
			t.Fatal("still sending headers after 5s: the server never closed the connection")
		}
	}
	if !closedWithin(conn, 5*time.Second) {
		t.Fatal("a slowloris connection was kept open")
	}
}

// TestHugeHeaderGets431: 1 MiB of request headers is refused with 431.
func TestHugeHeaderGets431(t *testing.T) {
	addr := serveWith(t, DefaultTimeouts)
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 1<<20))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("1 MiB header: %d, want 431", resp.StatusCode)
	}
	// 12 KiB, under the 16 KiB cap, is served.
	req.Header.Set("X-Big", strings.Repeat("a", 12<<10))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("12 KiB header: %d, want 200", resp.StatusCode)
	}
}

// TestIdleKeepAliveIsClosed: a keep-alive connection that sends nothing
// after its first request is closed after the idle timeout.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	addr := serveWith(t, Timeouts{Idle: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("first request: %d, close %v", resp.StatusCode, resp.Close)
	}
	if !closedWithin(conn, 5*time.Second) {
		t.Fatal("an idle keep-alive connection was kept open")
	}
}
