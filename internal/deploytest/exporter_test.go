package deploytest

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The official NATS exporter, which serves the jetstream_* metrics the NATS
// alerts read. It runs beside NATS in compose (service nats-exporter) and as
// a sidecar of every NATS pod in Kubernetes (container exporter).
const (
	exporterImageRepo = "natsio/prometheus-nats-exporter:"
	exporterPort      = 7777
	exporterService   = "nats-exporter"
	exporterContainer = "exporter"
)

// exporterProblems checks an exporter's image and arguments: a pinned tag,
// JetStream metrics with the streams' configured limits (-jsz=all, which
// jetstream_stream_limit_bytes needs), /metrics on exporterPort, and the
// monitoring URL it reads, which must be monitorURL.
func exporterProblems(w, image string, args []string, monitorURL string) []string {
	var p []string
	tag, ok := strings.CutPrefix(image, exporterImageRepo)
	if !ok || tag == "" || tag == "latest" {
		p = append(p, fmt.Sprintf("%s: image %q, want %s<pinned version>", w, image, exporterImageRepo))
	}
	if !slices.Contains(args, "-jsz=all") {
		p = append(p, fmt.Sprintf("%s: args %q lack -jsz=all (the streams' byte limits come with it)", w, args))
	}
	if !slices.Contains(args, "-port="+strconv.Itoa(exporterPort)) {
		p = append(p, fmt.Sprintf("%s: args %q do not serve on -port=%d", w, args, exporterPort))
	}
	var urls []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			urls = append(urls, a)
		}
	}
	if len(urls) != 1 || urls[0] != monitorURL {
		p = append(p, fmt.Sprintf("%s: reads %q, not NATS's monitoring endpoint %s", w, urls, monitorURL))
	}
	return p
}

// composeExporterProblems: NATS serves its monitoring port (-m), the
// exporter reads it and Prometheus scrapes the exporter as job nats.
func (st composeStack) composeExporterProblems(targets map[string]string) []string {
	var p []string
	n := st.c.Services["nats"]
	i := slices.Index(n.Command, "-m")
	if i < 0 || i+1 >= len(n.Command) {
		return []string{"nats: no monitoring port (-m), which the exporter reads"}
	}
	e, ok := st.c.Services[exporterService]
	if !ok {
		return []string{"no service " + exporterService}
	}
	p = append(p, exporterProblems("service "+exporterService, e.Image, e.Command, "http://nats:"+n.Command[i+1])...)
	t := fmt.Sprintf("%s:%d", exporterService, exporterPort)
	if job, ok := targets[t]; !ok || job != "nats" {
		p = append(p, fmt.Sprintf("prometheus.yml does not scrape %s as job nats", t))
	}
	return p
}

var httpPortRE = regexp.MustCompile(`(?m)^\s*http_port:\s*(\d+)\s*$`)

// natsExporterProblems: every NATS pod runs the exporter against its own
// monitoring port (http_port of nats.conf, the nats container's port
// monitor), the headless Service exposes it as metrics, the ServiceMonitor
// nats scrapes that port, and the monitoring namespace may reach it.
func natsExporterProblems(s Set) []string {
	var p []string
	sts, ok := Get[*appsv1.StatefulSet](s, "StatefulSet", "nats")
	if !ok {
		return []string{"no StatefulSet nats"}
	}
	cm, _ := Get[*corev1.ConfigMap](s, "ConfigMap", "nats-config")
	var httpPort string
	if cm != nil {
		if m := httpPortRE.FindStringSubmatch(cm.Data["nats.conf"]); m != nil {
			httpPort = m[1]
		}
	}
	if httpPort == "" {
		p = append(p, "nats.conf: no http_port, which the exporter reads")
	}
	var monitor, exporter *corev1.Container
	for i, c := range sts.Spec.Template.Spec.Containers {
		switch c.Name {
		case "nats":
			monitor = &sts.Spec.Template.Spec.Containers[i]
		case exporterContainer:
			exporter = &sts.Spec.Template.Spec.Containers[i]
		}
	}
	if monitor == nil || exporter == nil {
		return append(p, "StatefulSet nats: no containers nats and "+exporterContainer)
	}
	if !slices.ContainsFunc(monitor.Ports, func(cp corev1.ContainerPort) bool {
		return cp.Name == "monitor" && strconv.Itoa(int(cp.ContainerPort)) == httpPort
	}) {
		p = append(p, fmt.Sprintf("container nats: no port monitor on http_port %s", httpPort))
	}
	p = append(p, exporterProblems("container "+exporterContainer, exporter.Image, append(slices.Clone(exporter.Command), exporter.Args...), "http://localhost:"+httpPort)...)
	if !slices.ContainsFunc(exporter.Ports, func(cp corev1.ContainerPort) bool {
		return cp.Name == "metrics" && cp.ContainerPort == exporterPort
	}) {
		p = append(p, fmt.Sprintf("container %s: no port metrics %d", exporterContainer, exporterPort))
	}
	svc, ok := Get[*corev1.Service](s, "Service", "nats-headless")
	if !ok || !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool {
		return sp.Name == "metrics" && sp.Port == exporterPort
	}) {
		p = append(p, fmt.Sprintf("Service nats-headless: no port metrics %d", exporterPort))
	}
	sm, ok := Get[*ServiceMonitor](s, "ServiceMonitor", "nats")
	switch {
	case !ok:
		p = append(p, "no ServiceMonitor nats")
	case svc == nil || !labels.SelectorFromSet(sm.Spec.Selector.MatchLabels).Matches(labels.Set(svc.Labels)):
		p = append(p, "ServiceMonitor nats does not select Service nats-headless")
	case !slices.ContainsFunc(sm.Spec.Endpoints, func(e ServiceMonitorEndpoint) bool {
		return e.Port == "metrics" && e.Path == "/metrics"
	}):
		p = append(p, "ServiceMonitor nats does not scrape port metrics at /metrics")
	}
	if !portAllowed(All[*networkingv1.NetworkPolicy](s), labels.Set(sts.Spec.Template.Labels), exporterPort) {
		p = append(p, fmt.Sprintf("no NetworkPolicy lets Prometheus reach the exporter on %d", exporterPort))
	}
	return p
}

func TestNATSExporter(t *testing.T) {
	s := mustManifests(t)
	for _, p := range natsExporterProblems(s) {
		t.Error(p)
	}
	// Compose and Kubernetes run the same exporter.
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	sts, _ := Get[*appsv1.StatefulSet](s, "StatefulSet", "nats")
	for _, c := range sts.Spec.Template.Spec.Containers {
		if c.Name == exporterContainer && !strings.Contains(string(b), "image: "+c.Image+"\n") {
			t.Errorf("docker-compose.yml does not run %s, the exporter of deploy/k8s/nats.yaml", c.Image)
		}
	}

	// The check can fail.
	cases := map[string]struct {
		mutate func(sts *appsv1.StatefulSet)
		want   string
	}{
		"wrong port": {func(sts *appsv1.StatefulSet) {
			sts.Spec.Template.Spec.Containers[1].Args = []string{"-port=7777", "-jsz=all", "http://localhost:8223"}
		}, "not NATS's monitoring endpoint http://localhost:8222"},
		"no stream limits": {func(sts *appsv1.StatefulSet) {
			sts.Spec.Template.Spec.Containers[1].Args = []string{"-port=7777", "-jsz=streams", "http://localhost:8222"}
		}, "lack -jsz=all"},
		"unpinned": {func(sts *appsv1.StatefulSet) {
			sts.Spec.Template.Spec.Containers[1].Image = exporterImageRepo + "latest"
		}, "want natsio/prometheus-nats-exporter:<pinned version>"},
		"no sidecar": {func(sts *appsv1.StatefulSet) {
			sts.Spec.Template.Spec.Containers = sts.Spec.Template.Spec.Containers[:1]
		}, "no containers nats and exporter"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := mustManifests(t)
			sts, _ := Get[*appsv1.StatefulSet](s, "StatefulSet", "nats")
			if len(sts.Spec.Template.Spec.Containers) != 2 || sts.Spec.Template.Spec.Containers[1].Name != exporterContainer {
				t.Fatalf("StatefulSet nats: want containers nats and %s", exporterContainer)
			}
			c.mutate(sts)
			p := natsExporterProblems(s)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, c.want) }) {
				t.Errorf("problems %q, want one mentioning %q", p, c.want)
			}
		})
	}
}
