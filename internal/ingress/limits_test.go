package ingress

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
)

// TestWriteTimeoutOutlastsPublish: a callback may read its body for up to
// the read timeout, then wait publish_timeout for its event and again for
// its raw record; the write timeout must not cut it off first.
func TestWriteTimeoutOutlastsPublish(t *testing.T) {
	for _, pt := range []time.Duration{time.Second, 5 * time.Second, 25 * time.Second} {
		cfg := testConfig()
		cfg.Ingress.PublishTimeout = config.Duration(pt)
		s := &Server{cfg: cfg}
		tm := s.Timeouts()
		if tm.Write <= tm.Read+2*pt {
			t.Errorf("publish_timeout %s: write timeout %s does not outlast read %s + 2 × publish", pt, tm.Write, tm.Read)
		}
		if tm.ReadHeader <= 0 || tm.Idle <= 0 || tm.MaxHeaderBytes <= 0 {
			t.Errorf("publish_timeout %s: %+v", pt, tm)
		}
	}
}

// TestHugeHeaderToIngressGets431: the ingress server caps request headers.
func TestHugeHeaderToIngressGets431(t *testing.T) {
	h := start(t, testConfig(), nil)
	req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/callbacks/fakeprov/acc-1/payin", strings.NewReader(body("o-431", "succeeded", "100.00")))
	req.Header.Set("X-Big", strings.Repeat("a", 1<<20))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("1 MiB header: %d, want 431", resp.StatusCode)
	}
}

// TestCheckBodyLimit: the default body_limit fits NATS's default 1 MiB
// max_payload; 1.5 MB does not, and the error names the key and the bound.
func TestCheckBodyLimit(t *testing.T) {
	if err := CheckBodyLimit(config.DefaultBodyLimit, 1<<20); err != nil {
		t.Errorf("default body_limit on a 1 MiB max_payload: %v", err)
	}
	err := CheckBodyLimit(1_500_000, 1<<20)
	if err == nil || !strings.HasPrefix(err.Error(), "config: ingress.body_limit: 1500000 bytes") || !strings.Contains(err.Error(), "at most 153600") {
		t.Errorf("1.5 MB body_limit on a 1 MiB max_payload: %v", err)
	}
	if MaxBodyLimit(1<<20) != 153600 {
		t.Errorf("MaxBodyLimit(1 MiB) = %d, want 153600 (docs/config.md)", MaxBodyLimit(1<<20))
	}
}
