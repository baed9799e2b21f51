package deploytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one decoded manifest document.
type Object struct {
	File string // base name of the file it came from
	Doc  int    // index of the document in the file
	metav1.TypeMeta
	Name string
	Obj  any // *appsv1.Deployment, *corev1.Service, *ServiceMonitor, ...
}

func (o Object) String() string { return fmt.Sprintf("%s#%d %s/%s", o.File, o.Doc, o.Kind, o.Name) }

// ServiceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor that
// payhook uses. Strict decoding into it rejects misspelled or unsupported
// fields (it is not in k8s.io/api).
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		JobLabel  string                   `json:"jobLabel,omitempty"`
		Endpoints []ServiceMonitorEndpoint `json:"endpoints"`
	} `json:"spec"`
}

// ServiceMonitorEndpoint is one scrape of a ServiceMonitor.
type ServiceMonitorEndpoint struct {
	Port          string `json:"port"`
	Path          string `json:"path"`
	Interval      string `json:"interval"`
	ScrapeTimeout string `json:"scrapeTimeout"`
}

// RedisFailover is the part of the spotahome redis-operator's
// databases.spotahome.com/v1 RedisFailover that payhook uses.
type RedisFailover struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Sentinel struct {
			Replicas  int32                       `json:"replicas"`
			Resources corev1.ResourceRequirements `json:"resources"`
		} `json:"sentinel"`
		Redis struct {
			Replicas     int32                       `json:"replicas"`
			Resources    corev1.ResourceRequirements `json:"resources"`
			CustomConfig []string                    `json:"customConfig"`
			Storage      struct {
				KeepAfterDeletion     bool                          `json:"keepAfterDeletion"`
				PersistentVolumeClaim *corev1.PersistentVolumeClaim `json:"persistentVolumeClaim"`
			} `json:"storage"`
		} `json:"redis"`
	} `json:"spec"`
}

// kinds maps apiVersion/kind to a constructor of the typed object.
var kinds = map[string]func() any{
	"v1/Namespace":                             func() any { return &corev1.Namespace{} },
	"v1/ConfigMap":                             func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                                func() any { return &corev1.Secret{} },
	"v1/Service":                               func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                       func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                      func() any { return &appsv1.StatefulSet{} },
	"autoscaling/v2/HorizontalPodAutoscaler":   func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":            func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":       func() any { return &networkingv1.NetworkPolicy{} },
	"networking.k8s.io/v1/Ingress":             func() any { return &networkingv1.Ingress{} },
	"monitoring.coreos.com/v1/ServiceMonitor":  func() any { return &ServiceMonitor{} },
	"databases.spotahome.com/v1/RedisFailover": func() any { return &RedisFailover{} },
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// DecodeManifests strict-decodes every document of one YAML file the way
// the API server's strict field validation does: YAML to JSON with
// duplicate keys rejected (sigs.k8s.io/yaml YAMLToJSONStrict), then
// sigs.k8s.io/json UnmarshalStrict into the type its apiVersion and kind
// name, which rejects unknown fields, fields whose case differs from the
// json tag (encoding/json would match `Type:` to `type`) and duplicate
// fields. Empty documents are skipped.
func DecodeManifests(file string, data []byte) ([]Object, error) {
	var out []Object
	for i, doc := range docSep.Split(string(data), -1) {
		j, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("%s#%d: %w", file, i, err)
		}
		if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			continue
		}
		// Case-sensitive, so `Kind: Service` names no kind.
		var tm metav1.TypeMeta
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(j, &tm); err != nil {
			return nil, fmt.Errorf("%s#%d: %w", file, i, err)
		}
		mk, ok := kinds[tm.APIVersion+"/"+tm.Kind]
		if !ok {
			return nil, fmt.Errorf("%s#%d: unsupported apiVersion/kind %s/%s", file, i, tm.APIVersion, tm.Kind)
		}
		obj := mk()
		strict, err := sigsjson.UnmarshalStrict(j, obj)
		if err == nil {
			err = errors.Join(strict...)
		}
		if err != nil {
			return nil, fmt.Errorf("%s#%d (%s): %w", file, i, tm.Kind, err)
		}
		name := ""
		if m, ok := obj.(metav1.Object); ok {
			name = m.GetName()
		}
		if name == "" {
			return nil, fmt.Errorf("%s#%d (%s): metadata.name is empty", file, i, tm.Kind)
		}
		out = append(out, Object{File: file, Doc: i, TypeMeta: tm, Name: name, Obj: obj})
	}
	return out, nil
}

// LoadDir decodes every *.yaml file in dir, in name order.
func LoadDir(dir string) ([]Object, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var all []Object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		objs, err := DecodeManifests(filepath.Base(f), b)
		if err != nil {
			return nil, err
		}
		all = append(all, objs...)
	}
	return all, nil
}

// Set is the decoded manifests, indexed.
type Set []Object

// Get returns the object of kind and name, typed.
func Get[T any](s Set, kind, name string) (T, bool) {
	var zero T
	for _, o := range s {
		if o.Kind == kind && o.Name == name {
			t, ok := o.Obj.(T)
			return t, ok
		}
	}
	return zero, false
}

// All returns every object of type T.
func All[T any](s Set) []T {
	var out []T
	for _, o := range s {
		if t, ok := o.Obj.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// ChecksumAnnotation is the pod-template annotation that carries the
// checksum of the config a pod reads: editing the config without it fails
// TestConfigChecksums, and changing it changes the pod template, which
// rolls the pods (kubectl apply) — no manual rollout restart.
const ChecksumAnnotation = "checksum/config"

// ConfigChecksum is "sha256:" and the hex SHA-256 over the named keys of a
// ConfigMap's data (every key when none are named), each key and its value
// followed by a zero byte, keys sorted.
func ConfigChecksum(data map[string]string, keys ...string) string {
	if len(keys) == 0 {
		for k := range data {
			keys = append(keys, k)
		}
	}
	keys = slices.Clone(keys)
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(data[k]))
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
