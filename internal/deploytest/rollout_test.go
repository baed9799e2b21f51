package deploytest

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// mountedKeys are the keys of ConfigMap name that a pod template mounts
// (every key when a volume mounts the whole map).
func mountedKeys(spec corev1.PodSpec, name string) (keys []string, mounted bool) {
	for _, v := range spec.Volumes {
		if v.ConfigMap == nil || v.ConfigMap.Name != name {
			continue
		}
		mounted = true
		if len(v.ConfigMap.Items) == 0 {
			return nil, true
		}
		for _, it := range v.ConfigMap.Items {
			keys = append(keys, it.Key)
		}
	}
	return keys, mounted
}

// checksumProblems checks that a pod template carries the checksum of the
// ConfigMap keys it mounts.
func checksumProblems(s Set, what string, tmpl corev1.PodTemplateSpec, configMap string) []string {
	cm, ok := Get[*corev1.ConfigMap](s, "ConfigMap", configMap)
	if !ok {
		return []string{what + ": no ConfigMap " + configMap}
	}
	keys, mounted := mountedKeys(tmpl.Spec, configMap)
	if !mounted {
		return []string{what + " does not mount ConfigMap " + configMap}
	}
	want := ConfigChecksum(cm.Data, keys...)
	if got := tmpl.Annotations[ChecksumAnnotation]; got != want {
		return []string{what + ": pod template annotation " + ChecksumAnnotation + " is " + strings.TrimSpace(got) +
			", the config it mounts has " + want + " (after editing the config, set the annotation to this value so the pods roll: PAYHOOK_UPDATE_CHECKSUMS=1 go test ./internal/deploytest -run TestConfigChecksums)"}
	}
	return nil
}

// updateChecksums, when PAYHOOK_UPDATE_CHECKSUMS=1, makes
// TestConfigChecksums write the checksums into the manifests instead of
// failing on them (after a config edit).
var updateChecksums = os.Getenv("PAYHOOK_UPDATE_CHECKSUMS") == "1"

var checksumLine = regexp.MustCompile(`(checksum/config: )"sha256:[0-9a-f]*"`)

// writeChecksum puts sum into the one checksum/config annotation of file.
func writeChecksum(t *testing.T, file, sum string) {
	t.Helper()
	path := k8sDir + "/" + file
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(checksumLine.FindAll(b, -1)); n != 1 {
		t.Fatalf("%s has %d checksum/config annotations, want 1", file, n)
	}
	b = checksumLine.ReplaceAll(b, []byte(`${1}"`+sum+`"`))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: checksum/config set to %s", file, sum)
}

// TestConfigChecksums: every payhook Deployment and the NATS StatefulSet
// carry the checksum of the config they mount, so a config change is a pod
// template change and rolls them; editing a service's config changes its
// checksum only (each mounts its own key). After editing a config, run it
// with PAYHOOK_UPDATE_CHECKSUMS=1 to write the new checksums.
func TestConfigChecksums(t *testing.T) {
	s := mustManifests(t)
	if updateChecksums {
		for _, comp := range components {
			d, _ := getDeployment(s, comp)
			cm, _ := Get[*corev1.ConfigMap](s, "ConfigMap", "payhook-config")
			keys, _ := mountedKeys(d.Spec.Template.Spec, "payhook-config")
			writeChecksum(t, comp+".yaml", ConfigChecksum(cm.Data, keys...))
		}
		cm, _ := Get[*corev1.ConfigMap](s, "ConfigMap", "nats-config")
		writeChecksum(t, "nats.yaml", ConfigChecksum(cm.Data))
		s = mustManifests(t)
	}
	for _, comp := range components {
		d, ok := getDeployment(s, comp)
		if !ok {
			t.Errorf("no Deployment payhook-%s", comp)
			continue
		}
		for _, p := range checksumProblems(s, "Deployment payhook-"+comp, d.Spec.Template, "payhook-config") {
			t.Error(p)
		}
	}
	sts, ok := Get[*appsv1.StatefulSet](s, "StatefulSet", "nats")
	if !ok {
		t.Fatal("no StatefulSet nats")
	}
	for _, p := range checksumProblems(s, "StatefulSet nats", sts.Spec.Template, "nats-config") {
		t.Error(p)
	}

	// The check can fail: an edited config without a new checksum is caught,
	// and only for the service whose key changed.
	cm, _ := Get[*corev1.ConfigMap](s, "ConfigMap", "payhook-config")
	orig := cm.Data["dispatcher.yaml"]
	cm.Data["dispatcher.yaml"] = orig + "\n# edited\n"
	defer func() { cm.Data["dispatcher.yaml"] = orig }()
	for _, comp := range components {
		d, _ := getDeployment(s, comp)
		p := checksumProblems(s, comp, d.Spec.Template, "payhook-config")
		if (comp == "dispatcher") != (len(p) > 0) {
			t.Errorf("after editing dispatcher.yaml, %s's checksum problems: %q", comp, p)
		}
	}
}

// natsModuleVersion is the nats-server version in go.mod: what the suite
// builds and tests against.
func natsModuleVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 v(\d+\.\d+\.\d+)\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod requires no github.com/nats-io/nats-server/v2")
	}
	return string(m[1])
}

// TestNATSVersionIsTheTestedOne: the NATS image of Kubernetes and compose
// is the nats-server version the suites run (go.mod), not an older line.
func TestNATSVersionIsTheTestedOne(t *testing.T) {
	want := "nats:" + natsModuleVersion(t) + "-alpine"
	sts, ok := Get[*appsv1.StatefulSet](mustManifests(t), "StatefulSet", "nats")
	if !ok {
		t.Fatal("no StatefulSet nats")
	}
	for _, c := range sts.Spec.Template.Spec.Containers {
		if c.Name == "nats" && c.Image != want {
			t.Errorf("deploy/k8s/nats.yaml runs %s, want %s (go.mod's nats-server)", c.Image, want)
		}
	}
	for _, c := range sts.Spec.Template.Spec.InitContainers {
		if strings.HasPrefix(c.Image, "nats:") && c.Image != want {
			t.Errorf("deploy/k8s/nats.yaml init container runs %s, want %s", c.Image, want)
		}
	}
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	images := regexp.MustCompile(`(?m)^\s*image:\s*"?(nats:[^\s"]+)`).FindAllSubmatch(b, -1)
	if len(images) == 0 {
		t.Fatal("docker-compose.yml runs no nats image")
	}
	for _, m := range images {
		if string(m[1]) != want {
			t.Errorf("docker-compose.yml runs %s, want %s (go.mod's nats-server)", m[1], want)
		}
	}
}

// TestNATSPlacement: the three NATS servers never share a node (hard
// anti-affinity) and spread over zones (at most one more in any zone than
// in another, enforced), so losing a node or a zone of three leaves a
// quorum of the R3 streams.
func TestNATSPlacement(t *testing.T) {
	sts, ok := Get[*appsv1.StatefulSet](mustManifests(t), "StatefulSet", "nats")
	if !ok {
		t.Fatal("no StatefulSet nats")
	}
	for _, p := range natsPlacementProblems(sts) {
		t.Error(p)
	}
	// The check can fail.
	soft := sts.DeepCopy()
	soft.Spec.Template.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution = nil
	soft.Spec.Template.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution = nil
	soft.Spec.Template.Spec.TopologySpreadConstraints = nil
	if p := natsPlacementProblems(soft); len(p) != 2 {
		t.Errorf("without anti-affinity and spread: problems %q, want 2", p)
	}
}

func natsPlacementProblems(sts *appsv1.StatefulSet) []string {
	var p []string
	spec := sts.Spec.Template.Spec
	hard := false
	if a := spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		hard = slices.ContainsFunc(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, func(t corev1.PodAffinityTerm) bool {
			return t.TopologyKey == "kubernetes.io/hostname" && t.LabelSelector != nil &&
				t.LabelSelector.MatchLabels["app.kubernetes.io/name"] == sts.Spec.Template.Labels["app.kubernetes.io/name"]
		})
	}
	if !hard {
		p = append(p, "nats: no required pod anti-affinity on kubernetes.io/hostname")
	}
	zone := slices.ContainsFunc(spec.TopologySpreadConstraints, func(c corev1.TopologySpreadConstraint) bool {
		return c.TopologyKey == "topology.kubernetes.io/zone" && c.MaxSkew == 1 &&
			c.WhenUnsatisfiable == corev1.DoNotSchedule && c.LabelSelector != nil &&
			c.LabelSelector.MatchLabels["app.kubernetes.io/name"] == sts.Spec.Template.Labels["app.kubernetes.io/name"]
	})
	if !zone {
		p = append(p, "nats: no topology spread over topology.kubernetes.io/zone with maxSkew 1 and DoNotSchedule")
	}
	return p
}
