package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// authConfPath is the NATS authorization every deployment runs with.
var authConfPath = filepath.Join("..", "..", "deploy", "nats", "auth.conf")

// envRefsUnder returns the ${NAME}s in the values under top-level key of a
// config file (accounts, subscribers).
func envRefsUnder(tb testing.TB, raw []byte, key string) []string {
	tb.Helper()
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		tb.Fatal(err)
	}
	n, ok := doc[key]
	if !ok {
		return nil
	}
	b, err := yaml.Marshal(&n)
	if err != nil {
		tb.Fatal(err)
	}
	return EnvRefs(b)
}

// CheckSecretScope reports every Secret a Deployment names that holds one
// of the forbidden keys (what tells it is the key, whatever the Secret is
// called).
func CheckSecretScope(d *appsv1.Deployment, s Set, forbidden []string, what string) []string {
	var p []string
	for _, name := range deploymentSecrets(d) {
		keys, _ := secretKeys(s, name)
		for k := range keys {
			if slices.Contains(forbidden, k) {
				p = append(p, "Deployment "+d.Name+" gets Secret "+name+", which holds "+what+" "+k)
			}
		}
	}
	slices.Sort(p)
	return p
}

// secretScopes are the keys each Deployment must not get: provider keys
// (the accounts of ingress.yaml and reconciler.yaml) for the dispatcher,
// subscriber secrets (the subscribers of dispatcher.yaml) for ingress and
// the reconciler.
func secretScopes(tb testing.TB, s Set) (providerKeys, subscriberKeys []string) {
	tb.Helper()
	for _, comp := range []string{"ingress", "reconciler"} {
		_, raw := k8sConfig(tb, s, comp)
		providerKeys = append(providerKeys, envRefsUnder(tb, raw, "accounts")...)
	}
	_, raw := k8sConfig(tb, s, "dispatcher")
	subscriberKeys = envRefsUnder(tb, raw, "subscribers")
	if len(providerKeys) == 0 || len(subscriberKeys) == 0 {
		tb.Fatalf("found no provider keys (%q) or no subscriber secrets (%q): the walk is broken", providerKeys, subscriberKeys)
	}
	return providerKeys, subscriberKeys
}

// TestSecretsPerService: the dispatcher's pods hold no provider key, the
// ingress and reconciler pods no subscriber secret.
func TestSecretsPerService(t *testing.T) {
	s := mustManifests(t)
	prov, subs := secretScopes(t, s)
	for comp, forbidden := range map[string][]string{"dispatcher": prov, "ingress": subs, "reconciler": subs} {
		d, ok := getDeployment(s, comp)
		if !ok {
			t.Fatalf("no Deployment payhook-%s", comp)
		}
		what := map[string]string{"dispatcher": "the provider key", "ingress": "the subscriber secret", "reconciler": "the subscriber secret"}[comp]
		for _, p := range CheckSecretScope(d, s, forbidden, what) {
			t.Error(p)
		}
	}
	// The check catches a dispatcher given the ingress Secret, by envFrom
	// or by a single key.
	d, _ := getDeployment(s, "dispatcher")
	bad := d.DeepCopy()
	c := &bad.Spec.Template.Spec.Containers[0]
	c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secretName("ingress")}}})
	if p := CheckSecretScope(bad, s, prov, "the provider key"); len(p) == 0 {
		t.Error("a dispatcher with the ingress Secret passed")
	}
	bad = d.DeepCopy()
	c = &bad.Spec.Template.Spec.Containers[0]
	c.Env = append(c.Env, corev1.EnvVar{Name: "JPGLO_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secretName("reconciler")}, Key: "JPGLO_KEY"}}})
	if p := CheckSecretScope(bad, s, prov, "the provider key"); len(p) == 0 {
		t.Error("a dispatcher with one provider key passed")
	}
}

var natsEnvRE = regexp.MustCompile(`\$(PAYHOOK_NATS_[A-Z]+_PASSWORD)`)

// TestNATSRunsTheAuthFile: the NATS servers include an exact copy of
// deploy/nats/auth.conf and get every password it reads; each service's
// NATS password matches the servers' copy for its user.
func TestNATSRunsTheAuthFile(t *testing.T) {
	s := mustManifests(t)
	want, err := os.ReadFile(authConfPath)
	if err != nil {
		t.Fatal(err)
	}
	cm, ok := Get[*corev1.ConfigMap](s, "ConfigMap", "nats-config")
	if !ok {
		t.Fatal("no ConfigMap nats-config")
	}
	if cm.Data["auth.conf"] != string(want) {
		t.Error("ConfigMap nats-config auth.conf differs from deploy/nats/auth.conf: copy the file into it")
	}
	if !regexp.MustCompile(`(?m)^\s*include\s+"?\./auth\.conf"?\s*$`).MatchString(cm.Data["nats.conf"]) {
		t.Error("nats.conf does not include ./auth.conf")
	}
	sts, ok := Get[*appsv1.StatefulSet](s, "StatefulSet", "nats")
	if !ok {
		t.Fatal("no StatefulSet nats")
	}
	env := map[string]string{}
	for _, ef := range sts.Spec.Template.Spec.Containers[0].EnvFrom {
		if ef.SecretRef != nil {
			keys, _ := secretKeys(s, ef.SecretRef.Name)
			for k, v := range keys {
				env[k] = v
			}
		}
	}
	refs := natsEnvRE.FindAllStringSubmatch(string(want), -1)
	if len(refs) < 4 {
		t.Fatalf("auth.conf reads %d passwords, want one per user", len(refs))
	}
	for _, m := range refs {
		if _, ok := env[m[1]]; !ok {
			t.Errorf("auth.conf reads $%s, which StatefulSet nats does not get", m[1])
		}
	}
	for _, comp := range components {
		cfg, _ := k8sConfig(t, s, comp)
		if server := env["PAYHOOK_NATS_"+strings.ToUpper(comp)+"_PASSWORD"]; cfg.NATS.Password != server {
			t.Errorf("%s's NATS password differs from the servers' copy (Secret nats-users)", comp)
		}
	}
}

// TestNATSAdmitsOnlyPayhook: port 4222 is reachable only from payhook's
// own pods in the namespace (no namespace selector, no open rule).
func TestNATSAdmitsOnlyPayhook(t *testing.T) {
	s := mustManifests(t)
	sts, ok := Get[*appsv1.StatefulSet](s, "StatefulSet", "nats")
	if !ok {
		t.Fatal("no StatefulSet nats")
	}
	for _, p := range CheckNATSPeers(All[*networkingv1.NetworkPolicy](s), labels.Set(sts.Spec.Template.Labels)) {
		t.Error(p)
	}
	// The check catches the old rule: any namespace labelled as a client.
	pol, _ := Get[*networkingv1.NetworkPolicy](s, "NetworkPolicy", "nats")
	bad := pol.DeepCopy()
	bad.Spec.Ingress[0].From = append(bad.Spec.Ingress[0].From, networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"payhook.io/nats-client": "true"}}})
	if len(CheckNATSPeers([]*networkingv1.NetworkPolicy{bad}, labels.Set(sts.Spec.Template.Labels))) == 0 {
		t.Error("a namespace selector on 4222 passed")
	}
}

// CheckNATSPeers reports every rule of a policy selecting the NATS pods
// that lets anything but payhook's pods reach the client port 4222.
func CheckNATSPeers(pols []*networkingv1.NetworkPolicy, natsPod labels.Set) []string {
	var p []string
	payhook := labels.Set{"app.kubernetes.io/name": "payhook"}
	for _, pol := range pols {
		sel, err := metav1SelectorAsSelector(pol.Spec.PodSelector)
		if err != nil || !sel.Matches(natsPod) {
			continue
		}
		for _, r := range pol.Spec.Ingress {
			on4222 := len(r.Ports) == 0
			for _, pp := range r.Ports {
				if pp.Port == nil || (pp.Port.Type == intstr.Int && pp.Port.IntVal == 4222) || (pp.Port.Type == intstr.String && pp.Port.StrVal == "client") {
					on4222 = true
				}
			}
			if !on4222 {
				continue
			}
			if len(r.From) == 0 {
				p = append(p, "NetworkPolicy "+pol.Name+": a rule admits everyone to NATS 4222")
			}
			for _, peer := range r.From {
				ps, err := metav1SelectorAsSelector(derefSelector(peer.PodSelector))
				if peer.NamespaceSelector != nil || peer.IPBlock != nil || peer.PodSelector == nil || err != nil ||
					ps.Empty() || !labels.SelectorFromSet(payhook).Matches(labels.Set(peer.PodSelector.MatchLabels)) {
					p = append(p, "NetworkPolicy "+pol.Name+": NATS 4222 admits a peer other than payhook's pods")
				}
			}
		}
	}
	return p
}

func derefSelector(s *metav1.LabelSelector) metav1.LabelSelector {
	if s == nil {
		return metav1.LabelSelector{}
	}
	return *s
}

// TestComposeNATSUsers: compose runs NATS with deploy/nats/auth.conf and
// every password it reads, and each payhook service logs in as its own user.
func TestComposeNATSUsers(t *testing.T) {
	st := mustCompose(t)
	n := st.c.Services["nats"]
	conf := ""
	if i := slices.Index(n.Command, "-c"); i >= 0 && i+1 < len(n.Command) {
		conf = n.Command[i+1]
	}
	if host, ok := n.mount(conf); !ok || filepath.Clean(host) != filepath.Clean("./deploy/nats/auth.conf") {
		t.Errorf("nats: -c %q is not deploy/nats/auth.conf mounted", conf)
	}
	auth, err := os.ReadFile(authConfPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range natsEnvRE.FindAllStringSubmatch(string(auth), -1) {
		if _, ok := n.Environment[m[1]]; !ok {
			t.Errorf("nats: auth.conf reads $%s, which the service's environment does not set", m[1])
		}
	}
	for _, comp := range components {
		s := st.c.Services[comp]
		if u := s.Environment["PAYHOOK_NATS_USER"]; u != comp {
			t.Errorf("%s: PAYHOOK_NATS_USER %q, want %q", comp, u, comp)
		}
		want := "PAYHOOK_NATS_" + strings.ToUpper(comp) + "_PASSWORD"
		if p := s.Environment["PAYHOOK_NATS_PASSWORD"]; !strings.Contains(p, "${"+want) || !strings.Contains(n.Environment[want], "${"+want) {
			t.Errorf("%s: PAYHOOK_NATS_PASSWORD %q is not the nats server's %s", comp, p, want)
		}
	}
	if !strings.Contains(string(st.cfgRaw), "${PAYHOOK_NATS_USER}") || !strings.Contains(string(st.cfgRaw), "${PAYHOOK_NATS_PASSWORD}") {
		t.Error("deploy/compose/payhook.yaml does not log in to NATS")
	}
}
