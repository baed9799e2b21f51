package config

import (
	"strings"
	"testing"
)

// TestTracing: off by default; on with an endpoint; every bad value is
// refused naming its key.
func TestTracing(t *testing.T) {
	vars := env(map[string]string{"ADMIN": strings.Repeat("t", 32), "JPGLO_KEY": "k"})
	c, err := Parse([]byte(good), vars)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tracing.Enabled() || c.Tracing.Ratio() != 1 {
		t.Errorf("default: %+v", c.Tracing)
	}
	for _, tc := range []struct {
		name, yaml, wantKey string
		ratio               float64
	}{
		{"grpc host:port", "tracing: {endpoint: otel-collector:4317, insecure: true}", "", 1},
		{"http URL", "tracing: {endpoint: \"http://otel:4318/v1/traces\", protocol: http, sample_ratio: 0.25}", "", 0.25},
		{"never sample", "tracing: {endpoint: \"otel:4317\", sample_ratio: 0}", "", 0},
		{"no port", "tracing: {endpoint: otel-collector}", "tracing.endpoint", 0},
		{"URL without host", "tracing: {endpoint: \"http:///v1/traces\"}", "tracing.endpoint", 0},
		{"protocol", "tracing: {endpoint: \"otel:4317\", protocol: thrift}", "tracing.protocol", 0},
		{"ratio over 1", "tracing: {endpoint: \"otel:4317\", sample_ratio: 1.5}", "tracing.sample_ratio", 0},
		{"unknown key", "tracing: {endpoint: \"otel:4317\", headers: {a: b}}", "tracing.headers", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(good+tc.yaml+"\n"), vars)
			if tc.wantKey != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantKey) {
					t.Fatalf("err %v, want one naming %s", err, tc.wantKey)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.Tracing.Enabled() || c.Tracing.Ratio() != tc.ratio {
				t.Errorf("%+v: enabled %v ratio %v", c.Tracing, c.Tracing.Enabled(), c.Tracing.Ratio())
			}
		})
	}
}
