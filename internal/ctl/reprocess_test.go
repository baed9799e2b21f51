package ctl

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
)

// startIngress runs ingress on cfg until the test ends; it returns its URL.
func startIngress(t *testing.T, cfg *config.Config, log io.Writer) string {
	var url string
	serve(t, func(ctx context.Context, ln net.Listener) error {
		url = "http://" + ln.Addr().String()
		return ingress.Run(ctx, cfg, ingress.RunOptions{Listener: ln, Log: slog.New(slog.NewJSONHandler(log, nil)), DrainTimeout: 5 * time.Second})
	})
	return url
}

// TestReprocess: callbacks refused with bad_signature under a broken key
// are stored once the key is fixed — origin reprocess, through the same
// dedupe, whatever allow_ips now says — and a dry run counts outcomes.
func TestReprocess(t *testing.T) {
	const wrongKey = "0000aaaa-0000-0000-0000-000000000000"
	s := newStack(t, fmt.Sprintf("accounts:\n  - {id: glo-in, provider: jpglo, merchant_id: \"1\", secret: %q, currency: INR}\n", wrongKey))
	var brokenLog testenv.LogBuffer
	broken := startIngress(t, s.cfg, &brokenLog)
	post := func(base string, body []byte) int {
		resp, err := http.Post(base+"/v1/callbacks/jpglo/glo-in/payin", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, order := range []string{"X-1", "X-2"} {
		if st := post(broken, jpgloCallback(t, order)); st != http.StatusUnauthorized {
			t.Fatalf("callback under the wrong key: %d", st)
		}
	}
	if st := post(broken, []byte(`{"not":"jpglo"}`)); st/100 != 4 {
		t.Fatalf("junk: %d", st)
	}

	// The key is fixed (and allow_ips now names another network): a new
	// ingress with today's config.
	fixed := filepath.Join(t.TempDir(), "fixed.yaml")
	y, _ := os.ReadFile(s.cfgPath)
	y = bytes.Replace(y, []byte(wrongKey+`", currency: INR`), []byte(jpgloKey+`", currency: INR, allow_ips: ["10.9.0.0/16"]`), 1)
	if err := os.WriteFile(fixed, y, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(fixed, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var goodLog testenv.LogBuffer
	good := startIngress(t, cfg, &goodLog)
	s.cfgPath, s.cfg = fixed, cfg

	var sum ReprocessSummary
	s.ctlJSON(&sum, "reprocess", "--provider", "jpglo", "--since", "10m", "--ingress", good, "--dry-run")
	if sum.Scanned != 3 || sum.Matched != 3 || sum.Outcomes["verifies"] != 2 || sum.Outcomes["rejected:missing_field"] != 1 {
		t.Fatalf("dry run: %+v", sum)
	}
	if n := eventsStored(t, s); n != 0 {
		t.Fatalf("dry run stored %d events", n)
	}
	s.ctlJSON(&sum, "reprocess", "--provider", "jpglo", "--account", "glo-in", "--reason", "bad_signature", "--since", "10m", "--ingress", good)
	if sum.Matched != 2 || sum.Outcomes["accepted"] != 2 {
		t.Fatalf("reprocess: %+v", sum)
	}
	if n := eventsStored(t, s); n != 2 {
		t.Fatalf("%d events stored, want 2", n)
	}
	msg, err := lastEvent(t, s)
	if err != nil || !bytes.Contains(msg, []byte(`"origin":"reprocess"`)) {
		t.Fatalf("event origin: %v %s", err, msg)
	}
	// Again: the same dedupe says duplicate, nothing new is stored.
	s.ctlJSON(&sum, "reprocess", "--provider", "jpglo", "--reason", "bad_signature", "--since", "10m", "--ingress", good)
	if sum.Outcomes["duplicate"] != 2 || eventsStored(t, s) != 2 {
		t.Fatalf("second run: %+v", sum)
	}
	out, err := s.ctl("reprocess", "--provider", "jpglo", "--since", "10m", "--ingress", good, "--dry-run")
	if err != nil || !strings.Contains(out, "verifies") {
		t.Errorf("table: %v %q", err, out)
	}
	// Log lines name what they are about: a refusal its provider and
	// account, never an empty event id; a stored one its order and event.
	if l := brokenLog.String(); !strings.Contains(l, `"msg":"callback refused","provider":"jpglo","account":"glo-in"`) || strings.Contains(l, `"event_id":""`) {
		t.Errorf("refusal log lines:\n%s", l)
	}
	if l := goodLog.String(); !strings.Contains(l, `"order_id":"X-1"`) || !strings.Contains(l, `"event_id":"evt_`) {
		t.Errorf("reprocess log lines:\n%s", l)
	}

	// The admin API wants the token.
	resp, err := http.Post(good+"/v1/reprocess", "application/json", strings.NewReader(`{"provider":"jpglo","since":"2026-01-01T00:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("reprocess without the token: %d", resp.StatusCode)
	}
	if _, err := s.ctl("reprocess", "--provider", "jpglo", "--since", "10m", "--ingress", broken+"/nope"); err == nil {
		t.Error("a bad ingress URL did not fail")
	}
}

func eventsStored(t *testing.T, s *stack) uint64 {
	t.Helper()
	st, err := s.js.Stream(context.Background(), natsbus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

func lastEvent(t *testing.T, s *stack) ([]byte, error) {
	st, err := s.js.Stream(context.Background(), natsbus.StreamEvents)
	if err != nil {
		return nil, err
	}
	m, err := st.GetMsg(context.Background(), st.CachedInfo().State.LastSeq)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}
