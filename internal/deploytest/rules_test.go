package deploytest

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/payhook/payhook/internal/metricscatalog"
)

const (
	alertsFile     = "../../deploy/prometheus/alerts.yml"
	alertsTestFile = "../../deploy/prometheus/alerts_test.yml"
	alertsDayFile  = "../../deploy/prometheus/alerts_daily_test.yml"
	dashboardFile  = "../../deploy/grafana/payhook.json"
	operationsDoc  = "../../docs/operations.md"
	readmeFile     = "../../README.md"
)

// promtool runs promtool; a missing promtool fails the test (never skips).
func promtool(tb testing.TB, stdin []byte, args ...string) (string, error) {
	tb.Helper()
	if _, err := metricscatalog.PromtoolPath(); err != nil {
		tb.Fatal(err)
	}
	return metricscatalog.Promtool(stdin, args...)
}

// Rules is the part of a Prometheus rule file payhook writes.
type Rules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []Rule `yaml:"rules"`
	} `yaml:"groups"`
}

// Rule is one alerting or recording rule.
type Rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func mustRules(tb testing.TB) Rules {
	tb.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		tb.Fatal(err)
	}
	var r Rules
	if err := yaml.Unmarshal(b, &r); err != nil {
		tb.Fatal(err)
	}
	return r
}

func mustCatalog(tb testing.TB) metricscatalog.Catalog {
	tb.Helper()
	c, err := metricscatalog.Load(readmeFile)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestPromtoolCheckAndTestRules(t *testing.T) {
	if out, err := promtool(t, nil, "check", "rules", alertsFile); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := promtool(t, nil, "test", "rules", alertsTestFile, alertsDayFile); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

// anchors returns the GitHub-style anchors of the markdown headings in doc.
func anchors(doc string) map[string]bool {
	out := map[string]bool{}
	strip := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(l, "#"))
		a := strings.ReplaceAll(strip.ReplaceAllString(strings.ToLower(h), ""), " ", "-")
		out[a] = true
	}
	return out
}

func TestAlertsHaveRunbooksAndTests(t *testing.T) {
	r := mustRules(t)
	doc, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	ops := anchors(string(doc))
	var tests []byte
	for _, f := range []string{alertsTestFile, alertsDayFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tests = append(tests, b...)
	}
	var names []string
	for _, g := range r.Groups {
		for _, rule := range g.Rules {
			if rule.Alert == "" {
				continue
			}
			names = append(names, rule.Alert)
			w := "alert " + rule.Alert
			for _, k := range []string{"summary", "description", "runbook", "runbook_url"} {
				if strings.TrimSpace(rule.Annotations[k]) == "" {
					t.Errorf("%s: no %s annotation", w, k)
				}
			}
			if sev := rule.Labels["severity"]; sev != "critical" && sev != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", w, sev)
			}
			file, anchor, _ := strings.Cut(rule.Annotations["runbook_url"], "#")
			if file != "docs/operations.md" || !ops[anchor] {
				t.Errorf("%s: runbook_url %q is not a heading in docs/operations.md", w, rule.Annotations["runbook_url"])
			}
			if !strings.Contains(string(tests), "alertname: "+rule.Alert+"\n") {
				t.Errorf("%s: no unit test in alerts_test.yml", w)
			}
		}
	}
	for _, want := range []string{
		"PayhookRejectedSignatureSpike", "PayhookNoCallbacks", "PayhookPublishErrors", "PayhookDLQGrowing",
		"PayhookConsumerLagGrowing", "PayhookWatchesExpiringUnrecovered", "PayhookDedupeFallbackActive",
		"PayhookConflicts", "PayhookAmountMismatches",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("alerts.yml has no %s", want)
		}
	}
}

// unknownMetrics returns the payhook metric names expr uses that the catalog lacks.
func unknownMetrics(cat metricscatalog.Catalog, expr string) []string {
	var out []string
	for _, n := range metricscatalog.Referenced(expr) {
		if _, ok := cat.Lookup(n); !ok {
			out = append(out, n)
		}
	}
	return out
}

func TestAlertsUseCatalogMetrics(t *testing.T) {
	cat := mustCatalog(t)
	for _, g := range mustRules(t).Groups {
		for _, rule := range g.Rules {
			if u := unknownMetrics(cat, rule.Expr); len(u) > 0 {
				t.Errorf("alert %s uses %v, not in README's metrics catalog", rule.Alert+rule.Record, u)
			}
		}
	}
	if u := unknownMetrics(cat, `rate(payhook_ingress_callbacks_totl[5m])`); len(u) != 1 {
		t.Errorf("a misspelled metric was not caught: %v", u)
	}
}

// Dashboard is the part of a Grafana dashboard the checks read.
type Dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []Panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// Panel is a dashboard panel (rows nest panels).
type Panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []Panel `json:"panels"`
}

func mustDashboard(tb testing.TB) Dashboard {
	tb.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		tb.Fatal(err)
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		tb.Fatalf("payhook.json: %v", err)
	}
	return d
}

func walk(ps []Panel, f func(Panel)) {
	for _, p := range ps {
		f(p)
		walk(p.Panels, f)
	}
}

func TestDashboard(t *testing.T) {
	d := mustDashboard(t)
	cat := mustCatalog(t)
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard needs a uid and a title")
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	walk(d.Panels, func(p Panel) {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			return
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			t.Errorf("panel %q does not use the $datasource variable", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
			if u := unknownMetrics(cat, tg.Expr); len(u) > 0 {
				t.Errorf("panel %q uses %v, not in README's metrics catalog", p.Title, u)
			}
			for _, n := range metricscatalog.Referenced(tg.Expr) {
				used[n] = true
			}
		}
	})
	for _, v := range d.Templating.List {
		if u := unknownMetrics(cat, string(v.Query)); len(u) > 0 {
			t.Errorf("variable %s uses %v, not in README's metrics catalog", v.Name, u)
		}
	}
	// The series the dashboard must chart, at the least.
	for _, want := range []string{
		"payhook_ingress_callbacks_total", "payhook_ingress_request_duration_seconds", "payhook_publish_duration_seconds",
		"payhook_dedupe_total", "payhook_dispatch_deliveries_total", "payhook_dispatch_dlq_depth",
		"payhook_dispatch_consumer_pending", "payhook_reconciler_recovered_total", "payhook_reconciler_watches_open",
		"payhook_reconciler_oldest_watch_age_seconds", "payhook_amount_mismatches_total", "payhook_conflicts_total",
	} {
		if !used[want] {
			t.Errorf("the dashboard has no panel on %s", want)
		}
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, Access, URL string
			IsDefault                    bool `yaml:"isDefault"`
			Editable                     bool `yaml:"editable"`
		} `yaml:"datasources"`
	}
	mustYAMLStrict(t, "../../deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("datasource provisioning: %+v, want one prometheus at http://prometheus:9090 (the compose service)", ds.Datasources)
	}
	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name                  string `yaml:"name"`
			Folder                string `yaml:"folder"`
			Type                  string `yaml:"type"`
			DisableDeletion       bool   `yaml:"disableDeletion"`
			AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
			UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
			Options               struct {
				Path                      string `yaml:"path"`
				FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	mustYAMLStrict(t, "../../deploy/grafana/provisioning/dashboards/payhook.yml", &dp)
	if len(dp.Providers) != 1 || dp.Providers[0].Type != "file" || dp.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("dashboard provisioning: %+v, want one file provider at /var/lib/grafana/dashboards (where compose mounts payhook.json)", dp.Providers)
	}
}

func mustYAMLStrict(tb testing.TB, file string, v any) {
	tb.Helper()
	f, err := os.Open(file)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	d := yaml.NewDecoder(f)
	d.KnownFields(true)
	if err := d.Decode(v); err != nil {
		tb.Fatal(fmt.Errorf("%s: %w", file, err))
	}
}
