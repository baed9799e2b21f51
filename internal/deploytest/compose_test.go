package deploytest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/registry"
)

const (
	composeFile   = "../../docker-compose.yml"
	composeEnv    = "../../deploy/compose/.env.example"
	promConfig    = "../../deploy/prometheus/prometheus.yml"
	repoRoot      = "../.."
	payhookImage  = "payhook:dev"
	composeConfig = "deploy/compose/payhook.yaml"
)

// Binaries the payhook image contains (cmd/*), by container command.
var knownBinaries = []string{"ingress", "dispatcher", "reconciler", "providersim", "devstack"}

// Compose is the part of a compose file payhook uses; decoding is strict.
type Compose struct {
	Name     string                    `yaml:"name"`
	Services map[string]ComposeService `yaml:"services"`
	Volumes  map[string]*struct{}      `yaml:"volumes"`
	// Extensions collects the other top-level keys; only x-* are allowed.
	Extensions map[string]any `yaml:",inline"`
}

// ComposeService is one service.
type ComposeService struct {
	Image       string            `yaml:"image"`
	Build       string            `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	ReadOnly    bool              `yaml:"read_only"`
	Healthcheck *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	DependsOn yaml.Node `yaml:"depends_on"`
	Restart   string    `yaml:"restart"`
}

// ParseCompose decodes a compose file strictly: top-level x-* extension keys
// (YAML anchors) are allowed, anything else unknown is an error, at any depth
// this struct describes. yaml.v3 matches keys case-sensitively and rejects a
// key defined twice in one mapping, so `Image:` and a repeated key are errors
// too (TestParseComposeStrict).
func ParseCompose(b []byte) (*Compose, error) {
	var c Compose
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(&c); err != nil {
		return nil, err
	}
	for k := range c.Extensions {
		if !strings.HasPrefix(k, "x-") {
			return nil, fmt.Errorf("unknown top-level key %q", k)
		}
	}
	return &c, nil
}

// mount returns the host path mounted at target, if any (bind mounts only).
func (s ComposeService) mount(target string) (string, bool) {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && path.Clean(parts[1]) == path.Clean(target) {
			return parts[0], true
		}
	}
	return "", false
}

func (s ComposeService) containerPorts() []string {
	var out []string
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		out = append(out, strings.TrimSuffix(parts[len(parts)-1], "/tcp"))
	}
	return out
}

func readEnvFile(tb testing.TB, p string) map[string]string {
	tb.Helper()
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			tb.Fatalf("%s: not KEY=VALUE: %q", p, l)
		}
		env[k] = v
	}
	return env
}

var composeVarRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+][^}]*)?\}`)

// interpolate does compose's ${VAR}, ${VAR:?msg}, ${VAR:-default} with env;
// a required variable missing from env is an error.
func interpolate(v string, env map[string]string) (string, error) {
	var err error
	out := composeVarRE.ReplaceAllStringFunc(v, func(m string) string {
		sm := composeVarRE.FindStringSubmatch(m)
		val, ok := env[sm[1]]
		if !ok || val == "" {
			switch {
			case strings.HasPrefix(sm[2], ":-") || strings.HasPrefix(sm[2], "-"):
				return strings.TrimLeft(sm[2], ":-")
			case strings.Contains(sm[2], "?") || !ok:
				err = fmt.Errorf("variable %s is not set in the env file", sm[1])
			}
		}
		return val
	})
	return out, err
}

type composeStack struct {
	c      *Compose
	env    map[string]string // .env.example
	cfgRaw []byte
	cfg    *config.Config
	flags  *flagChecker // every payhook service's command against its binary's flags
}

func mustCompose(tb testing.TB) composeStack {
	tb.Helper()
	b, err := os.ReadFile(composeFile)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := ParseCompose(b)
	if err != nil {
		tb.Fatalf("docker-compose.yml: %v", err)
	}
	st := composeStack{c: c, env: readEnvFile(tb, composeEnv), flags: mustFlagChecker(tb)}
	st.cfgRaw, err = os.ReadFile(path.Join(repoRoot, composeConfig))
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// CheckCompose cross-checks the compose stack; it returns every problem.
func (st composeStack) check() []string {
	var p []string
	c := st.c
	for _, want := range []string{"nats", "redis", "ingress", "dispatcher", "reconciler", "providersim", "prometheus", "grafana"} {
		if _, ok := c.Services[want]; !ok {
			p = append(p, "no service "+want)
		}
	}
	// NATS: JetStream on, storage on a named volume.
	if n, ok := c.Services["nats"]; ok {
		if !slices.Contains(n.Command, "-js") {
			p = append(p, "nats: JetStream is not enabled (-js)")
		}
		sd := ""
		if i := slices.Index(n.Command, "-sd"); i >= 0 && i+1 < len(n.Command) {
			sd = n.Command[i+1]
		}
		host, ok := n.mount(sd)
		if sd == "" || !ok || strings.HasPrefix(host, ".") || strings.HasPrefix(host, "/") {
			p = append(p, "nats: the JetStream store dir (-sd) is not on a named volume")
		} else if _, ok := c.Volumes[host]; !ok {
			p = append(p, "nats: volume "+host+" is not declared")
		}
	}
	listens := map[string]string{}
	var cfgEnv map[string]string
	for name, s := range c.Services {
		if s.Image != payhookImage {
			continue
		}
		w := "service " + name
		if len(s.Command) == 0 || !slices.Contains(knownBinaries, s.Command[0]) {
			p = append(p, fmt.Sprintf("%s: command %q does not run a payhook binary (%v)", w, s.Command, knownBinaries))
			continue
		}
		if err := st.flags.check(s.Command); err != nil {
			p = append(p, fmt.Sprintf("%s: command: %v", w, err))
		}
		i := slices.Index(s.Command, "--config")
		if i < 0 || i+1 >= len(s.Command) {
			p = append(p, w+": no --config")
			continue
		}
		host, ok := s.mount(s.Command[i+1])
		if !ok {
			p = append(p, fmt.Sprintf("%s: --config %s is not mounted", w, s.Command[i+1]))
			continue
		}
		if path.Clean(host) != "./"+composeConfig && path.Clean(host) != composeConfig {
			p = append(p, fmt.Sprintf("%s: mounts %s as its config, want ./%s", w, host, composeConfig))
		}
		if !s.ReadOnly {
			p = append(p, w+": read_only is not set")
		}
		// The config must load with exactly the environment the service gets.
		env := map[string]string{}
		for k, v := range s.Environment {
			val, err := interpolate(v, st.env)
			if err != nil {
				p = append(p, fmt.Sprintf("%s: environment %s: %v", w, k, err))
			}
			env[k] = val
		}
		for _, ref := range EnvRefs(st.cfgRaw) {
			if _, ok := s.Environment[ref]; !ok {
				p = append(p, fmt.Sprintf("%s: the config needs ${%s}, which the service's environment does not set", w, ref))
			}
		}
		cfg, err := config.Parse(st.cfgRaw, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err == nil && s.Command[0] != "dispatcher" {
			// What every binary but the dispatcher checks at start: its
			// accounts' keys against the providers it links.
			err = cfg.CheckProviders(registry.All())
		}
		if err != nil {
			p = append(p, fmt.Sprintf("%s: %s does not load with the service's environment: %v", w, composeConfig, err))
			continue
		}
		cfgEnv = env
		listen := map[string]string{"ingress": cfg.Ingress.Listen, "dispatcher": cfg.Dispatcher.Listen, "reconciler": cfg.Reconciler.Listen}[s.Command[0]]
		if s.Command[0] == "providersim" {
			p = append(p, st.checkProvidersim(s, cfg)...)
		}
		if listen == "" {
			continue // providersim, devstack: no listen key in the shared config
		}
		host2, port, _ := net.SplitHostPort(listen)
		if host2 != "0.0.0.0" && host2 != "" {
			p = append(p, fmt.Sprintf("%s: %s.listen %s is not reachable from other containers", w, s.Command[0], listen))
		}
		listens[name] = port
		if !slices.Contains(s.containerPorts(), port) {
			p = append(p, fmt.Sprintf("%s: ports %v do not publish the listen port %s", w, s.Ports, port))
		}
		if s.Healthcheck == nil {
			p = append(p, w+": no healthcheck")
		} else {
			url := fmt.Sprintf("http://127.0.0.1:%s/healthz", port)
			if !slices.Contains(s.Healthcheck.Test, url) {
				p = append(p, fmt.Sprintf("%s: healthcheck %q does not GET %s", w, s.Healthcheck.Test, url))
			}
		}
	}
	if cfgEnv == nil {
		p = append(p, "no payhook service loaded the config")
	}
	for _, comp := range components {
		if _, ok := listens[comp]; !ok {
			p = append(p, "no listening payhook service "+comp)
		}
	}
	p = append(p, st.checkPrometheus(listens)...)
	if g, ok := c.Services["grafana"]; ok {
		if h, ok := g.mount("/var/lib/grafana/dashboards/payhook.json"); !ok || path.Clean(h) != "deploy/grafana/payhook.json" {
			p = append(p, "grafana: deploy/grafana/payhook.json is not mounted at /var/lib/grafana/dashboards/payhook.json")
		}
		if h, ok := g.mount("/etc/grafana/provisioning"); !ok || path.Clean(h) != "deploy/grafana/provisioning" {
			p = append(p, "grafana: deploy/grafana/provisioning is not mounted at /etc/grafana/provisioning")
		}
	}
	return p
}

// flag returns the value of --name in argv.
func flag(argv []string, name string) string {
	for i, a := range argv {
		if a == "--"+name && i+1 < len(argv) {
			return argv[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// checkProvidersim: the simulator listens where the accounts' base_url
// point, publishes that port, and posts callbacks to the ingress service.
func (st composeStack) checkProvidersim(s ComposeService, cfg *config.Config) []string {
	var p []string
	_, port, err := net.SplitHostPort(flag(s.Command, "listen"))
	if err != nil {
		return []string{"providersim: --listen is not host:port (its default 127.0.0.1 is unreachable from other containers)"}
	}
	if !slices.Contains(s.containerPorts(), port) {
		p = append(p, "providersim: does not publish its --listen port "+port)
	}
	for _, a := range cfg.Accounts {
		if a.BaseURL != "" && !strings.HasPrefix(a.BaseURL, "http://providersim:"+port+"/"+a.Provider+"/"+a.ID) {
			p = append(p, fmt.Sprintf("account %s: base_url %s is not the simulator's http://providersim:%s/%s/%s", a.ID, a.BaseURL, port, a.Provider, a.ID))
		}
	}
	_, iport, _ := net.SplitHostPort(cfg.Ingress.Listen)
	if want := "http://ingress:" + iport; flag(s.Command, "ingress") != want {
		p = append(p, fmt.Sprintf("providersim: --ingress %q, want %s", flag(s.Command, "ingress"), want))
	}
	return p
}

// PromConfig is the part of prometheus.yml compose uses.
type PromConfig struct {
	Global        map[string]string `yaml:"global"`
	RuleFiles     []string          `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func (st composeStack) checkPrometheus(listens map[string]string) []string {
	var p []string
	b, err := os.ReadFile(promConfig)
	if err != nil {
		return []string{err.Error()}
	}
	var pc PromConfig
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(&pc); err != nil {
		return []string{"prometheus.yml: " + err.Error()}
	}
	targets := map[string]string{} // target -> job
	for _, sc := range pc.ScrapeConfigs {
		for _, s := range sc.StaticConfigs {
			for _, t := range s.Targets {
				targets[t] = sc.JobName
			}
		}
	}
	for svc, port := range listens {
		t := net.JoinHostPort(svc, port)
		job, ok := targets[t]
		if !ok {
			p = append(p, fmt.Sprintf("prometheus.yml does not scrape %s (service %s)", t, svc))
		} else if job != "payhook-"+svc {
			p = append(p, fmt.Sprintf("prometheus.yml scrapes %s as job %q; the alerts expect payhook-%s", t, job, svc))
		}
	}
	p = append(p, st.composeExporterProblems(targets)...)
	for t, job := range targets {
		if job == "nats" && t == net.JoinHostPort(exporterService, fmt.Sprint(exporterPort)) {
			continue // composeExporterProblems checks it
		}
		host, port, err := net.SplitHostPort(t)
		if err != nil {
			p = append(p, "prometheus.yml: bad target "+t)
			continue
		}
		if host == "localhost" && job == "prometheus" {
			continue
		}
		if listens[host] != port {
			p = append(p, fmt.Sprintf("prometheus.yml scrapes %s, which is no payhook service's listen address", t))
		}
	}
	prom, ok := st.c.Services["prometheus"]
	if !ok {
		return p
	}
	if h, ok := prom.mount("/etc/prometheus/prometheus.yml"); !ok || path.Clean(h) != "deploy/prometheus/prometheus.yml" {
		p = append(p, "prometheus: deploy/prometheus/prometheus.yml is not mounted at /etc/prometheus/prometheus.yml")
	}
	for _, rf := range pc.RuleFiles {
		if _, ok := prom.mount(path.Join("/etc/prometheus", rf)); !ok {
			p = append(p, "prometheus: rule file "+rf+" is not mounted next to prometheus.yml")
		}
	}
	return p
}

func TestComposeStack(t *testing.T) {
	st := mustCompose(t)
	for _, p := range st.check() {
		t.Error(p)
	}
	// Every ${VAR} the compose file needs is in .env.example.
	b, _ := os.ReadFile(composeFile)
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	var scalars []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			scalars = append(scalars, n.Value)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	for _, m := range composeVarRE.FindAllStringSubmatch(strings.Join(scalars, "\n"), -1) {
		if _, ok := st.env[m[1]]; !ok && !strings.HasPrefix(m[2], ":-") {
			t.Errorf("docker-compose.yml uses ${%s}, which deploy/compose/.env.example does not set", m[1])
		}
	}
}

func TestComposeCheckCatchesBreakage(t *testing.T) {
	cases := map[string]struct {
		mutate func(st *composeStack)
		want   string
	}{
		"port drift": {func(st *composeStack) {
			st.cfgRaw = bytes.Replace(st.cfgRaw, []byte("0.0.0.0:8081"), []byte("0.0.0.0:9081"), 1)
		}, "do not publish the listen port 9081"},
		"missing env": {func(st *composeStack) {
			s := st.c.Services["ingress"]
			s.Environment = map[string]string{}
			st.c.Services["ingress"] = s
		}, "which the service's environment does not set"},
		"unknown binary": {func(st *composeStack) {
			s := st.c.Services["reconciler"]
			s.Command = []string{"reconcile", "--config", "/etc/payhook/payhook.yaml"}
			st.c.Services["reconciler"] = s
		}, "does not run a payhook binary"},
		"config not mounted": {func(st *composeStack) {
			s := st.c.Services["dispatcher"]
			s.Volumes = nil
			st.c.Services["dispatcher"] = s
		}, "is not mounted"},
		"healthcheck on readyz": {func(st *composeStack) {
			s := st.c.Services["ingress"]
			hc := *s.Healthcheck
			hc.Test = []string{"CMD", "/usr/local/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/readyz"}
			s.Healthcheck = &hc
			st.c.Services["ingress"] = s
		}, "does not GET http://127.0.0.1:8080/healthz"},
		"nats without jetstream": {func(st *composeStack) {
			s := st.c.Services["nats"]
			s.Command = []string{"-sd", "/data"}
			st.c.Services["nats"] = s
		}, "JetStream is not enabled"},
		"exporter off the monitoring port": {func(st *composeStack) {
			s := st.c.Services[exporterService]
			s.Command = []string{"-port=7777", "-jsz=all", "http://nats:8223"}
			st.c.Services[exporterService] = s
		}, "not NATS's monitoring endpoint http://nats:8222"},
		"simulator off target": {func(st *composeStack) {
			s := st.c.Services["providersim"]
			s.Command = []string{"providersim", "--config", "/etc/payhook/payhook.yaml", "--listen", "0.0.0.0:8091", "--ingress", "http://ingress:8080"}
			st.c.Services["providersim"] = s
		}, "is not the simulator's"},
		"flag typo": {func(st *composeStack) {
			s := st.c.Services["providersim"]
			s.Command = append(slices.Clone(s.Command), "--rat", "2")
			st.c.Services["providersim"] = s
		}, "service providersim: command: providersim rejects its arguments"},
		"flag of another binary": {func(st *composeStack) {
			s := st.c.Services["dispatcher"]
			s.Command = append(slices.Clone(s.Command), "--listen", "0.0.0.0:8081")
			st.c.Services["dispatcher"] = s
		}, "flag provided but not defined: -listen"},
		"bad flag value": {func(st *composeStack) {
			s := st.c.Services["providersim"]
			s.Command = append(slices.Clone(s.Command), "--timescale", "fast")
			st.c.Services["providersim"] = s
		}, `invalid value "fast" for flag -timescale`},
		"bad config": {func(st *composeStack) {
			st.cfgRaw = append(st.cfgRaw, []byte("\nbogus_key: 1\n")...)
		}, "does not load"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			st := mustCompose(t)
			c.mutate(&st)
			p := st.check()
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, c.want) }) {
				t.Errorf("problems %q, want one mentioning %q", p, c.want)
			}
		})
	}
}

// TestParseComposeStrict: the compose file is decoded as strictly as the
// manifests (TestStrictDecodeRejects): a misspelled key, a key in the wrong
// case and a duplicate key (whose last value would win) are errors.
func TestParseComposeStrict(t *testing.T) {
	cases := map[string]struct{ doc, want string }{
		"misspelled service key":   {"services:\n  a:\n    imgae: x\n", "field imgae not found"},
		"misspelled top-level key": {"servics: {}\n", `unknown top-level key "servics"`},
		"wrong case":               {"services:\n  a:\n    Image: x\n", "field Image not found"},
		"wrong case top-level":     {"Services:\n  a:\n    image: x\n", `unknown top-level key "Services"`},
		"wrong case nested":        {"services:\n  a:\n    healthcheck:\n      Test: [x]\n", "field Test not found"},
		"duplicate key":            {"services:\n  a:\n    image: x\n    image: y\n", `mapping key "image" already defined`},
		"duplicate service":        {"services:\n  a:\n    image: x\n  a:\n    image: y\n", `mapping key "a" already defined`},
		"duplicate top-level key":  {"services:\n  a:\n    image: x\nservices:\n  b:\n    image: y\n", `mapping key "services" already defined`},
		"duplicate environment":    {"services:\n  a:\n    environment:\n      A: b\n      A: c\n", `mapping key "A" already defined`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseCompose([]byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestPrometheusConfig(t *testing.T) {
	if out, err := promtool(t, nil, "check", "config", promConfig); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
}
