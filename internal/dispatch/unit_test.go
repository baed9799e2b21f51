package dispatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/pkg/events"
)

func TestCeiling(t *testing.T) {
	tests := []struct {
		name string
		n    int
		want time.Duration
	}{
		{"first retry is the initial delay", 1, 5 * time.Second},
		{"second", 2, 20 * time.Second},
		{"seventh", 7, 5*time.Hour + 41*time.Minute + 20*time.Second},
		{"eighth hits the cap", 8, 10 * time.Hour},
		{"far beyond does not overflow", 90, 10 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Ceiling(tt.n, 5*time.Second, 10*time.Hour); got != tt.want {
				t.Fatalf("Ceiling(%d) = %s, want %s", tt.n, got, tt.want)
			}
		})
	}
}

// TestDefaultScheduleTotal pins the numbers in the Backoff doc comment.
func TestDefaultScheduleTotal(t *testing.T) {
	var ceil, mid time.Duration
	for n := 1; n < 15; n++ {
		c := Ceiling(n, 5*time.Second, 10*time.Hour)
		ceil += c
		mid += (5*time.Second + c) / 2
	}
	if ceil != 279305*time.Second {
		t.Fatalf("sum of ceilings = %s (%d s), want 279305 s", ceil, int(ceil.Seconds()))
	}
	if mid < 139680*time.Second || mid > 139690*time.Second {
		t.Fatalf("expected total = %s, want ≈ 139,688 s", mid)
	}
}

func TestBackoff(t *testing.T) {
	ini, mx := 5*time.Second, 10*time.Hour
	tests := []struct {
		name       string
		n          int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{"jitter within [initial, ceiling]", 3, 0, ini, 80 * time.Second},
		{"retry-after honored", 3, time.Minute, time.Minute, time.Minute},
		{"retry-after clamped up to initial", 3, time.Second, ini, ini},
		{"retry-after clamped down to max", 3, 100 * time.Hour, mx, mx},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 200 {
				got := Backoff(tt.n, ini, mx, tt.retryAfter)
				if got < tt.lo || got > tt.hi {
					t.Fatalf("Backoff = %s, want within [%s, %s]", got, tt.lo, tt.hi)
				}
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name, v string
		want    time.Duration
	}{
		{"seconds", "120", 2 * time.Minute},
		{"empty", "", 0},
		{"negative", "-5", 0},
		{"garbage", "soon", 0},
		{"http date", now.Add(time.Hour).Format(http.TimeFormat), time.Hour},
		{"date in the past", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"huge is bounded", "999999999999", 365 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.v, now); got != tt.want {
				t.Fatalf("parseRetryAfter(%q) = %s, want %s", tt.v, got, tt.want)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	f.Add("120")
	f.Add("Wed, 21 Oct 2015 07:28:00 GMT")
	now := time.Now()
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, now); d < 0 || d > 366*24*time.Hour {
			t.Fatalf("parseRetryAfter(%q) = %s out of range", v, d)
		}
		if d := Backoff(3, time.Second, time.Hour, parseRetryAfter(v, now)); d < time.Second || d > time.Hour {
			t.Fatalf("Backoff out of [initial, max]: %s", d)
		}
	})
}

func TestDecide(t *testing.T) {
	fail := errors.New("x")
	tests := []struct {
		name     string
		r        Result
		attempt  int
		want     Disposition
		maxTries int
	}{
		{"2xx delivered", Result{Status: 204}, 1, Delivered, 3},
		{"2xx on last attempt delivered", Result{Status: 200}, 3, Delivered, 3},
		{"500 retried", Result{Status: 500, Err: fail}, 1, Retry, 3},
		{"timeout retried", Result{Err: fail}, 2, Retry, 3},
		{"last attempt dead-lettered", Result{Status: 500, Err: fail}, 3, DeadLettered, 3},
		{"410 pauses", Result{Status: 410, Err: fail}, 1, Pause, 3},
		{"410 on last attempt still pauses", Result{Status: 410, Err: fail}, 3, Pause, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.r, tt.attempt, tt.maxTries); got != tt.want {
				t.Fatalf("Decide = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBreaker(t *testing.T) {
	now := time.Unix(1000, 0)
	var states []BreakerState
	b := newBreaker(2, time.Second, 3*time.Second, func(s BreakerState) { states = append(states, s) })
	b.now = func() time.Time { return now }
	mustAllow := func(want bool) {
		t.Helper()
		if ok, _ := b.allow(); ok != want {
			t.Fatalf("allow = %v, want %v (state %s)", ok, want, b.current())
		}
	}
	mustAllow(true)
	b.result(false)
	mustAllow(true)
	b.result(false) // 2nd consecutive failure: open for 1s
	if b.current() != BreakerOpen || b.blockedFor() != time.Second {
		t.Fatalf("state %s blocked %s, want open for 1s", b.current(), b.blockedFor())
	}
	mustAllow(false)
	now = now.Add(time.Second)
	mustAllow(true)  // the probe
	mustAllow(false) // only one probe at a time
	b.result(false)  // probe failed: open for 2s
	if b.blockedFor() != 2*time.Second {
		t.Fatalf("cool-down %s, want doubled to 2s", b.blockedFor())
	}
	now = now.Add(2 * time.Second)
	mustAllow(true)
	b.result(false)
	if b.blockedFor() != 3*time.Second {
		t.Fatalf("cool-down %s, want capped at 3s", b.blockedFor())
	}
	now = now.Add(3 * time.Second)
	mustAllow(true)
	b.result(true)
	if b.current() != BreakerClosed {
		t.Fatalf("state %s after a successful probe, want closed", b.current())
	}
	want := []BreakerState{BreakerOpen, BreakerHalfOpen, BreakerOpen, BreakerHalfOpen, BreakerOpen, BreakerHalfOpen, BreakerClosed}
	if len(states) != len(want) {
		t.Fatalf("transitions %v, want %v", states, want)
	}
}

// localVectors holds the Standard Webhooks test vectors: the spec's own
// example and others computed outside the project (see its "_about").
var localVectors = filepath.Join("testdata", "vectors.json")

type swVector struct {
	Name, Secret, ID, Body, Signature string
	Timestamp                         int64
}

// readSWVectors returns the standard_webhooks section of the vectors file
// at path; ok is false when the file does not exist.
func readSWVectors(t *testing.T, path string) (vs []swVector, ok bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		StandardWebhooks []swVector `json:"standard_webhooks"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(v.StandardWebhooks) == 0 {
		t.Fatalf("%s: no standard_webhooks vectors", path)
	}
	return v.StandardWebhooks, true
}

// TestSignVector reproduces the Standard Webhooks vectors of
// testdata/vectors.json, among them the spec's own example.
func TestSignVector(t *testing.T) {
	vs, ok := readSWVectors(t, localVectors)
	if !ok {
		t.Fatalf("%s missing", localVectors)
	}
	for _, tc := range vs {
		t.Run(tc.Name, func(t *testing.T) {
			s, err := NewSigner([]string{tc.Secret})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Sign(tc.ID, time.Unix(tc.Timestamp, 0), []byte(tc.Body))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.Signature {
				t.Fatalf("signature %q, want %q", got, tc.Signature)
			}
			wh, _ := standardwebhooks.NewWebhook(tc.Secret)
			h := http.Header{}
			h.Set("webhook-id", tc.ID)
			h.Set("webhook-timestamp", "1614265330")
			h.Set("webhook-signature", got)
			if err := wh.VerifyIgnoringTimestamp([]byte(tc.Body), h); err != nil {
				t.Fatalf("reference library rejects our signature: %v", err)
			}
		})
	}
}

func TestNewSignerRejectsBadSecretWithoutEchoingIt(t *testing.T) {
	_, err := NewSigner([]string{"whsec_!!!not-base64-secret!!!"})
	if err == nil {
		t.Fatal("want error for a non-base64 secret")
	}
	if got := err.Error(); len(got) > 0 && containsSecret(got) {
		t.Fatalf("error echoes the secret: %s", got)
	}
}

func containsSecret(s string) bool {
	for i := 0; i+10 <= len(s); i++ {
		if s[i:i+10] == "not-base64" {
			return true
		}
	}
	return false
}

func TestFilterSubjectsAndMatch(t *testing.T) {
	ev := events.Event{Provider: "jpglo", Account: "glo-in", Kind: "payin"}
	tests := []struct {
		name     string
		f        config.Filter
		subjects int
		subject  string
		match    bool
	}{
		{"empty filter matches all, conflict too", config.Filter{}, 1, "payhook.events.jpglo.payin.conflict", true},
		{"terminal statuses get conflicts too", config.Filter{Statuses: []string{"succeeded", "failed"}}, 3, "payhook.events.jpglo.payin.conflict", true},
		{"pending only skips conflict", config.Filter{Statuses: []string{"pending"}}, 1, "payhook.events.jpglo.payin.conflict", false},
		{"statuses naming conflict match it", config.Filter{Statuses: []string{"conflict"}}, 1, "payhook.events.jpglo.payin.conflict", true},
		{"provider product", config.Filter{Providers: []string{"jpglo", "mpurse"}, Kinds: []string{"payin"}}, 2, "payhook.events.jpglo.payin.pending", true},
		{"other provider", config.Filter{Providers: []string{"mpurse"}}, 1, "payhook.events.jpglo.payin.pending", false},
		{"account filtered in code", config.Filter{Accounts: []string{"other"}}, 1, "payhook.events.jpglo.payin.pending", false},
		{"account matches", config.Filter{Accounts: []string{"glo-in"}}, 1, "payhook.events.jpglo.payin.pending", true},
		{"malformed subject", config.Filter{}, 1, "payhook.events.jpglo", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FilterSubjects(tt.f); len(got) != tt.subjects {
				t.Fatalf("FilterSubjects = %v, want %d subjects", got, tt.subjects)
			}
			if got := Match(tt.f, tt.subject, ev); got != tt.match {
				t.Fatalf("Match = %v, want %v", got, tt.match)
			}
		})
	}
}

// TestSignerSignsWithEverySecret: with two secrets (a rotation) the
// header carries one signature per secret, each verifying under its own.
func TestSignerSignsWithEverySecret(t *testing.T) {
	old, cur := newSecret(t), newSecret(t)
	s, err := NewSigner([]string{old, cur})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"evt_1"}`)
	now := time.Now()
	got, err := s.Sign("evt_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(got, "v1,"); n != 2 {
		t.Fatalf("signature %q has %d signatures, want 2", got, n)
	}
	for _, sec := range []string{old, cur} {
		wh, _ := standardwebhooks.NewWebhook(sec)
		h := http.Header{}
		h.Set("webhook-id", "evt_1")
		h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		h.Set("webhook-signature", got)
		if err := wh.Verify(body, h); err != nil {
			t.Fatalf("does not verify under one of the secrets: %v", err)
		}
	}
}

// TestSignerMatchesLibrary: Sign gives byte for byte what the Standard
// Webhooks library's Sign gives, joined by spaces, for one to three
// secrets, bodies of every size, ids and timestamps, signing concurrently
// (the keyed HMACs are pooled).
func TestSignerMatchesLibrary(t *testing.T) {
	secrets := []string{newSecret(t), newSecret(t), newSecret(t)}
	for n := 1; n <= len(secrets); n++ {
		s, err := NewSigner(secrets[:n])
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 200 {
					body := bytes.Repeat([]byte{byte('a' + i%26)}, (i*37+g)%3000)
					id := fmt.Sprintf("evt_%d_%d", g, i)
					ts := time.Unix(int64(1_600_000_000+i*g), 0)
					got, err := s.Sign(id, ts, body)
					if err != nil {
						t.Error(err)
						return
					}
					var want []string
					for _, sec := range secrets[:n] {
						wh, _ := standardwebhooks.NewWebhook(sec)
						sig, _ := wh.Sign(id, ts, body)
						want = append(want, sig)
					}
					if w := strings.Join(want, " "); got != w {
						t.Errorf("secrets %d, body %d bytes: %q, library %q", n, len(body), got, w)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}
