package bench

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestClientAgainstNetHTTP(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("X-Sig", r.Header.Get("X-Sig"))
			_, _ = w.Write(b)
		case "/chunked":
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte("part1-"))
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte("part2"))
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = w.Write([]byte("bye"))
		default:
			http.Error(w, "nope", http.StatusNotFound)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	cl, err := NewClient(srv.URL, 4, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		resp, err := cl.Post(ctx, "/echo", http.Header{"X-Sig": {"abc"}}, []byte("hello"))
		if err != nil || resp.Status != 200 || string(resp.Body) != "hello" {
			t.Fatalf("echo %d: %+v %v", i, resp, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 5 sequential requests, want 1 (keep-alive)", n)
	}
	resp, err := cl.Post(ctx, "/chunked", nil, nil)
	if err != nil || resp.Status != 202 || string(resp.Body) != "part1-part2" {
		t.Fatalf("chunked: %+v %q %v", resp, resp.Body, err)
	}
	resp, err = cl.Post(ctx, "/missing", nil, []byte("x"))
	if err != nil || resp.Status != 404 || !strings.Contains(string(resp.Body), "nope") {
		t.Fatalf("404: %+v %v", resp, err)
	}
	before := conns.Load()
	for i := 0; i < 2; i++ {
		if resp, err := cl.Post(ctx, "/close", nil, nil); err != nil || string(resp.Body) != "bye" {
			t.Fatalf("close: %+v %v", resp, err)
		}
	}
	if got := conns.Load() - before; got != 1 {
		t.Fatalf("after Connection: close the client must dial again once: %d new connections", got)
	}
}

func TestReadResponseRejectsGarbage(t *testing.T) {
	for _, in := range []string{
		"SSH-2.0-OpenSSH\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	} {
		if _, _, err := readResponse(bufio.NewReader(strings.NewReader(in))); err == nil {
			t.Errorf("readResponse(%q) = nil error", in)
		} else if !errors.Is(err, errMalformed) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			t.Errorf("readResponse(%q) = %v", in, err)
		}
	}
	if _, err := NewClient("https://x:1", 1, time.Second); err == nil {
		t.Error("NewClient accepted https")
	}
}
