package metricscatalog_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/metricscatalog"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/reconcile"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe/memdedupe"
)

const readme = "../../README.md"

func mustCatalog(tb testing.TB) metricscatalog.Catalog {
	tb.Helper()
	c, err := metricscatalog.Load(readme)
	if err != nil {
		tb.Fatalf("README metrics catalog: %v", err)
	}
	return c
}

// recorder is a Registerer that remembers every descriptor registered
// through it, so a vector with no series yet still counts as exposed.
type recorder struct {
	prometheus.Registerer
	mu    sync.Mutex
	descs map[string][]string // metric name -> variable label names
}

var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

func newRecorder(reg prometheus.Registerer) *recorder {
	return &recorder{Registerer: reg, descs: map[string][]string{}}
}

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range ch {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			continue
		}
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			l = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(l), "c("), ")")
			if l != "" {
				labels = append(labels, l)
			}
		}
		r.descs[m[1]] = labels
	}
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// scrape is what one binary showed: its /metrics text and the payhook
// metrics it registered (name -> label names).
type scrape struct {
	text       []byte
	registered map[string][]string
}

func get(tb testing.TB, url string) []byte {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		tb.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b
}

func startJS(tb testing.TB) (*testenv.NATS, jetstream.JetStream) {
	tb.Helper()
	n := testenv.StartNATS(tb)
	js, err := jetstream.New(n.Connect(tb))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, config.NATS{Replicas: 1}); err != nil {
		tb.Fatal(err)
	}
	return n, js
}

func mustConfig(tb testing.TB, yaml string) *config.Config {
	tb.Helper()
	c, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	return c
}

// scrapeIngress builds ingress as cmd/ingress does (ops registry, every
// registered provider) and sends one callback that is rejected, so every
// metric family has at least its pre-created series.
func scrapeIngress(t *testing.T) scrape {
	n, js := startJS(t)
	cfg := mustConfig(t, fmt.Sprintf(`
nats: {url: %s}
accounts:
  - {id: glo-in, provider: jpglo, merchant_id: "1", secret: k, currency: INR}
  - {id: mp-in, provider: mpurse, merchant_id: "2", aes_key: "0123456789abcdef", currency: INR}
`, n.URL))
	reg := ops.NewRegistry()
	rec := newRecorder(reg)
	srv, err := ingress.New(ingress.Deps{Config: cfg, JS: js, Providers: registry.Inbound(), Registry: rec,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.MountOps(reg)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	resp, err := http.Post(hs.URL+"/v1/callbacks/jpglo/glo-in/payin", "application/json", strings.NewReader(`{"sign":"bad"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Fatalf("a badly signed callback got %d, want 4xx", resp.StatusCode)
	}
	srv.Flush(context.Background())
	return scrape{text: get(t, hs.URL+"/metrics"), registered: rec.descs}
}

// scrapeDispatcher builds the dispatcher with one subscriber and runs it
// until its stats loop has published consumer lag and DLQ depth.
func scrapeDispatcher(t *testing.T) scrape {
	n, js := startJS(t)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	t.Cleanup(sink.Close)
	cfg := mustConfig(t, fmt.Sprintf(`
nats: {url: %s}
event_signing: {public_keys: ["`+testenv.EventPublicKey+`"]}
subscribers:
  - {id: ledger, url: %s, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
`, n.URL, sink.URL))
	reg := ops.NewRegistry()
	rec := newRecorder(reg)
	d, err := dispatch.New(cfg, js, rec, slog.New(slog.NewTextHandler(io.Discard, nil)),
		dispatch.WithStatsInterval(50*time.Millisecond), dispatch.WithFetchWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("dispatcher did not stop")
		}
	})
	mux := http.NewServeMux()
	ops.Mount(mux, reg)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	var text []byte
	testenv.Eventually(t, 10*time.Second, func() bool {
		text = get(t, hs.URL+"/metrics")
		return bytes.Contains(text, []byte("payhook_dispatch_consumer_pending{")) &&
			bytes.Contains(text, []byte("payhook_dispatch_dlq_depth{"))
	}, "dispatcher stats in /metrics")
	return scrape{text: text, registered: rec.descs}
}

// scrapeReconciler builds the reconciler as cmd/reconciler does (every
// querier, the fantian submitter) on an in-memory dedupe store, runs it
// until its gauges have been refreshed once, and scrapes its Handler.
func scrapeReconciler(t *testing.T) scrape {
	n, js := startJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := reconcile.EnsureQueue(ctx, js, config.NATS{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	cfg := mustConfig(t, fmt.Sprintf(`
nats: {url: %s}
accounts:
  - {id: mrn-cn, provider: mrnpay, merchant_id: "4", secret: k, base_url: "http://127.0.0.1:1", currency: CNY}
`, n.URL))
	reg := ops.NewRegistry()
	rec := newRecorder(reg)
	store := memdedupe.New(memdedupe.Config{})
	r, err := reconcile.New(reconcile.Deps{
		Config: cfg, JS: js, Store: store, References: store,
		Providers: registry.All(),
		Registry:  rec, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Options: reconcile.Options{GaugeInterval: 50 * time.Millisecond, DrainTimeout: 2 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("reconciler did not stop")
		}
	})
	hs := httptest.NewServer(r.Handler(reg))
	t.Cleanup(hs.Close)
	var text []byte
	testenv.Eventually(t, 10*time.Second, func() bool {
		text = get(t, hs.URL+"/metrics")
		return bytes.Contains(text, []byte("payhook_reconciler_watches_open "))
	}, "reconciler gauges in /metrics")
	return scrape{text: text, registered: rec.descs}
}

var typeRE = regexp.MustCompile(`(?m)^# TYPE (payhook_[a-z_]+) (\w+)$`)
var seriesRE = regexp.MustCompile(`(?m)^(payhook_[a-z_]+)[{ ]`)

// problems collects what a check found; tests report each with t.Error.
type problems []string

func (p *problems) Errorf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func report(t *testing.T, p problems) {
	t.Helper()
	for _, s := range p {
		t.Error(s)
	}
}

// checkAgainstCatalog holds one binary's scrape to the catalog rows that
// name it, both ways, with types and label names.
func checkAgainstCatalog(binary string, s scrape, cat metricscatalog.Catalog) problems {
	var t problems
	want := cat.For(binary)
	// Documented but not registered.
	for _, m := range want {
		labels, ok := s.registered[m.Name]
		if !ok {
			t.Errorf("%s: README lists %s as exposed by %s, but %s does not register it", binary, m.Name, binary, binary)
			continue
		}
		if !slices.Equal(sorted(labels), sorted(m.Labels)) {
			t.Errorf("%s: %s labels are %v, README says %v", binary, m.Name, labels, m.Labels)
		}
	}
	// Registered (or scraped) but not documented for this binary.
	exposed := map[string]bool{}
	for name := range s.registered {
		if strings.HasPrefix(name, "payhook_") {
			exposed[name] = true
		}
	}
	types := map[string]string{}
	for _, m := range typeRE.FindAllSubmatch(s.text, -1) {
		exposed[string(m[1])] = true
		types[string(m[1])] = string(m[2])
	}
	for _, m := range seriesRE.FindAllSubmatch(s.text, -1) {
		if _, ok := types[string(m[1])]; !ok && !isHistogramSeries(string(m[1]), types) {
			t.Errorf("%s: series %s has no # TYPE line", binary, m[1])
		}
	}
	for name := range exposed {
		m, ok := want.Lookup(name)
		if !ok {
			if _, elsewhere := cat.Lookup(name); elsewhere {
				t.Errorf("%s: exposes %s, but README's \"exposed by\" for it does not name %s", binary, name, binary)
			} else {
				t.Errorf("%s: exposes %s, which is not in README's metrics catalog", binary, name)
			}
			continue
		}
		if got, ok := types[name]; ok && got != m.Type {
			t.Errorf("%s: %s is a %s in /metrics, README says %s", binary, name, got, m.Type)
		}
	}
	return t
}

func isHistogramSeries(name string, types map[string]string) bool {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok && types[base] == "histogram" {
			return true
		}
	}
	return false
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

func promtoolCheckMetrics(t *testing.T, binary string, text []byte) {
	t.Helper()
	if _, err := metricscatalog.PromtoolPath(); err != nil {
		t.Fatal(err)
	}
	if out, err := metricscatalog.Promtool(text, "check", "metrics"); err != nil {
		t.Errorf("%s /metrics is not clean under promtool check metrics:\n%s", binary, out)
	}
}

func checkCardinality(binary string, s scrape) problems {
	var t problems
	for name, labels := range s.registered {
		for _, l := range labels {
			if slices.Contains(metricscatalog.ForbiddenLabels, l) {
				t.Errorf("%s: %s has label %q: unbounded cardinality", binary, name, l)
			}
		}
	}
	return t
}

func TestIngressMetricsMatchCatalog(t *testing.T) {
	cat := mustCatalog(t)
	s := scrapeIngress(t)
	report(t, checkAgainstCatalog("ingress", s, cat))
	report(t, checkCardinality("ingress", s))
	promtoolCheckMetrics(t, "ingress", s.text)
}

func TestDispatcherMetricsMatchCatalog(t *testing.T) {
	cat := mustCatalog(t)
	s := scrapeDispatcher(t)
	report(t, checkAgainstCatalog("dispatcher", s, cat))
	report(t, checkCardinality("dispatcher", s))
	promtoolCheckMetrics(t, "dispatcher", s.text)
}

func TestReconcilerMetricsMatchCatalog(t *testing.T) {
	cat := mustCatalog(t)
	s := scrapeReconciler(t)
	report(t, checkAgainstCatalog("reconciler", s, cat))
	report(t, checkCardinality("reconciler", s))
	promtoolCheckMetrics(t, "reconciler", s.text)
}

func TestCatalogLabelsAreBounded(t *testing.T) {
	for _, m := range mustCatalog(t) {
		for _, l := range m.Labels {
			if slices.Contains(metricscatalog.ForbiddenLabels, l) {
				t.Errorf("README documents %s with label %q: unbounded cardinality", m.Name, l)
			}
		}
	}
}

// TestCheckerCatchesDrift feeds the checker a scrape that disagrees with
// the catalog, so a checker that passes everything cannot go unnoticed.
func TestCheckerCatchesDrift(t *testing.T) {
	cat := mustCatalog(t)
	type tc struct {
		s    scrape
		want string
	}
	cases := map[string]tc{
		"undocumented metric": {scrape{
			text:       []byte("# HELP payhook_ingress_surprise_total x\n# TYPE payhook_ingress_surprise_total counter\npayhook_ingress_surprise_total 1\n"),
			registered: map[string][]string{"payhook_ingress_surprise_total": nil},
		}, "payhook_ingress_surprise_total, which is not in README"},
		"documented metric missing": {scrape{registered: map[string][]string{}}, "does not register it"},
		"wrong type": {scrape{
			text:       []byte("# TYPE payhook_publish_errors_total gauge\npayhook_publish_errors_total 1\n"),
			registered: map[string][]string{},
		}, "is a gauge in /metrics, README says counter"},
		"wrong labels": {scrape{
			registered: map[string][]string{"payhook_ingress_rejected_total": {"provider"}},
		}, "labels are [provider], README says [provider reason]"},
		"another binary's metric": {scrape{
			registered: map[string][]string{"payhook_dispatch_dlq_depth": {"subscriber"}},
		}, "does not name ingress"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := checkAgainstCatalog("ingress", c.s, cat)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, c.want) }) {
				t.Errorf("checker said %q, want a problem mentioning %q", p, c.want)
			}
		})
	}
	p := checkCardinality("x", scrape{registered: map[string][]string{"payhook_x_total": {"provider", "merchant_order_id"}}})
	if len(p) != 1 {
		t.Errorf("cardinality check said %q for a merchant_order_id label, want one problem", p)
	}
}
