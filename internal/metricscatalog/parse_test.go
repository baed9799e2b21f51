package metricscatalog

import (
	"slices"
	"strings"
	"testing"
)

const header = "## Metrics\n\n| metric | type | labels | exposed by | meaning |\n|---|---|---|---|---|\n"

func TestParse(t *testing.T) {
	good := header +
		"| `payhook_a_total` | counter | `provider`, `kind` | ingress | a |\n" +
		"| `payhook_b_seconds` | histogram | | ingress, reconciler | b |\n\n## Next\n| not | a | row |\n"
	c, err := Parse([]byte("# x\n\n" + good))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Names(); !slices.Equal(got, []string{"payhook_a_total", "payhook_b_seconds"}) {
		t.Fatalf("names %v", got)
	}
	if m, _ := c.Lookup("payhook_a_total"); !slices.Equal(m.Labels, []string{"provider", "kind"}) {
		t.Errorf("labels %v", m.Labels)
	}
	if got := c.For("reconciler").Names(); !slices.Equal(got, []string{"payhook_b_seconds"}) {
		t.Errorf("For(reconciler) = %v", got)
	}
	if got := c[1].SeriesNames(); len(got) != 3 {
		t.Errorf("histogram series %v", got)
	}

	bad := map[string]string{
		"no section":     "| metric | type |\n",
		"wrong header":   "## Metrics\n| name | type | labels | meaning |\n|---|---|---|---|\n| `payhook_a` | counter | | a |\n",
		"bad type":       header + "| `payhook_a` | summary | | ingress | a |\n",
		"bad name":       header + "| `http_a` | counter | | ingress | a |\n",
		"unknown binary": header + "| `payhook_a` | counter | | worker | a |\n",
		"no binary":      header + "| `payhook_a` | counter | | | a |\n",
		"no meaning":     header + "| `payhook_a` | counter | | ingress | |\n",
		"duplicate":      header + "| `payhook_a` | counter | | ingress | a |\n| `payhook_a` | counter | | ingress | a |\n",
		"short row":      header + "| `payhook_a` | counter |\n",
		"bad label":      header + "| `payhook_a` | counter | `Provider` | ingress | a |\n",
		"empty table":    header,
	}
	for name, md := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(md)); err == nil {
				t.Error("parsed without error")
			}
		})
	}
}

func TestReferenced(t *testing.T) {
	cases := map[string]struct {
		expr string
		want []string
	}{
		"histogram quantile": {`histogram_quantile(0.99, sum by (le) (rate(payhook_ingress_request_duration_seconds_bucket[5m])))`, []string{"payhook_ingress_request_duration_seconds"}},
		"sum and count":      {`rate(payhook_publish_duration_seconds_sum[5m]) / rate(payhook_publish_duration_seconds_count[5m])`, []string{"payhook_publish_duration_seconds"}},
		"two metrics":        {`payhook_dispatch_dlq_depth > 0 and payhook_dedupe_total`, []string{"payhook_dispatch_dlq_depth", "payhook_dedupe_total"}},
		"recording rule":     {`payhook:callbacks:rate5m > 0`, nil},
		"none":               {`up == 0`, nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Referenced(c.expr); !slices.Equal(got, c.want) {
				t.Errorf("Referenced = %v, want %v", got, c.want)
			}
		})
	}
}

func TestPromtoolCheckMetricsFailsOnLintProblems(t *testing.T) {
	if _, err := PromtoolPath(); err != nil {
		t.Fatal(err)
	}
	out, err := Promtool([]byte("# HELP foo_requests x\n# TYPE foo_requests counter\nfoo_requests 1\n"), "check", "metrics")
	if err == nil || !strings.Contains(out, "_total") {
		t.Errorf("promtool accepted a counter without _total: err=%v out=%q", err, out)
	}
	if _, err := Promtool([]byte("# HELP foo_total x\n# TYPE foo_total counter\nfoo_total 1\n"), "check", "metrics"); err != nil {
		t.Errorf("promtool rejected clean text: %v", err)
	}
}
