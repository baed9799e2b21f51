package deploytest

import (
	"fmt"
	"net"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
)

const k8sDir = "../../deploy/k8s"

// payhook's three long-running services and the Deployment names they run as.
var components = []string{"ingress", "dispatcher", "reconciler"}

func mustManifests(tb testing.TB) Set {
	tb.Helper()
	objs, err := LoadDir(k8sDir)
	if err != nil {
		tb.Fatalf("k8s manifests: %v", err)
	}
	if len(objs) == 0 {
		tb.Fatal("no manifests in deploy/k8s")
	}
	return objs
}

func TestManifestsStrictDecode(t *testing.T) {
	objs := mustManifests(t)
	seen := map[string]bool{}
	for _, o := range objs {
		key := o.Kind + "/" + o.Name
		if seen[key] {
			t.Errorf("%s defined twice", o)
		}
		seen[key] = true
	}
	for _, want := range []string{
		"Namespace/payhook", "ConfigMap/payhook-config", "Secret/payhook-ingress-secrets",
		"Secret/payhook-dispatcher-secrets", "Secret/payhook-reconciler-secrets", "Secret/nats-users",
		"Deployment/payhook-ingress", "Deployment/payhook-dispatcher", "Deployment/payhook-reconciler",
		"Service/payhook-ingress", "Service/payhook-dispatcher", "Service/payhook-reconciler",
		"HorizontalPodAutoscaler/payhook-ingress", "HorizontalPodAutoscaler/payhook-dispatcher",
		"PodDisruptionBudget/payhook-ingress", "PodDisruptionBudget/payhook-dispatcher", "PodDisruptionBudget/payhook-reconciler",
		"NetworkPolicy/default-deny-ingress", "ServiceMonitor/payhook",
		"StatefulSet/nats", "Service/nats", "Service/nats-headless", "ConfigMap/nats-config", "PodDisruptionBudget/nats",
		"RedisFailover/payhook-redis",
	} {
		if !seen[want] {
			t.Errorf("deploy/k8s has no %s", want)
		}
	}
	for _, o := range objs {
		if ns := namespaceOf(o); o.Kind != "Namespace" && ns != "payhook" {
			t.Errorf("%s: namespace %q, want payhook", o, ns)
		}
	}
}

func namespaceOf(o Object) string {
	if m, ok := o.Obj.(interface{ GetNamespace() string }); ok {
		return m.GetNamespace()
	}
	return ""
}

// TestStrictDecodeRejects shows the decoder is strict: a typo, an unknown
// kind, a wrong type, a key in the wrong case and a duplicate key are
// errors, not silently dropped or resolved.
func TestStrictDecodeRejects(t *testing.T) {
	cases := map[string]struct{ doc, want string }{
		"unknown field":     {"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {prots: []}\n", `unknown field "spec.prots"`},
		"misplaced field":   {"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: a, image: b, readinessProbe: {path: /readyz}}]}}}\n", `unknown field "spec.template.spec.containers[0].readinessProbe.path"`},
		"unknown kind":      {"apiVersion: v1\nkind: Servise\nmetadata: {name: x}\n", "unsupported apiVersion/kind v1/Servise"},
		"wrong type":        {"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: three}\n", "cannot unmarshal string"},
		"kind not shipped":  {"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n", "unsupported apiVersion/kind v1/Pod"},
		"no name":           {"apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "metadata.name is empty"},
		"monitor typo":      {"apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {endpoint: [{port: http}]}\n", `unknown field "spec.endpoint"`},
		"redis typo":        {"apiVersion: databases.spotahome.com/v1\nkind: RedisFailover\nmetadata: {name: x}\nspec: {redis: {replica: 3}}\n", `unknown field "spec.redis.replica"`},
		"not yaml":          {"apiVersion: v1\nkind: [\n", "case.yaml#0: yaml:"},
		"second doc broken": {"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\nstuff: 1\n", `case.yaml#1 (ConfigMap): unknown field "stuff"`},
		// encoding/json matches keys case-insensitively; the API server does not.
		"wrong case":      {"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {Type: NodePort}\n", `unknown field "spec.Type"`},
		"wrong case kind": {"apiVersion: v1\nKind: Service\nmetadata: {name: x}\n", "unsupported apiVersion/kind v1/"},
		// Otherwise the last of two keys silently wins.
		"duplicate key":           {"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  type: ClusterIP\n  type: NodePort\n", `key "type" already set`},
		"duplicate top-level key": {"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\nmetadata: {name: z}\n", `key "metadata" already set`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeManifests("case.yaml", []byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	good := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {k: v}\n"
	objs, err := DecodeManifests("good.yaml", []byte(good))
	if err != nil || len(objs) != 2 {
		t.Fatalf("good manifests: %d objects, %v", len(objs), err)
	}
}

// secretName is the Secret holding one service's ${NAME}s.
func secretName(component string) string { return "payhook-" + component + "-secrets" }

// deploymentSecrets returns the Secrets a Deployment's container gets
// (envFrom, env valueFrom, secret volumes), by name.
func deploymentSecrets(d *appsv1.Deployment) []string {
	var out []string
	add := func(n string) {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	spec := d.Spec.Template.Spec
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, ef := range c.EnvFrom {
			if ef.SecretRef != nil {
				add(ef.SecretRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				add(e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			add(v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					add(src.Secret.Name)
				}
			}
		}
	}
	return out
}

// secretKeys returns a Secret's keys with their (placeholder) values.
func secretKeys(s Set, name string) (map[string]string, bool) {
	sec, ok := Get[*corev1.Secret](s, "Secret", name)
	if !ok {
		return nil, false
	}
	env := map[string]string{}
	for k, v := range sec.StringData {
		env[k] = v
	}
	for k, v := range sec.Data {
		env[k] = string(v)
	}
	return env, true
}

// secretEnv returns the environment a component's pods get from Secrets
// (envFrom of every Secret its Deployment names): what ${NAME} can read.
func secretEnv(tb testing.TB, s Set, component string) map[string]string {
	tb.Helper()
	d, ok := getDeployment(s, component)
	if !ok {
		tb.Fatalf("no Deployment payhook-%s", component)
	}
	env := map[string]string{}
	for _, name := range deploymentSecrets(d) {
		keys, ok := secretKeys(s, name)
		if !ok {
			tb.Fatalf("Deployment %s names Secret %s, which deploy/k8s does not define", d.Name, name)
		}
		for k, v := range keys {
			env[k] = v
		}
	}
	return env
}

var envRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// EnvRefs returns the ${NAME}s in a YAML document's scalar values (where
// internal/config expands them; comments do not count).
func EnvRefs(b []byte) []string {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil
	}
	var out []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			for _, m := range envRefRE.FindAllStringSubmatch(n.Value, -1) {
				if !slices.Contains(out, m[1]) {
					out = append(out, m[1])
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	return out
}

// The event signing placeholders deploy/k8s ships (secret.yaml's
// PAYHOOK_EVENT_KEY, configmap.yaml's public_keys): config validation
// refuses them, so a deployment applied unchanged does not start.
const (
	placeholderEventKey       = "whsk_REPLACE-ME-run-payhook-keygen"
	placeholderEventPublicKey = "whpk_REPLACE-ME-run-payhook-keygen"
)

// deployEventKeys is a freshly generated signing pair that stands in for
// the placeholders, as an operator's payhook-keygen output does.
var deployEventKeys = sync.OnceValues(func() (private, public string) {
	k, err := events.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	return k.Encode(), k.Public().Encode()
})

// withDeployKeys replaces the signing placeholders in a config file and its
// environment with deployEventKeys.
func withDeployKeys(raw string, env map[string]string) (string, map[string]string) {
	private, public := deployEventKeys()
	out := make(map[string]string, len(env))
	for k, v := range env {
		if v == placeholderEventKey {
			v = private
		}
		out[k] = v
	}
	return strings.ReplaceAll(raw, placeholderEventPublicKey, public), out
}

// k8sConfigFile returns a component's own config file from ConfigMap
// payhook-config (<component>.yaml).
func k8sConfigFile(tb testing.TB, s Set, component string) string {
	tb.Helper()
	cm, ok := Get[*corev1.ConfigMap](s, "ConfigMap", "payhook-config")
	if !ok {
		tb.Fatal("no ConfigMap payhook-config")
	}
	key := component + ".yaml"
	raw, ok := cm.Data[key]
	if !ok {
		tb.Fatalf("ConfigMap payhook-config has no %s", key)
	}
	return raw
}

// k8sConfig parses a component's own config file from ConfigMap
// payhook-config (<component>.yaml) with the environment its Deployment
// gets, a generated key pair in place of the signing placeholders.
func k8sConfig(tb testing.TB, s Set, component string) (*config.Config, []byte) {
	tb.Helper()
	key := component + ".yaml"
	raw, env := withDeployKeys(k8sConfigFile(tb, s, component), secretEnv(tb, s, component))
	cfg, err := config.Parse([]byte(raw), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil && component != "dispatcher" {
		// What every binary but the dispatcher checks at start: its
		// accounts' keys against the providers it links.
		err = cfg.CheckProviders(registry.All())
	}
	if err != nil {
		tb.Fatalf("ConfigMap payhook-config %s with the environment of Deployment payhook-%s: %v", key, component, err)
	}
	return cfg, []byte(raw)
}

// TestShippedEventKeyPlaceholdersAreRefused: applied unchanged, deploy/k8s
// does not start ingress, dispatcher or reconciler (config validation, exit
// 2 naming the key), and the placeholders are the ones k8sConfig replaces.
func TestShippedEventKeyPlaceholdersAreRefused(t *testing.T) {
	s := mustManifests(t)
	want := map[string]string{
		"ingress":    "event_signing.private_key: ",
		"reconciler": "event_signing.private_key: ",
		"dispatcher": "event_signing.public_keys[0]: ",
	}
	for _, comp := range components {
		raw, env := k8sConfigFile(t, s, comp), secretEnv(t, s, comp)
		if comp != "dispatcher" && env["PAYHOOK_EVENT_KEY"] != placeholderEventKey {
			t.Errorf("Secret %s: PAYHOOK_EVENT_KEY is not the placeholder %s", secretName(comp), placeholderEventKey)
		}
		if comp != "ingress" && !strings.Contains(raw, placeholderEventPublicKey) {
			t.Errorf("%s.yaml: event_signing.public_keys is not the placeholder %s", comp, placeholderEventPublicKey)
		}
		_, err := config.Parse([]byte(raw), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err == nil || !strings.Contains(err.Error(), want[comp]) || !strings.Contains(err.Error(), "payhook-keygen") {
			t.Errorf("%s.yaml with the shipped Secret: %v, want an error naming %q and payhook-keygen", comp, err, want[comp])
		}
	}
	// With a generated pair in their place, the producers sign with the key
	// the readers verify.
	ing, _ := k8sConfig(t, s, "ingress")
	dis, _ := k8sConfig(t, s, "dispatcher")
	priv, err := events.ParsePrivateKey(ing.EventSigning.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := dis.EventSigning.PublicKeyList("dispatcher")
	if err != nil || len(keys) != 1 || !keys[0].Equal(priv.Public()) {
		t.Errorf("dispatcher public_keys %v (%v) do not verify ingress's key", keys, err)
	}
}

func TestConfigMapParsesWithSecretEnv(t *testing.T) {
	s := mustManifests(t)
	for _, comp := range components {
		cfg, raw := k8sConfig(t, s, comp)
		env := secretEnv(t, s, comp)
		for _, n := range EnvRefs(raw) {
			if _, ok := env[n]; !ok {
				t.Errorf("%s.yaml references ${%s}, which the Secrets of Deployment payhook-%s do not provide", comp, n, comp)
			}
		}
		if cfg.NATS.Replicas != 3 {
			t.Errorf("%s.yaml: nats.replicas = %d, want 3 (a 3-node JetStream cluster)", comp, cfg.NATS.Replicas)
		}
		if cfg.NATS.User != comp || cfg.NATS.Password == "" {
			t.Errorf("%s.yaml: nats.user %q, want %q with a password (deploy/nats/auth.conf)", comp, cfg.NATS.User, comp)
		}
		if sn := cfg.Redis.Sentinel; comp != "dispatcher" && (sn.Master != "mymaster" || !slices.Contains(sn.Addrs, "rfs-payhook-redis:26379")) {
			t.Errorf("%s.yaml: redis.sentinel %+v: Kubernetes runs Redis with Sentinel (redis.yaml: master mymaster, Service rfs-payhook-redis:26379)", comp, sn)
		}
	}
	if sts, ok := Get[*appsv1.StatefulSet](s, "StatefulSet", "nats"); !ok || sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Error("StatefulSet nats must run 3 replicas")
	}
}

// listenPort is the port of a component's listen address in the config.
func listenPort(cfg *config.Config, component string) (int, error) {
	addr := map[string]string{"ingress": cfg.Ingress.Listen, "dispatcher": cfg.Dispatcher.Listen, "reconciler": cfg.Reconciler.Listen}[component]
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	if host != "0.0.0.0" && host != "" && host != "::" {
		return 0, fmt.Errorf("%s.listen %q does not bind all interfaces: kubelet probes and Services could not reach it", component, addr)
	}
	var p int
	_, err = fmt.Sscanf(port, "%d", &p)
	return p, err
}

// CheckPodSecurity checks the pod and every container against the
// restricted profile payhook runs under.
func CheckPodSecurity(what string, spec corev1.PodSpec) []string {
	var p []string
	psc := spec.SecurityContext
	podNonRoot := psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p = append(p, what+": pod securityContext.seccompProfile must be RuntimeDefault")
	}
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		p = append(p, what+": pod runs as uid 0")
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		w := what + " container " + c.Name
		sc := c.SecurityContext
		if sc == nil {
			p = append(p, w+": no securityContext")
			continue
		}
		if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
			p = append(p, w+": runAsNonRoot is not true")
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			p = append(p, w+": runs as uid 0")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			p = append(p, w+": readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			p = append(p, w+": allowPrivilegeEscalation is not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			p = append(p, w+": privileged")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			p = append(p, w+": capabilities.drop does not contain ALL")
		} else if len(sc.Capabilities.Add) > 0 {
			p = append(p, w+": adds capabilities")
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			p = append(p, w+": no cpu/memory requests")
		}
		if c.Resources.Limits.Memory().IsZero() {
			p = append(p, w+": no memory limit")
		}
	}
	return p
}

// containerPort resolves a probe or Service port (number or name) against c.
func containerPort(c corev1.Container, port intstr.IntOrString) (int32, bool) {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

func probeProblem(w, which string, pr *corev1.Probe, wantPath string, c corev1.Container, listen int) []string {
	if pr == nil || pr.HTTPGet == nil {
		return []string{fmt.Sprintf("%s: no %s httpGet probe", w, which)}
	}
	var p []string
	if pr.HTTPGet.Path != wantPath {
		p = append(p, fmt.Sprintf("%s: %s probe path %q, want %q", w, which, pr.HTTPGet.Path, wantPath))
	}
	port, ok := containerPort(c, pr.HTTPGet.Port)
	switch {
	case !ok:
		p = append(p, fmt.Sprintf("%s: %s probe port %s is not a container port", w, which, pr.HTTPGet.Port.String()))
	case int(port) != listen:
		p = append(p, fmt.Sprintf("%s: %s probe port %d, but the config listens on %d", w, which, port, listen))
	}
	return p
}

// CheckDeployment checks one payhook Deployment against the config it
// mounts, and its container's command and args against the real binary's
// flags (flags).
func CheckDeployment(component string, d *appsv1.Deployment, s Set, cfg *config.Config, cfgKeys []string, flags *flagChecker) []string {
	w := "Deployment " + d.Name
	p := CheckPodSecurity(w, d.Spec.Template.Spec)
	sel, err := metav1LabelSelector(d)
	if err != nil {
		p = append(p, w+": "+err.Error())
	} else if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		p = append(p, w+": selector does not match the pod template labels")
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		return append(p, w+": want exactly one container")
	}
	c := d.Spec.Template.Spec.Containers[0]
	argv := append(slices.Clone(c.Command), c.Args...)
	if len(argv) == 0 || argv[0] != component {
		p = append(p, fmt.Sprintf("%s: runs %q, want the %s binary", w, argv, component))
	} else if err := flags.check(argv); err != nil {
		p = append(p, fmt.Sprintf("%s: command and args: %v", w, err))
	}
	listen, err := listenPort(cfg, component)
	if err != nil {
		p = append(p, w+": "+err.Error())
	}
	if _, ok := containerPort(c, intstr.FromInt32(int32(listen))); !ok {
		p = append(p, fmt.Sprintf("%s: no container port %d (%s.listen)", w, listen, component))
	}
	p = append(p, probeProblem(w, "liveness", c.LivenessProbe, "/healthz", c, listen)...)
	p = append(p, probeProblem(w, "readiness", c.ReadinessProbe, "/readyz", c, listen)...)
	if c.StartupProbe != nil {
		p = append(p, probeProblem(w, "startup", c.StartupProbe, "/healthz", c, listen)...)
	}
	// --config FILE must be a key of payhook-config mounted at FILE's directory.
	cfgPath := ""
	for i, a := range argv {
		if a == "--config" && i+1 < len(argv) {
			cfgPath = argv[i+1]
		} else if v, ok := strings.CutPrefix(a, "--config="); ok {
			cfgPath = v
		}
	}
	if cfgPath == "" {
		for _, e := range c.Env {
			if e.Name == "PAYHOOK_CONFIG" {
				cfgPath = e.Value
			}
		}
	}
	if cfgPath == "" {
		p = append(p, w+": no --config")
	} else if !mountedFromConfigMap(d.Spec.Template.Spec, c, cfgPath, "payhook-config", cfgKeys) {
		p = append(p, fmt.Sprintf("%s: --config %s is not a key of ConfigMap payhook-config mounted there", w, cfgPath))
	}
	hasSecret := false
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil && ef.SecretRef.Name == secretName(component) {
			hasSecret = true
		}
	}
	if !hasSecret {
		p = append(p, fmt.Sprintf("%s: does not get Secret %s through envFrom", w, secretName(component)))
	}
	return p
}

func metav1LabelSelector(d *appsv1.Deployment) (labels.Selector, error) {
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
		return nil, fmt.Errorf("no selector.matchLabels")
	}
	return labels.SelectorFromSet(d.Spec.Selector.MatchLabels), nil
}

func mountedFromConfigMap(spec corev1.PodSpec, c corev1.Container, file, cmName string, keys []string) bool {
	dir, base := path.Split(file)
	dir = path.Clean(dir)
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil || v.ConfigMap.Name != cmName {
				continue
			}
			if m.SubPath != "" {
				if path.Clean(m.MountPath) == path.Clean(file) && slices.Contains(keys, m.SubPath) {
					return true
				}
				continue
			}
			if path.Clean(m.MountPath) != dir {
				continue
			}
			if len(v.ConfigMap.Items) == 0 {
				return slices.Contains(keys, base)
			}
			for _, it := range v.ConfigMap.Items {
				if it.Path == base && slices.Contains(keys, it.Key) {
					return true
				}
			}
		}
	}
	return false
}

func TestDeployments(t *testing.T) {
	s := mustManifests(t)
	for _, comp := range components {
		d, ok := Get[*appsv1.Deployment](s, "Deployment", "payhook-"+comp)
		if !ok {
			t.Errorf("no Deployment payhook-%s", comp)
			continue
		}
		cfg, _ := k8sConfig(t, s, comp)
		for _, p := range CheckDeployment(comp, d, s, cfg, []string{comp + ".yaml"}, mustFlagChecker(t)) {
			t.Error(p)
		}
	}
	for _, sts := range All[*appsv1.StatefulSet](s) {
		for _, p := range CheckPodSecurity("StatefulSet "+sts.Name, sts.Spec.Template.Spec) {
			t.Error(p)
		}
	}
}

// TestDeploymentCheckCatchesBreakage breaks a good Deployment in the ways
// the checks exist for, and expects each to be reported.
func TestDeploymentCheckCatchesBreakage(t *testing.T) {
	s := mustManifests(t)
	cfg, _ := k8sConfig(t, s, "ingress")
	orig, _ := Get[*appsv1.Deployment](s, "Deployment", "payhook-ingress")
	flags := mustFlagChecker(t)
	f := false
	tr := true
	cases := map[string]struct {
		mutate func(d *appsv1.Deployment)
		want   string
	}{
		"liveness on readyz":  {func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Path = "/readyz" }, "liveness probe path"},
		"no readiness probe":  {func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].ReadinessProbe = nil }, "no readiness httpGet probe"},
		"probe on wrong port": {func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort = 9999 }, "but the config listens on 8080"},
		"writable root fs": {func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f
		}, "readOnlyRootFilesystem"},
		"privilege escalation": {func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = &tr
		}, "allowPrivilegeEscalation"},
		"capabilities kept": {func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Drop = nil }, "drop does not contain ALL"},
		"root": {func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil
			d.Spec.Template.Spec.Containers[0].SecurityContext.RunAsNonRoot = nil
		}, "runAsNonRoot"},
		"config not mounted": {func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].VolumeMounts[0].MountPath = "/etc/other"
		}, "is not a key of ConfigMap"},
		"config path typo": {func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Args[1] = "/etc/payhook/config.yaml" }, "is not a key of ConfigMap"},
		"flag typo": {func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Args = append(d.Spec.Template.Spec.Containers[0].Args, "--versoin")
		}, "command and args: ingress rejects its arguments"},
		"flag of another binary": {func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Args = append(d.Spec.Template.Spec.Containers[0].Args, "--rate", "1")
		}, "flag provided but not defined: -rate"},
		"stray argument": {func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Args = append([]string{"serve"}, d.Spec.Template.Spec.Containers[0].Args...)
		}, "did not reach a trailing --version"},
		"no secret env": {func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].EnvFrom = nil }, "payhook-ingress-secrets"},
		"another service's config": {func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Volumes[0].ConfigMap.Items[0].Key = "dispatcher.yaml"
		}, "is not a key of ConfigMap"},
		"wrong binary": {func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Command = []string{"dispatcher"} }, "want the ingress binary"},
		"no resources": {func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{}
		}, "no cpu/memory requests"},
		"selector mismatch":  {func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"x": "y"} }, "selector does not match"},
		"seccomp unconfined": {func(d *appsv1.Deployment) { d.Spec.Template.Spec.SecurityContext.SeccompProfile = nil }, "seccompProfile"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			d := orig.DeepCopy()
			c.mutate(d)
			p := CheckDeployment("ingress", d, s, cfg, []string{"ingress.yaml"}, flags)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, c.want) }) {
				t.Errorf("problems %q, want one mentioning %q", p, c.want)
			}
		})
	}
	if p := CheckDeployment("ingress", orig.DeepCopy(), s, cfg, []string{"ingress.yaml"}, flags); len(p) != 0 {
		t.Errorf("the shipped Deployment has problems: %q", p)
	}
}

func TestServicesHPAsPDBs(t *testing.T) {
	s := mustManifests(t)
	for _, comp := range components {
		cfg, _ := k8sConfig(t, s, comp)
		name := "payhook-" + comp
		d, ok := Get[*appsv1.Deployment](s, "Deployment", name)
		if !ok {
			continue // reported by TestDeployments
		}
		podLabels := labels.Set(d.Spec.Template.Labels)
		listen, _ := listenPort(cfg, comp)

		svc, ok := Get[*corev1.Service](s, "Service", name)
		if !ok {
			t.Errorf("no Service %s", name)
		} else {
			if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
				t.Errorf("Service %s does not select Deployment %s's pods", name, name)
			}
			found := false
			for _, sp := range svc.Spec.Ports {
				if port, ok := containerPort(d.Spec.Template.Spec.Containers[0], sp.TargetPort); ok && int(port) == listen && sp.Name == "http" {
					found = true
				}
			}
			if !found {
				t.Errorf("Service %s has no port named http targeting the container's %d", name, listen)
			}
		}

		pdb, ok := Get[*policyv1.PodDisruptionBudget](s, "PodDisruptionBudget", name)
		if !ok {
			t.Errorf("no PodDisruptionBudget %s", name)
		} else if pdb.Spec.Selector == nil || !labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(podLabels) {
			t.Errorf("PodDisruptionBudget %s does not select Deployment %s's pods", name, name)
		} else if pdb.Spec.MinAvailable != nil && d.Spec.Replicas != nil && pdb.Spec.MinAvailable.Type == intstr.Int && pdb.Spec.MinAvailable.IntVal >= *d.Spec.Replicas {
			t.Errorf("PodDisruptionBudget %s minAvailable %d >= replicas %d: nodes could never drain", name, pdb.Spec.MinAvailable.IntVal, *d.Spec.Replicas)
		}

		hpa, hasHPA := Get[*autoscalingv2.HorizontalPodAutoscaler](s, "HorizontalPodAutoscaler", name)
		if comp == "ingress" || comp == "dispatcher" {
			if !hasHPA {
				t.Errorf("no HorizontalPodAutoscaler %s", name)
				continue
			}
			ref := hpa.Spec.ScaleTargetRef
			if ref.Kind != "Deployment" || ref.Name != name || ref.APIVersion != "apps/v1" {
				t.Errorf("HPA %s targets %s %s/%s, want apps/v1 Deployment %s", name, ref.APIVersion, ref.Kind, ref.Name, name)
			}
			if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas <= *hpa.Spec.MinReplicas {
				t.Errorf("HPA %s: want minReplicas >= 2 and maxReplicas above it", name)
			}
			if len(hpa.Spec.Metrics) == 0 {
				t.Errorf("HPA %s has no metrics", name)
			}
			if c := d.Spec.Template.Spec.Containers[0]; c.Resources.Requests.Cpu().IsZero() {
				t.Errorf("HPA %s scales on CPU but the container has no CPU request", name)
			}
		}
	}
}

func TestServiceMonitorScrapesEveryService(t *testing.T) {
	s := mustManifests(t)
	sm, ok := Get[*ServiceMonitor](s, "ServiceMonitor", "payhook")
	if !ok {
		t.Fatal("no ServiceMonitor payhook")
	}
	if len(sm.Spec.Endpoints) == 0 {
		t.Fatal("ServiceMonitor has no endpoints")
	}
	for _, ep := range sm.Spec.Endpoints {
		if ep.Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoint path %q, want /metrics", ep.Path)
		}
	}
	sel := labels.SelectorFromSet(sm.Spec.Selector.MatchLabels)
	if len(sm.Spec.Selector.MatchLabels) == 0 {
		t.Fatal("ServiceMonitor selects no labels")
	}
	for _, comp := range components {
		svc, ok := Get[*corev1.Service](s, "Service", "payhook-"+comp)
		if !ok {
			continue
		}
		if !sel.Matches(labels.Set(svc.Labels)) {
			t.Errorf("ServiceMonitor does not select Service %s", svc.Name)
		}
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == sm.Spec.Endpoints[0].Port }) {
			t.Errorf("Service %s has no port named %q for the ServiceMonitor", svc.Name, sm.Spec.Endpoints[0].Port)
		}
		if sm.Spec.JobLabel == "" && !strings.HasPrefix(svc.Name, "payhook-") {
			t.Errorf("job label would be %q; alerts expect payhook-*", svc.Name)
		}
	}
	for _, o := range s {
		if o.Kind == "Service" && strings.HasPrefix(o.Name, "nats") && sel.Matches(labels.Set(o.Obj.(*corev1.Service).Labels)) {
			t.Errorf("ServiceMonitor also selects %s, which has no payhook /metrics", o.Name)
		}
	}
}

func TestNetworkPolicies(t *testing.T) {
	s := mustManifests(t)
	pols := All[*networkingv1.NetworkPolicy](s)
	deny := false
	for _, p := range pols {
		if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 && len(p.Spec.Ingress) == 0 &&
			slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			deny = true
		}
	}
	if !deny {
		t.Error("no default-deny ingress NetworkPolicy")
	}
	// Every payhook Deployment's port must be allowed by some policy that selects its pods.
	for _, comp := range components {
		cfg, _ := k8sConfig(t, s, comp)
		d, ok := Get[*appsv1.Deployment](s, "Deployment", "payhook-"+comp)
		if !ok {
			continue
		}
		listen, _ := listenPort(cfg, comp)
		if !portAllowed(pols, labels.Set(d.Spec.Template.Labels), listen) {
			t.Errorf("no NetworkPolicy lets traffic reach %s on %d (probes pass, but Prometheus and clients are cut off)", d.Name, listen)
		}
	}
	sts, _ := Get[*appsv1.StatefulSet](s, "StatefulSet", "nats")
	if sts != nil {
		for _, port := range []int{4222, 6222} {
			if !portAllowed(pols, labels.Set(sts.Spec.Template.Labels), port) {
				t.Errorf("no NetworkPolicy lets traffic reach NATS on %d", port)
			}
		}
	}
}

func portAllowed(pols []*networkingv1.NetworkPolicy, pod labels.Set, port int) bool {
	for _, p := range pols {
		sel, err := metav1SelectorAsSelector(p.Spec.PodSelector)
		if err != nil || !sel.Matches(pod) {
			continue
		}
		for _, r := range p.Spec.Ingress {
			if len(r.Ports) == 0 {
				return true
			}
			for _, pp := range r.Ports {
				if pp.Port != nil && pp.Port.Type == intstr.Int && int(pp.Port.IntVal) == port {
					return true
				}
			}
		}
	}
	return false
}

func getDeployment(s Set, component string) (*appsv1.Deployment, bool) {
	return Get[*appsv1.Deployment](s, "Deployment", "payhook-"+component)
}

func itoa(n int64) string { return fmt.Sprint(n) }
