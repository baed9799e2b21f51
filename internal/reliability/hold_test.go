package reliability_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// holdProxy stands between the simulator and ingress for the callbacks of
// chosen orders (their OrderSpec.NotifyURL points at it) and keeps each
// callback in flight at ingress for as long as the test wants: it opens its
// own connection to ingress, sends the request line, the headers and the
// first half of the body, and sends the rest only after Release. Ingress
// has then read the headers and is in its handler, reading the body: the
// request is in flight for as long as it is held. Whatever ingress answers
// (or a connection error) is recorded and relayed to the simulator, which
// judges the reply as the provider would.
type holdProxy struct {
	srv     *httptest.Server
	ingress string // host:port

	mu       sync.Mutex
	held     int
	release  chan struct{}
	released sync.Once
	results  []heldResult
}

// heldResult is what ingress did with one held callback.
type heldResult struct {
	Path     string
	HeldAt   time.Time // headers and half the body written to ingress
	Released time.Time // the rest written
	Status   int       // 0 on a connection error
	Body     string
	Err      error
}

func newHoldProxy(ingressAddr string) *holdProxy {
	p := &holdProxy{ingress: ingressAddr, release: make(chan struct{})}
	p.srv = httptest.NewServer(p)
	return p
}

// URL is the proxy's root; a callback URL is URL + the ingress path.
func (p *holdProxy) URL() string { return p.srv.URL }

// Held is how many callbacks are held at ingress now.
func (p *holdProxy) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// Release sends the rest of every held callback (and of any that come later).
func (p *holdProxy) Release() { p.released.Do(func() { close(p.release) }) }

// Results returns what ingress answered to each callback, in completion order.
func (p *holdProxy) Results() []heldResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]heldResult(nil), p.results...)
}

// Close releases what is still held (httptest.Server.Close waits for every
// handler) and stops the proxy.
func (p *holdProxy) Close() { p.Release(); p.srv.CloseClientConnections(); p.srv.Close() }

func (p *holdProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	res := p.forward(r, body)
	p.mu.Lock()
	p.results = append(p.results, res)
	p.mu.Unlock()
	if res.Err != nil {
		// The simulator must see what a provider would: a dropped connection.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		http.Error(w, "proxy: "+res.Err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(res.Status)
	_, _ = io.WriteString(w, res.Body)
}

func (p *holdProxy) forward(r *http.Request, body []byte) heldResult {
	res := heldResult{Path: r.URL.Path}
	conn, err := net.DialTimeout("tcp", p.ingress, 5*time.Second)
	if err != nil {
		res.Err = err
		return res
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n", r.URL.RequestURI(), p.ingress, len(body))
	for k, vs := range r.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Connection", "Host", "Accept-Encoding":
			continue
		}
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	head.WriteString("\r\n")
	half := len(body) / 2
	if _, err := io.WriteString(conn, head.String()); err != nil {
		res.Err = err
		return res
	}
	if _, err := conn.Write(body[:half]); err != nil {
		res.Err = err
		return res
	}
	res.HeldAt = time.Now()
	p.mu.Lock()
	p.held++
	p.mu.Unlock()
	<-p.release
	res.Released = time.Now()
	_, err = conn.Write(body[half:])
	p.mu.Lock()
	p.held--
	p.mu.Unlock()
	if err != nil {
		res.Err = err
		return res
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		res.Err = err
		return res
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	res.Status, res.Body, res.Err = resp.StatusCode, string(b), err
	return res
}
