package ingress

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
)

// rawRecords reads every record of stream on subject, decoded.
func (h *harness) rawRecords(stream, subject string) []RawRecord {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := h.js.Stream(ctx, stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		h.t.Fatal(err)
	}
	want := 0
	for _, n := range info.State.Subjects {
		want += int(n)
	}
	var out []RawRecord
	if want == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		h.t.Fatal(err)
	}
	for len(out) < want {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			h.t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			rec, err := DecodeRawRecord(m.Headers(), m.Data())
			if err != nil {
				h.t.Fatalf("%s: %v", m.Subject(), err)
			}
			out = append(out, rec)
		}
		if n == 0 {
			break
		}
	}
	return out
}

func (h *harness) streamState(name string) jetstream.StreamState {
	h.t.Helper()
	st, err := h.js.Stream(context.Background(), name)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State
}

// send posts body to path from client address from (through the trusted
// proxy header) and returns the status.
func (h *harness) send(method, path string, body []byte, from string) int {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+path, bytes.NewReader(body))
	if from != "" {
		req.Header.Set("X-Forwarded-For", from)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// A body with every byte value is stored as those bytes, and the stored
// message is the body plus the request headers plus a bounded envelope —
// not a JSON escape of it (a 0x01 byte used to take six).
func TestRawRecordStoresBodyBytes(t *testing.T) {
	h := start(t, testConfig(), nil)
	body := bytes.Repeat(allBytes(), 4) // 1 KiB, every byte 4 times: not JSON, rejected "malformed", recorded whole
	req, _ := http.NewRequest(http.MethodPost, h.url+cbPath, bytes.NewReader(body))
	req.Header.Set("X-Odd", "100% é") // a value that needs escaping
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("status %d, want 400 malformed", resp.StatusCode)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return h.count(natsbus.StreamRawRejected, "payhook.raw.fakeprov.rejected") == 1 }, "record stored")
	recs := h.rawRecords(natsbus.StreamRawRejected, "payhook.raw.fakeprov.rejected")
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if !bytes.Equal(r.Body, body) || r.BodyLength != int64(len(body)) || r.BodyTruncated {
		t.Errorf("body not byte-exact: %d bytes (length %d, truncated %v), sent %d", len(r.Body), r.BodyLength, r.BodyTruncated, len(body))
	}
	if got := r.Headers["X-Odd"]; len(got) != 1 || got[0] != "100% é" {
		t.Errorf("X-Odd = %q", got)
	}
	if r.Reason != "malformed" || r.Status != 400 || r.Path != cbPath || r.ClientIP != "127.0.0.1" || r.Account != "acc-1" {
		t.Errorf("envelope %+v", r)
	}
	// The stored size: JetStream's count of the one message (subject,
	// headers, data and its own per-message overhead).
	headers := 0
	for k, vs := range req.Header {
		for _, v := range vs {
			headers += len(k) + len(v) + 18
		}
	}
	// Go's client adds Content-Length, User-Agent, Accept-Encoding.
	headers += 3 * 64
	limit := len(body) + headers + len(cbPath) + rawEnvelopeBytes + 100
	if got := h.streamState(natsbus.StreamRawRejected).Bytes; got > uint64(limit) {
		t.Errorf("stored record is %d bytes for a %d-byte body, over %d", got, len(body), limit)
	}
}

// An unrouted request keeps the first UnroutedBodyBytes of its body, with
// the whole body's length and SHA-256.
func TestUnroutedBodyTruncated(t *testing.T) {
	h := start(t, testConfig(), nil)
	body := bytes.Repeat([]byte("junk\x01"), 400) // 2000 bytes, under body_limit 2048
	sum := sha256.Sum256(body)
	for _, path := range []string{"/v1/callbacks/x1", "/v1/callbacks/nosuch/acc-1/payin", "/v1/callbacks/fakeprov/nope/payin", "/v1/callbacks/fakeprov/acc-1/refund"} {
		if code := h.send(http.MethodPost, path, body, ""); code != 404 {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return h.count(natsbus.StreamRawRejected, "payhook.raw.>") == 4 }, "4 records")
	for _, r := range h.rawRecords(natsbus.StreamRawRejected, "payhook.raw.>") {
		if !r.BodyTruncated || !bytes.Equal(r.Body, body[:UnroutedBodyBytes]) || r.BodyLength != int64(len(body)) || r.BodySHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s (%s): body %d bytes, truncated %v, length %d, sha %s", r.Path, r.Reason, len(r.Body), r.BodyTruncated, r.BodyLength, r.BodySHA256)
		}
	}
}

// Rejections past ingress.rejections_burst from one address are answered
// 429, counted and not recorded; another address still has its own burst;
// a callback that verifies is never limited, whatever its address spent.
func TestRejectionsRateLimitedPerAddress(t *testing.T) {
	cfg := testConfig()
	cfg.Ingress.RejectionsPerSecond, cfg.Ingress.RejectionsBurst = 0.001, 5
	h := start(t, cfg, nil)
	junk := []byte("not json")
	codes := map[int]int{}
	for i := 0; i < 8; i++ {
		codes[h.send(http.MethodPost, cbPath, junk, "198.51.100.7")]++
	}
	for i := 0; i < 4; i++ {
		codes[h.send(http.MethodPost, "/v1/callbacks/x", junk, "198.51.100.7")]++
	}
	if codes[400] != 5 || codes[429] != 7 {
		t.Errorf("answers %v, want 5×400 then 7×429", codes)
	}
	// An IPv6 /64 is one address.
	if code := h.send(http.MethodPost, cbPath, junk, "2001:db8:1:2::1"); code != 400 {
		t.Errorf("first from an IPv6 /64: %d", code)
	}
	for i := 0; i < 5; i++ {
		h.send(http.MethodPost, cbPath, junk, fmt.Sprintf("2001:db8:1:2::%x", i+2))
	}
	if code := h.send(http.MethodPost, cbPath, junk, "2001:db8:1:2:ffff::9"); code != 429 {
		t.Errorf("7th from the same /64: %d, want 429", code)
	}
	if code := h.send(http.MethodPost, cbPath, junk, "198.51.100.8"); code != 400 {
		t.Errorf("another address: %d, want its own 400", code)
	}
	if code := h.send(http.MethodPost, cbPath, []byte(body("ORD-RL", "succeeded", "100.00")), "198.51.100.7"); code != 200 {
		t.Errorf("a valid callback from a limited address: %d, want 200", code)
	}
	req, _ := http.NewRequest(http.MethodPost, h.url+cbPath, strings.NewReader("x"))
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"error":"rate_limited"`) {
		t.Errorf("429 reply: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return h.count(natsbus.StreamRaw, "payhook.raw.fakeprov.accepted") == 1 }, "accepted record")
	if n := h.count(natsbus.StreamRawRejected, "payhook.raw.>"); n != 5+5+1 {
		t.Errorf("%d rejected records, want 11 (a burst of 5 for the IPv4 address and for the /64, 1 for the other): 429s are not recorded", n)
	}
	limited := testutil.ToFloat64(h.srv.m.rateLimited.WithLabelValues("fakeprov", "malformed")) +
		testutil.ToFloat64(h.srv.m.rateLimited.WithLabelValues("unknown", "unknown_route"))
	if limited != 7+2+1 {
		t.Errorf("payhook_ingress_rate_limited_total = %v, want 10 (7 IPv4, 2 from the /64, the last 429)", limited)
	}
}

// The limiter forgets buckets that have refilled (at its sweep, at most
// once a minute), and never holds more than limiterMaxAddresses.
func TestRejectLimiterMemoryBounded(t *testing.T) {
	l := newRejectLimiter(1, 2)
	now := time.Unix(1700000000, 0)
	for i := 0; i < limiterMaxAddresses+1000; i++ {
		l.allow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
	}
	if n := l.size(); n != limiterMaxAddresses {
		t.Fatalf("%d buckets, want the cap %d", n, limiterMaxAddresses)
	}
	// The overflow addresses share one bucket: burst 2 between all of them.
	if l.allow("192.0.2.1", now) || l.allow("192.0.2.2", now) {
		t.Error("an overflow address got a token; the shared bucket was spent")
	}
	// A new address with the map full does not sweep (that would walk
	// every bucket under the mutex, once per new address): it shares the
	// overflow bucket until the periodic sweep reclaims space.
	soon := now.Add(3 * time.Second) // 2 tokens at 1/s: every bucket full again
	l.allow("192.0.2.3", soon)
	if n := l.size(); n != limiterMaxAddresses {
		t.Errorf("%d buckets after a new address with the map full, want %d: no sweep before the minute", n, limiterMaxAddresses)
	}
	l.allow("192.0.2.4", now.Add(time.Minute))
	if n := l.size(); n != 1 {
		t.Errorf("%d buckets after the periodic sweep, want 1", n)
	}
}

// The flood: accepted callbacks are recorded, then junk from 64 addresses
// to unrouted and rejected URLs writes several times PAYHOOK_RAW_REJECTED's
// byte limit. The rejected stream discards its oldest; every accepted record
// is still on PAYHOOK_RAW, byte for byte. The same flood against one stream
// for all records (as payhook once had) discards them, so this test tells
// the two designs apart.
func TestFloodNeverEvictsAcceptedRecords(t *testing.T) {
	const rejectedCap = 128 << 10
	for _, tc := range []struct {
		name      string
		oneStream bool
	}{{"separate streams", false}, {"one stream for all records", true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.NATS.RawMaxBytes = 4 << 20
			cfg.NATS.RawRejectedMaxBytes = rejectedCap
			h := start(t, cfg, nil)
			if tc.oneStream {
				ctx := context.Background()
				if err := h.js.DeleteStream(ctx, natsbus.StreamRawRejected); err != nil {
					t.Fatal(err)
				}
				sc := natsbus.StreamConfigs(cfg.NATS)[1]
				sc.Subjects, sc.MaxBytes = []string{natsbus.SubjectRaw}, rejectedCap
				if _, err := h.js.UpdateStream(ctx, sc); err != nil {
					t.Fatal(err)
				}
			}
			// Genuine callbacks first, each body different (order id, amount).
			sent := map[string][]byte{}
			for i := 0; i < 40; i++ {
				b := []byte(body(fmt.Sprintf("ORD-FLOOD-%03d", i), "succeeded", fmt.Sprintf("%d.00", 100+i)))
				if code := h.send(http.MethodPost, cbPath, b, "203.0.113.10"); code != 200 {
					t.Fatalf("genuine callback %d: %d", i, code)
				}
				sent[fmt.Sprintf("ORD-FLOOD-%03d", i)] = b
			}
			testenv.Eventually(t, 10*time.Second, func() bool { return h.count(natsbus.StreamRaw, "payhook.raw.fakeprov.accepted") == len(sent) }, "accepted records")

			// The flood: 64 addresses × 16 requests of ~2 KiB junk, half to
			// unrouted URLs (recorded truncated), half to the callback URL
			// (rejected malformed, recorded whole): ~1.3 MiB of records,
			// 10× the rejected stream's cap.
			junk := bytes.Repeat([]byte{0x01, 0xff, '"', '\\'}, 500)
			var wg sync.WaitGroup
			var mu sync.Mutex
			codes := map[int]int{}
			for a := 0; a < 64; a++ {
				wg.Add(1)
				go func(a int) {
					defer wg.Done()
					from := fmt.Sprintf("198.51.%d.%d", 100+a/32, a%32+1)
					for i := 0; i < 16; i++ {
						path := cbPath
						if i%2 == 0 {
							path = fmt.Sprintf("/v1/callbacks/x%d", i)
						}
						code := h.send(http.MethodPost, path, junk, from)
						mu.Lock()
						codes[code]++
						mu.Unlock()
					}
				}(a)
			}
			wg.Wait()
			if codes[404]+codes[400] != 64*16 {
				t.Fatalf("flood answers %v, want only 404 and 400 (under the rate limit)", codes)
			}
			h.srv.Flush(context.Background())

			var recs []RawRecord
			for _, s := range natsbus.RawStreams {
				if _, err := h.js.Stream(context.Background(), s); err == nil {
					recs = append(recs, h.rawRecords(s, "payhook.raw.fakeprov.accepted")...)
				}
			}
			kept := 0
			for _, r := range recs {
				var m struct{ Order string }
				_ = jsonUnmarshal(r.Body, &m)
				if want, ok := sent[m.Order]; ok && bytes.Equal(r.Body, want) && r.Verdict == VerdictAccepted {
					kept++
				}
			}
			if tc.oneStream {
				if kept == len(sent) {
					t.Fatalf("one stream for all: the flood left all %d accepted records; the flood is too small to tell the designs apart", kept)
				}
				return
			}
			if kept != len(sent) {
				t.Errorf("%d of %d accepted records left byte-exact on PAYHOOK_RAW after the flood", kept, len(sent))
			}
			rej := h.streamState(natsbus.StreamRawRejected)
			if rej.FirstSeq <= 1 || rej.Bytes > rejectedCap {
				t.Errorf("PAYHOOK_RAW_REJECTED first seq %d, %d bytes: the flood did not overflow its %d-byte cap", rej.FirstSeq, rej.Bytes, rejectedCap)
			}
			if written := rej.LastSeq; written < 64*16 {
				t.Errorf("%d rejected records written, want %d", written, 64*16)
			}
		})
	}
}

// The stream gauges report bytes and the byte limit of both raw streams.
func TestStreamUsageGauges(t *testing.T) {
	cfg := testConfig()
	cfg.NATS.RawMaxBytes, cfg.NATS.RawRejectedMaxBytes = 8<<20, 2<<20
	h := start(t, cfg, nil)
	h.send(http.MethodPost, "/v1/callbacks/x", []byte("junk"), "")
	testenv.Eventually(t, 5*time.Second, func() bool { return h.count(natsbus.StreamRawRejected, "payhook.raw.>") == 1 }, "record")
	reg := prometheus.NewRegistry()
	u, err := natsbus.NewStreamUsage(h.js, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`
# HELP payhook_stream_max_bytes Byte limit of a payhook JetStream stream (only streams that have one); past it the oldest messages are discarded.
# TYPE payhook_stream_max_bytes gauge
payhook_stream_max_bytes{stream="PAYHOOK_RAW"} %d
payhook_stream_max_bytes{stream="PAYHOOK_RAW_REJECTED"} %d
`, 8<<20, 2<<20)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "payhook_stream_max_bytes"); err != nil {
		t.Error(err)
	}
	if got := h.streamState(natsbus.StreamRawRejected).Bytes; got == 0 {
		t.Fatal("no bytes on the rejected stream")
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "payhook_stream_bytes" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == natsbus.StreamRawRejected && m.GetGauge().GetValue() == 0 {
				t.Error("payhook_stream_bytes{PAYHOOK_RAW_REJECTED} is 0 with a record stored")
			}
		}
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// When PAYHOOK_RAW_REJECTED takes no writes (here: deleted), rejections are
// answered 503 and nothing of them lands on PAYHOOK_RAW: the stream of
// accepted records never takes a flood in its place.
func TestRejectedStreamDownLeavesRawAlone(t *testing.T) {
	h := start(t, testConfig(), nil)
	if err := h.js.DeleteStream(context.Background(), natsbus.StreamRawRejected); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if code := h.send(http.MethodPost, "/v1/callbacks/x", []byte("junk"), fmt.Sprintf("198.51.100.%d", i+1)); code != 503 {
			t.Fatalf("junk with the rejected stream gone: %d, want 503", code)
		}
	}
	if code := h.send(http.MethodPost, cbPath, []byte(body("ORD-ALONE", "succeeded", "100.00")), ""); code != 200 {
		t.Fatalf("valid callback: %d", code)
	}
	h.srv.Flush(context.Background())
	testenv.Eventually(t, 5*time.Second, func() bool { return h.count(natsbus.StreamRaw, "payhook.raw.>") >= 1 }, "accepted record")
	if n := h.count(natsbus.StreamRaw, "payhook.raw.>"); n != 1 {
		t.Errorf("PAYHOOK_RAW holds %d records, want only the accepted one", n)
	}
}

// One genuine callback replayed at wire speed, from several addresses:
// every copy is answered success (its event is stored), but only
// replayBurst of them are recorded on PAYHOOK_RAW and the rest counted, so
// the accepted record survives a PAYHOOK_RAW cap that the replays would
// otherwise overflow many times. A duplicate of another event still finds
// its own bucket full.
func TestReplayedCallbackRecordsBounded(t *testing.T) {
	const replays = 200
	cfg := testConfig()
	cfg.NATS.RawMaxBytes = 32 << 10 // ~40 records; the replays would write ~160 KiB
	h := start(t, cfg, nil)
	genuine := []byte(body("ORD-REPLAY", "succeeded", "100.00"))
	if code := h.send(http.MethodPost, cbPath, genuine, "203.0.113.10"); code != 200 {
		t.Fatalf("genuine callback: %d", code)
	}
	codes := map[int]int{}
	for i := 0; i < replays; i++ {
		codes[h.send(http.MethodPost, cbPath, genuine, fmt.Sprintf("198.51.100.%d", i%4+1))]++
	}
	if codes[200] != replays {
		t.Errorf("replay answers %v, want %d×200: a stored event's retry is never refused", codes, replays)
	}
	other := []byte(body("ORD-OTHER", "succeeded", "5.00"))
	for i := 0; i < 2; i++ {
		if code := h.send(http.MethodPost, cbPath, other, "203.0.113.10"); code != 200 {
			t.Fatalf("another order, copy %d: %d", i, code)
		}
	}
	h.srv.Flush(context.Background())

	recs := h.rawRecords(natsbus.StreamRaw, "payhook.raw.>")
	dups := map[string]int{}
	accepted := 0
	for _, r := range recs {
		var m struct{ Order string }
		_ = jsonUnmarshal(r.Body, &m)
		switch r.Verdict {
		case VerdictDuplicate:
			dups[m.Order]++
		case VerdictAccepted:
			if m.Order == "ORD-REPLAY" && bytes.Equal(r.Body, genuine) {
				accepted++
			}
		}
	}
	if accepted != 1 {
		t.Errorf("%d accepted records of the replayed callback left on PAYHOOK_RAW, want 1", accepted)
	}
	// A minute's refill may add one if the test is slow.
	if n := dups["ORD-REPLAY"]; n < replayBurst || n > replayBurst+1 {
		t.Errorf("%d duplicate records of the replayed callback, want %d (its bucket)", n, replayBurst)
	}
	if n := dups["ORD-OTHER"]; n != 1 {
		t.Errorf("%d duplicate records of another order, want 1: its bucket is its own", n)
	}
	skipped := testutil.ToFloat64(h.srv.m.rawSkipped.WithLabelValues("fakeprov", VerdictDuplicate))
	if int(skipped)+dups["ORD-REPLAY"] != replays {
		t.Errorf("payhook_ingress_raw_records_skipped_total = %v, want %d (replays not recorded)", skipped, replays-dups["ORD-REPLAY"])
	}
	if got := testutil.ToFloat64(h.srv.m.callbacks.WithLabelValues("fakeprov", "payin", VerdictDuplicate)); got != replays+1 {
		t.Errorf("duplicate callbacks counted %v, want %d: every one is counted, recorded or not", got, replays+1)
	}
}

// Only a verified request that stored nothing new is charged to its event's
// bucket: accepted and unavailable records are always written.
func TestRepeatVerdicts(t *testing.T) {
	for v, want := range map[string]bool{
		VerdictDuplicate: true, VerdictStale: true, VerdictConflict: true,
		VerdictAccepted: false, VerdictUnavailable: false, VerdictRejected: false,
	} {
		if repeatVerdict(v) != want {
			t.Errorf("repeatVerdict(%q) = %v, want %v", v, !want, want)
		}
	}
}
