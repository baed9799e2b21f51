package security_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/payhook/payhook/internal/config"
)

// allowSecret is account's jpglo key: each its own, since two jpglo
// accounts with one key are a config error (a callback would verify for both).
func allowSecret(account string) string { return "allowlist-jpglo-key-77-" + account }

func allowConfig(t *testing.T, trustedHeader string, bodyLimit int) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
ingress: {trusted_proxy_header: %q, trusted_proxies: %s, body_limit: %d}
accounts:
  - {id: glo-ip, provider: jpglo, merchant_id: "1", secret: %s, currency: INR, allow_ips: ["203.0.113.0/24"]}
  - {id: glo-v6, provider: jpglo, merchant_id: "1", secret: %s, currency: INR, allow_ips: ["2001:db8::/32"]}
  - {id: glo-any, provider: jpglo, merchant_id: "1", secret: %s, currency: INR}
`, trustedHeader, proxiesFor(trustedHeader), bodyLimit, allowSecret("glo-ip"), allowSecret("glo-v6"), allowSecret("glo-any"))), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var orderSeq atomic.Int64

func signedCallback(t *testing.T, account string) []byte {
	t.Helper()
	b, _ := jpgloPayin(t, allowSecret(account), fmt.Sprintf("ALLOW-%d", orderSeq.Add(1)), `{"user_id":"1"}`)
	return b
}

// TestIPAllowlistHonoursOnlyTheConfiguredProxyHeader: without
// ingress.trusted_proxy_header the socket address decides and no header can
// claim another; with it, only that header counts, and only its last
// address (the one the trusted proxy appended; earlier ones are whatever
// the client claimed). Unparsable addresses fail closed.
func TestIPAllowlistHonoursOnlyTheConfiguredProxyHeader(t *testing.T) {
	type req struct {
		name    string
		account string
		hdr     []string // added with Header.Add: repeated names make repeated lines
		allowed bool
	}
	tests := []struct {
		name    string
		trusted string
		reqs    []req
	}{
		{"no trusted header configured", "", []req{
			{"socket address only", "glo-ip", nil, false},
			{"spoofed X-Forwarded-For", "glo-ip", []string{"X-Forwarded-For", "203.0.113.5"}, false},
			{"spoofed X-Real-IP", "glo-ip", []string{"X-Real-IP", "203.0.113.5"}, false},
			{"spoofed Forwarded", "glo-ip", []string{"Forwarded", "for=203.0.113.5"}, false},
			{"spoofed True-Client-IP", "glo-ip", []string{"True-Client-IP", "203.0.113.5"}, false},
			{"spoofed CF-Connecting-IP", "glo-ip", []string{"CF-Connecting-IP", "203.0.113.5"}, false},
			{"account without allowlist", "glo-any", []string{"X-Forwarded-For", "198.51.100.1"}, true},
		}},
		{"X-Forwarded-For trusted", "X-Forwarded-For", []req{
			{"proxy appended an allowed address", "glo-ip", []string{"X-Forwarded-For", "203.0.113.5"}, true},
			{"client spoofed the first hop", "glo-ip", []string{"X-Forwarded-For", "203.0.113.5, 198.51.100.1"}, false},
			{"allowed last hop after a client's claim", "glo-ip", []string{"X-Forwarded-For", "198.51.100.1, 203.0.113.5"}, true},
			{"second header line wins (disallowed)", "glo-ip", []string{"X-Forwarded-For", "203.0.113.5", "X-Forwarded-For", "198.51.100.7"}, false},
			{"second header line wins (allowed)", "glo-ip", []string{"X-Forwarded-For", "198.51.100.7", "X-Forwarded-For", "203.0.113.5"}, true},
			{"header absent: socket address", "glo-ip", nil, false},
			{"header empty: socket address", "glo-ip", []string{"X-Forwarded-For", ""}, false},
			{"another header is not trusted", "glo-ip", []string{"X-Real-IP", "203.0.113.5"}, false},
			{"address with a port fails closed", "glo-ip", []string{"X-Forwarded-For", "203.0.113.5:4711"}, false},
			{"garbage fails closed", "glo-ip", []string{"X-Forwarded-For", "not-an-ip"}, false},
			{"IPv4-mapped IPv6 is unmapped", "glo-ip", []string{"X-Forwarded-For", "::ffff:203.0.113.5"}, true},
			{"IPv6 allowlist", "glo-v6", []string{"X-Forwarded-For", "198.51.100.1, 2001:db8::1"}, true},
			{"IPv6 outside the allowlist", "glo-v6", []string{"X-Forwarded-For", "2001:db9::1"}, false},
			{"neighbour network", "glo-ip", []string{"X-Forwarded-For", "203.0.114.5"}, false},
		}},
		{"X-Real-IP trusted", "X-Real-IP", []req{
			{"X-Real-IP allowed", "glo-ip", []string{"X-Real-IP", "203.0.113.5"}, true},
			{"X-Forwarded-For is not trusted", "glo-ip", []string{"X-Forwarded-For", "203.0.113.5"}, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := startIngress(t, allowConfig(t, tt.trusted, 64<<10))
			for _, r := range tt.reqs {
				t.Run(r.name, func(t *testing.T) {
					got := do(t, http.MethodPost, in.url+"/v1/callbacks/jpglo/"+r.account+"/payin", signedCallback(t, r.account), r.hdr...)
					switch {
					case r.allowed && got.status != 200:
						t.Errorf("allowed source refused: %d %s", got.status, got.body)
					case !r.allowed && (got.status != 403 || reasonOf(got) != "ip_not_allowed"):
						t.Errorf("got %d %s, want 403 ip_not_allowed", got.status, got.body)
					}
				})
			}
		})
	}
}

// TestBodyLimitEnforced: ingress.body_limit bounds every callback body,
// with or without a Content-Length, before any provider code sees it; a
// refused body is not copied to the raw record.
func TestBodyLimitEnforced(t *testing.T) {
	const limit = 2048
	in := startIngress(t, allowConfig(t, "", limit))
	pad := func(n int) []byte {
		b := signedCallback(t, "glo-any")
		return append(append([]byte("{"), bytes.Repeat([]byte(" "), n-len(b))...), b[1:]...)
	}
	tests := []struct {
		name    string
		body    func() io.Reader
		status  int
		reason  string
		chunked bool
	}{
		{"exactly the limit", func() io.Reader { return bytes.NewReader(pad(limit)) }, 200, "", false},
		{"one byte over", func() io.Reader { return bytes.NewReader(pad(limit + 1)) }, 413, "too_large", false},
		{"one byte over, chunked", func() io.Reader { return io.MultiReader(bytes.NewReader(pad(limit + 1))) }, 413, "too_large", true},
		{"four times over, chunked", func() io.Reader { return io.MultiReader(bytes.NewReader(pad(4 * limit))) }, 413, "too_large", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, in.url+"/v1/callbacks/jpglo/glo-any/payin", tt.body())
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Case", tt.name)
			if tt.chunked != (req.ContentLength <= 0) {
				t.Fatalf("chunked = %v, content length %d", tt.chunked, req.ContentLength)
			}
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			got := resp{r.StatusCode, string(b)}
			if got.status != tt.status || (tt.reason != "" && reasonOf(got) != tt.reason) {
				t.Errorf("got %d %s, want %d %s", got.status, got.body, tt.status, tt.reason)
			}
		})
	}
	for _, rec := range rawRecords(t, in.js, len(tests)) {
		if rec.Reason == "too_large" && len(rec.Body) != 0 {
			t.Errorf("%s: an oversized body was copied to PAYHOOK_RAW_REJECTED (%d bytes)", strings.Join(rec.Headers["X-Case"], ""), len(rec.Body))
		}
	}
}

// proxiesFor is the trusted_proxies list that goes with a header: the test
// client (the "proxy") connects from loopback.
func proxiesFor(header string) string {
	if header == "" {
		return "[]"
	}
	return "[127.0.0.1/32]"
}
