package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client is a lean HTTP/1.1 client for the load generator, in the spirit of
// wrk: each request is written with one syscall from a prepared buffer and
// its response read on the same keep-alive connection by the same
// goroutine. net/http's client costs ~2–3× the CPU per request (two
// goroutines and channel hand-offs per connection), and that CPU is taken
// from the services under test on a shared box; both the baseline and
// payhook are driven by this client.
//
// It speaks only what the targets answer: a status line, headers, and a
// body framed by Content-Length or chunked encoding.
type Client struct {
	addr    string // host:port
	timeout time.Duration
	idle    chan *clientConn
}

type clientConn struct {
	c   net.Conn
	br  *bufio.Reader
	buf []byte
}

// NewClient talks to base ("http://host:port") with at most conns idle
// keep-alive connections.
func NewClient(base string, conns int, timeout time.Duration) (*Client, error) {
	addr, ok := strings.CutPrefix(base, "http://")
	if !ok || addr == "" || strings.Contains(addr, "/") {
		return nil, fmt.Errorf("bench: client base %q is not http://host:port", base)
	}
	return &Client{addr: addr, timeout: timeout, idle: make(chan *clientConn, max(conns, 1))}, nil
}

// Response is what Post read.
type Response struct {
	Status int
	Body   []byte // the caller's
}

// Post sends one request and reads its whole response.
func (cl *Client) Post(ctx context.Context, path string, header http.Header, body []byte) (Response, error) {
	cc, err := cl.get(ctx)
	if err != nil {
		return Response{}, err
	}
	resp, keep, err := cc.roundTrip(cl.addr, path, header, body, cl.timeout)
	if err != nil || !keep {
		cc.c.Close()
		return resp, err
	}
	select {
	case cl.idle <- cc:
	default:
		cc.c.Close()
	}
	return resp, nil
}

// Close closes the idle connections.
func (cl *Client) Close() {
	for {
		select {
		case cc := <-cl.idle:
			cc.c.Close()
		default:
			return
		}
	}
}

func (cl *Client) get(ctx context.Context) (*clientConn, error) {
	select {
	case cc := <-cl.idle:
		return cc, nil
	default:
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", cl.addr)
	if err != nil {
		return nil, err
	}
	return &clientConn{c: c, br: bufio.NewReaderSize(c, 8<<10), buf: make([]byte, 0, 4<<10)}, nil
}

var errMalformed = errors.New("bench: malformed HTTP response")

func (cc *clientConn) roundTrip(host, path string, header http.Header, body []byte, timeout time.Duration) (Response, bool, error) {
	b := cc.buf[:0]
	b = append(b, "POST "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	for k, vs := range header {
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	cc.buf = b
	if timeout > 0 {
		if err := cc.c.SetDeadline(time.Now().Add(timeout)); err != nil {
			return Response{}, false, err
		}
	}
	if _, err := cc.c.Write(b); err != nil {
		return Response{}, false, err
	}
	return readResponse(cc.br)
}

// readResponse reads one response; keep reports whether the connection
// may carry another request.
func readResponse(br *bufio.Reader) (resp Response, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return resp, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return resp, false, fmt.Errorf("%w: status line %q", errMalformed, truncateBytes(line))
	}
	resp.Status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return resp, false, fmt.Errorf("%w: status line %q", errMalformed, truncateBytes(line))
	}
	keep = line[7] == '1'
	length, chunked := -1, false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return resp, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return resp, false, fmt.Errorf("%w: header %q", errMalformed, truncateBytes(h))
		}
		v = bytes.TrimSpace(v)
		switch {
		case asciiEqualFold(k, "Content-Length"):
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 {
				return resp, false, fmt.Errorf("%w: Content-Length %q", errMalformed, truncateBytes(v))
			}
		case asciiEqualFold(k, "Transfer-Encoding"):
			chunked = asciiEqualFold(v, "chunked")
		case asciiEqualFold(k, "Connection"):
			if asciiEqualFold(v, "close") {
				keep = false
			}
		}
	}
	switch {
	case chunked:
		resp.Body, err = readChunked(br)
	case length >= 0:
		if length > 1<<20 {
			return resp, false, fmt.Errorf("%w: body of %d bytes", errMalformed, length)
		}
		resp.Body = make([]byte, length)
		_, err = io.ReadFull(br, resp.Body)
	default: // body until close
		resp.Body, err = io.ReadAll(io.LimitReader(br, 1<<20))
		keep = false
	}
	return resp, keep && err == nil, err
}

func readChunked(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 32)
		if err != nil || n < 0 || len(out)+int(n) > 1<<20 {
			return nil, fmt.Errorf("%w: chunk size %q", errMalformed, truncateBytes(line))
		}
		if n == 0 {
			for { // trailers until the empty line
				t, err := br.ReadSlice('\n')
				if err != nil {
					return nil, err
				}
				if len(bytes.TrimRight(t, "\r\n")) == 0 {
					return out, nil
				}
			}
		}
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := io.ReadFull(br, out[start:]); err != nil {
			return nil, err
		}
		if crlf, err := br.ReadSlice('\n'); err != nil || len(bytes.TrimRight(crlf, "\r\n")) != 0 {
			return nil, fmt.Errorf("%w: chunk not followed by CRLF", errMalformed)
		}
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func truncateBytes(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
