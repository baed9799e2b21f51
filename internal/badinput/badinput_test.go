package badinput_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/badinput"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// corpusSeed is the seed docs/reliability.md reports results for.
const corpusSeed = 20261123

// corpusSize is the floor: at least 10,000 requests that must be rejected.
const corpusSize = 10000

// panicDetail is what ingress answers when a decoder panicked (safeParse).
const panicDetail = "decoder failed on this input"

func digest(c *badinput.Corpus) string {
	h := sha256.New()
	for _, cs := range append(append([]badinput.Case(nil), c.Originals...), c.Cases...) {
		fmt.Fprintf(h, "%d|%s|%s|%s|%v|%q|%s|", cs.N, cs.Class, cs.Variant, cs.Path, cs.Want, cs.Body, headerText(cs.Header))
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func headerText(h http.Header) string {
	var b bytes.Buffer
	_ = h.Write(&b)
	return b.String()
}

func TestGenerateIsDeterministicAndCoversEveryClass(t *testing.T) {
	a, err := badinput.Generate(corpusSeed, corpusSize, config.DefaultBodyLimit)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := badinput.Generate(corpusSeed, corpusSize, config.DefaultBodyLimit)
	c, _ := badinput.Generate(corpusSeed+1, corpusSize, config.DefaultBodyLimit)
	if digest(a) != digest(b) {
		t.Error("the same seed gave two different corpora")
	}
	if digest(a) == digest(c) {
		t.Error("two seeds gave the same corpus")
	}
	if len(a.Cases) < corpusSize {
		t.Fatalf("%d cases, want more than %d", len(a.Cases), corpusSize)
	}
	seen := map[badinput.Class]map[string]int{}
	rejected := 0
	for _, cs := range a.Cases {
		if seen[cs.Class] == nil {
			seen[cs.Class] = map[string]int{}
		}
		seen[cs.Class][cs.Provider]++
		switch {
		case cs.Want.Valid && (cs.Want.Why == "" || len(cs.Want.Reasons) > 0):
			t.Errorf("case %d (%s): a valid case needs a Why and no reasons", cs.N, cs.Variant)
		case !cs.Want.Valid && len(cs.Want.Reasons) == 0:
			t.Errorf("case %d (%s): a rejection needs its reasons", cs.N, cs.Variant)
		case !cs.Want.Valid:
			rejected++
		}
		for _, r := range cs.Want.Reasons {
			if _, ok := badinput.ReasonStatus[r]; !ok {
				t.Errorf("case %d (%s): reason %q is not a known reason", cs.N, cs.Variant, r)
			}
		}
		if cs.Header.Get(badinput.HeaderCase) != strconv.Itoa(cs.N) {
			t.Errorf("case %d carries no %s header", cs.N, badinput.HeaderCase)
		}
	}
	classes := []badinput.Class{badinput.ClassPreserving, badinput.ClassTruncated, badinput.ClassTampered,
		badinput.ClassReplayTampered, badinput.ClassBadSignature, badinput.ClassOversized, badinput.ClassHugeField,
		badinput.ClassWrongEncoding, badinput.ClassUnicodeEdge, badinput.ClassContentType, badinput.ClassDuplicateKey,
		badinput.ClassDeeplyNested, badinput.ClassHugeNumber, badinput.ClassSemantic, badinput.ClassAccountMismatch,
		badinput.ClassCrossAccount, badinput.ClassWrongKind, badinput.ClassUnknownAccount, badinput.ClassWrongProvider}
	for _, cl := range classes {
		for _, p := range badinput.Inbound {
			if seen[cl][p] == 0 {
				t.Errorf("class %s has no %s case", cl, p)
			}
		}
	}
	// A provider with its own simulated side gets the mutations that need
	// nothing else (badinput.Simulated).
	for _, p := range badinput.Simulated {
		for _, cl := range []badinput.Class{badinput.ClassPreserving, badinput.ClassTruncated, badinput.ClassTampered,
			badinput.ClassReplayTampered, badinput.ClassBadSignature, badinput.ClassOversized, badinput.ClassWrongEncoding,
			badinput.ClassDeeplyNested, badinput.ClassWrongKind, badinput.ClassUnknownAccount} {
			if seen[cl][p] == 0 {
				t.Errorf("class %s has no %s case", cl, p)
			}
		}
	}
	if len(seen) != len(classes) {
		t.Errorf("corpus has %d classes, the test knows %d", len(seen), len(classes))
	}
	if rejected < corpusSize {
		t.Errorf("only %d of %d cases must be rejected, want at least %d", rejected, len(a.Cases), corpusSize)
	}
	if len(a.Originals) == 0 {
		t.Error("no originals to replay")
	}
}

type reply struct {
	status int
	body   []byte
	err    error
}

// TestBadInputAtScale drives the whole corpus over HTTP through a real
// ingress (real embedded NATS, real Redis dedupe) with 32 concurrent
// clients and checks every request's answer, PAYHOOK_EVENTS, PAYHOOK_RAW and PAYHOOK_RAW_REJECTED,
// the rejection metrics and the log. It is one long function on purpose:
// every check reads the same replies and the streams read once, in the
// order docs/reliability.md "Bad input at scale" lists them.
func TestBadInputAtScale(t *testing.T) {
	started := time.Now()
	corpus, err := badinput.Generate(corpusSeed, corpusSize, config.DefaultBodyLimit)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := testenv.StartNATS(t)
	rd := testenv.StartRedis(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Accounts: corpus.Accounts}
	cfg.Redis.URL = rd.URL
	cfg.Ingress.BodyLimit = corpus.BodyLimit
	cfg.Ingress.PublishTimeout = config.Duration(5 * time.Second)
	// The whole corpus comes from one address and must be answered and
	// recorded, not rate-limited.
	cfg.Ingress.RejectionsPerSecond, cfg.Ingress.RejectionsBurst = 1e6, 1e6
	cfg.Dedupe.Window = config.Duration(time.Hour)
	if err := natsbus.EnsureStreams(ctx, js, cfg.NATS); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dd, _, closeDedupe, err := ingress.OpenDedupe(ctx, cfg, js, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeDedupe)
	reg := prometheus.NewRegistry()
	inbound := registry.Inbound()
	srv, err := ingress.New(ingress.Deps{Config: cfg, JS: js, Providers: inbound, Dedupe: dd, Registry: reg, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln, 5*time.Second) }()
	t.Cleanup(func() { stop(); <-served })
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}

	send := func(cases []badinput.Case) []reply {
		out := make([]reply, len(cases))
		next := make(chan int)
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					c := cases[i]
					req, err := http.NewRequest(http.MethodPost, base+c.Path, bytes.NewReader(c.Body))
					if err != nil {
						out[i].err = err
						continue
					}
					req.Header = c.Header.Clone()
					resp, err := client.Do(req)
					if err != nil {
						out[i].err = err
						continue
					}
					out[i].body, out[i].err = io.ReadAll(resp.Body)
					out[i].status = resp.StatusCode
					resp.Body.Close()
				}
			}()
		}
		for i := range cases {
			next <- i
		}
		close(next)
		wg.Wait()
		return out
	}

	secrets := []string{}
	accounts := map[string]providers.Account{}
	for _, a := range corpus.Accounts {
		accounts[a.ID] = a
		for _, s := range []string{a.Key("secret"), a.Key("aes_key"), a.Key("aes_iv")} {
			if s != "" {
				secrets = append(secrets, s)
			}
		}
	}
	// expectID is the event a valid case must produce, by the provider's own Parse.
	wantEvents := map[string]bool{}
	expectID := func(c badinput.Case) {
		parts := strings.Split(c.Path, "/") // "", v1, callbacks, provider, account, kind
		ev, err := inbound[parts[3]].Parse(accounts[parts[4]], providers.Request{Kind: events.Kind(parts[5]), Header: c.Header, Body: c.Body, ReceivedAt: time.Now()})
		if err != nil {
			t.Errorf("case %d (%s) is classified valid but does not parse: %v", c.N, c.Variant, err)
			return
		}
		wantEvents[ev.ID()] = true
	}

	t0 := time.Now()
	for i, r := range send(corpus.Originals) {
		c := corpus.Originals[i]
		if r.err != nil || r.status != 200 {
			t.Fatalf("original %d (%s): %d %s %v", c.N, c.Path, r.status, r.body, r.err)
		}
		expectID(c)
	}
	t1 := time.Now()
	replies := send(corpus.Cases)
	sendTime := time.Since(t1)

	type tally struct {
		cases, valid, rejected int
		reasons                map[string]int
	}
	byClass := map[badinput.Class]*tally{}
	byReason := map[string]int{}
	var failures []string
	fail := func(c badinput.Case, format string, args ...any) {
		failures = append(failures, fmt.Sprintf("case %d [%s] %s: %s", c.N, c.Class, c.Variant, fmt.Sprintf(format, args...)))
	}
	panics, rejected := 0, 0
	reasonOf := map[int]string{}
	for i, r := range replies {
		c := corpus.Cases[i]
		tl := byClass[c.Class]
		if tl == nil {
			tl = &tally{reasons: map[string]int{}}
			byClass[c.Class] = tl
		}
		tl.cases++
		if r.err != nil {
			fail(c, "transport error %v", r.err)
			continue
		}
		for _, s := range secrets {
			if bytes.Contains(r.body, []byte(s)) {
				fail(c, "reply echoes an account secret")
			}
		}
		if c.Want.Valid {
			tl.valid++
			p := inbound[strings.Split(c.Path, "/")[3]]
			if ack := p.Ack(c.Kind); r.status != 200 || !bytes.Equal(r.body, ack.Body) {
				fail(c, "want the provider's ack (%s), got %d %s", c.Want.Why, r.status, clip(r.body))
				continue
			}
			expectID(c)
			continue
		}
		tl.rejected++
		rejected++
		var e struct{ Error, Detail string }
		if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
			fail(c, "rejection without a JSON reason: %d %s", r.status, clip(r.body))
			continue
		}
		reasonOf[c.N] = e.Error
		byReason[e.Error]++
		tl.reasons[e.Error]++
		if e.Detail == panicDetail {
			panics++
			fail(c, "decoder panicked")
		}
		statuses, known := badinput.ReasonStatus[e.Error]
		switch {
		case r.status < 400 || r.status > 499:
			fail(c, "status %d, want 4xx (reason %s)", r.status, e.Error)
		case !known:
			fail(c, "reason %q is not a known reason", e.Error)
		case !contains(statuses, r.status):
			fail(c, "reason %s answered with %d, want one of %v", e.Error, r.status, statuses)
		case !contains(c.Want.Reasons, e.Error):
			fail(c, "reason %s (%s), want %v", e.Error, e.Detail, c.Want.Reasons)
		}
	}

	// Raw records: every request, with the verdict and reason it was answered with.
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	srv.Flush(fctx)
	total := len(corpus.Originals) + len(corpus.Cases)
	raws := readRaw(t, js, total)
	rawByCase := map[int]ingress.RawRecord{}
	for _, rr := range raws {
		n, err := strconv.Atoi(http.Header(rr.rec.Headers).Get(badinput.HeaderCase))
		if err != nil {
			t.Errorf("raw record without a case number: %s %s", rr.subject, rr.rec.Path)
			continue
		}
		if _, dup := rawByCase[n]; dup {
			t.Errorf("case %d recorded twice on PAYHOOK_RAW", n)
		}
		rawByCase[n] = rr.rec
		if want := "payhook.raw." + rr.rec.Provider + "." + rr.rec.Verdict; rr.subject != want {
			t.Errorf("case %d raw record on %s, want %s", n, rr.subject, want)
		}
	}
	rawRejected := 0
	for _, c := range corpus.Cases {
		rec, ok := rawByCase[c.N]
		switch {
		case !ok:
			fail(c, "not recorded on PAYHOOK_RAW")
		case c.Want.Valid && rec.Verdict != ingress.VerdictAccepted && rec.Verdict != ingress.VerdictDuplicate:
			fail(c, "raw verdict %s for a valid case", rec.Verdict)
		case !c.Want.Valid && (rec.Verdict != ingress.VerdictRejected || rec.Reason != reasonOf[c.N]):
			fail(c, "raw verdict %s/%s, replied %s", rec.Verdict, rec.Reason, reasonOf[c.N])
		}
		if ok && rec.Verdict == ingress.VerdictRejected {
			rawRejected++
		}
		wantProv := strings.Split(c.Path, "/")[3]
		if reasonOf[c.N] == hostile.ReasonUnknownProvider {
			wantProv = "unknown"
		}
		if ok && rec.Provider != wantProv {
			fail(c, "raw record names provider %q, want %q", rec.Provider, wantProv)
		}
	}
	if n := subjectCount(t, js, natsbus.StreamRawRejected, "payhook.raw.*.rejected"); n != rejected || rawRejected != rejected {
		t.Errorf("payhook.raw.*.rejected holds %d records (%d matched to cases), %d requests were rejected", n, rawRejected, rejected)
	}

	// Events: exactly one per distinct valid fact, none from a rejection.
	got := eventIDs(t, js)
	dups := 0
	gotSet := map[string]bool{}
	for _, id := range got {
		if gotSet[id] {
			dups++
		}
		gotSet[id] = true
	}
	var extra, missing int
	for id := range gotSet {
		if !wantEvents[id] {
			extra++
		}
	}
	for id := range wantEvents {
		if !gotSet[id] {
			missing++
		}
	}
	if rejected < corpusSize {
		t.Errorf("%d requests rejected, want at least %d", rejected, corpusSize)
	}
	if extra+missing+dups > 0 {
		t.Errorf("PAYHOOK_EVENTS: %d messages, %d not from a valid case, %d valid events missing, %d duplicated", len(got), extra, missing, dups)
	}

	// Metrics and logs agree: every rejection counted, no panic anywhere.
	if n := counterSum(t, reg, "payhook_ingress_rejected_total"); n != float64(rejected) {
		t.Errorf("payhook_ingress_rejected_total = %v, want %d", n, rejected)
	}
	captured := logs.String()
	for _, bad := range []string{"panic", panicDetail} {
		if strings.Contains(strings.ToLower(captured), bad) {
			t.Errorf("the log mentions %q", bad)
		}
	}
	for _, s := range secrets {
		if strings.Contains(captured, s) {
			t.Errorf("the log contains an account secret")
		}
	}
	if refused := strings.Count(captured, `"msg":"callback refused"`); refused != rejected {
		t.Errorf("%d 'callback refused' log lines, %d rejections", refused, rejected)
	}

	sort.Strings(failures)
	for i, f := range failures {
		if i == 60 {
			t.Errorf("... and %d more", len(failures)-60)
			break
		}
		t.Error(f)
	}
	classes := make([]string, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, string(c))
	}
	sort.Strings(classes)
	var sum strings.Builder
	for _, c := range classes {
		tl := byClass[badinput.Class(c)]
		var rs []string
		for r, n := range tl.reasons {
			rs = append(rs, fmt.Sprintf("%s=%d", r, n))
		}
		sort.Strings(rs)
		fmt.Fprintf(&sum, "\n  %-20s %5d cases  %5d rejected  %4d valid  %s", c, tl.cases, tl.rejected, tl.valid, strings.Join(rs, " "))
	}
	reasons := make([]string, 0, len(byReason))
	for r, n := range byReason {
		reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
	}
	sort.Strings(reasons)
	t.Logf("seed %d: %d originals (%v), %d cases sent in %v (32 clients), %d rejected, %d valid, %d panics, %d events, %d raw records; total %v%s\n  reasons: %s",
		corpus.Seed, len(corpus.Originals), t1.Sub(t0).Round(time.Millisecond), len(corpus.Cases), sendTime.Round(time.Millisecond),
		rejected, len(corpus.Cases)-rejected, panics, len(got), len(raws), time.Since(started).Round(time.Millisecond), sum.String(), strings.Join(reasons, " "))
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func clip(b []byte) string {
	if len(b) > 160 {
		return string(b[:160]) + "…"
	}
	return string(b)
}

type rawMsg struct {
	subject string
	rec     ingress.RawRecord
}

// readRaw reads every record on PAYHOOK_RAW and PAYHOOK_RAW_REJECTED (want
// is how many are expected).
func readRaw(t *testing.T, js jetstream.JetStream, want int) []rawMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	testenv.Eventually(t, 20*time.Second, func() bool {
		return subjectCount(t, js, natsbus.StreamRaw, "payhook.raw.>")+subjectCount(t, js, natsbus.StreamRawRejected, "payhook.raw.>") >= want
	}, "every raw record stored")
	var out []rawMsg
	for _, stream := range natsbus.RawStreams {
		cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for len(out) < want {
			batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for m := range batch.Messages() {
				n++
				rec, err := ingress.DecodeRawRecord(m.Headers(), m.Data())
				if err != nil {
					t.Fatalf("raw record does not decode: %v", err)
				}
				out = append(out, rawMsg{subject: m.Subject(), rec: rec})
			}
			if n == 0 {
				break
			}
		}
	}
	return out
}

func subjectCount(t *testing.T, js jetstream.JetStream, stream, filter string) int {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// eventIDs lists the Nats-Msg-Id of every message on PAYHOOK_EVENTS.
func eventIDs(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, natsbus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, natsbus.StreamEvents, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for uint64(len(ids)) < info.State.Msgs {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			ids = append(ids, m.Headers().Get(jetstream.MsgIDHeader))
		}
		if n == 0 {
			break
		}
	}
	return ids
}

func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
