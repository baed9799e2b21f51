package config

import (
	"net"
	"net/url"
)

// Tracing configures OpenTelemetry tracing, off unless Endpoint is set.
// Spans go to an OTLP collector; the W3C traceparent of each event travels
// in its NATS message headers and on every webhook request.
//
// What the exporter needs beyond these keys (auth headers, a CA bundle,
// compression, timeout) comes from the standard OTEL_EXPORTER_OTLP_* and
// OTEL_EXPORTER_OTLP_TRACES_* environment variables, and resource
// attributes from OTEL_RESOURCE_ATTRIBUTES; an endpoint set only in the
// environment does not turn tracing on: the config file says whether a
// binary traces.
type Tracing struct {
	// Endpoint is the collector, host:port (gRPC 4317, HTTP 4318) or a
	// URL (http://collector:4318/v1/traces); empty: tracing off.
	Endpoint string `yaml:"endpoint"`
	// Protocol is grpc (default) or http (OTLP/HTTP protobuf).
	Protocol string `yaml:"protocol"`
	// Insecure sends spans without TLS (a collector on the same host or
	// in the same pod); an http:// URL endpoint implies it.
	Insecure bool `yaml:"insecure"`
	// SampleRatio is the share of new traces recorded, 0 to 1 (default
	// 1). A span whose parent arrived with the event (the dispatcher's
	// deliveries) follows the parent's decision, so a trace is whole or
	// absent.
	SampleRatio *float64 `yaml:"sample_ratio"`
}

// Enabled reports whether the binaries trace.
func (t Tracing) Enabled() bool { return t.Endpoint != "" }

// Ratio is SampleRatio or its default, 1.
func (t Tracing) Ratio() float64 {
	if t.SampleRatio == nil {
		return 1
	}
	return *t.SampleRatio
}

func (t Tracing) validate() error {
	switch t.Protocol {
	case "", "grpc", "http":
	default:
		return errf("tracing.protocol", "want grpc or http, got %q", t.Protocol)
	}
	if r := t.Ratio(); r < 0 || r > 1 {
		return errf("tracing.sample_ratio", "want a number from 0 to 1, got %v", r)
	}
	if t.Endpoint == "" {
		return nil
	}
	if u, err := url.Parse(t.Endpoint); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		if u.Host == "" {
			return errf("tracing.endpoint", "URL without a host: %q", t.Endpoint)
		}
		return nil
	}
	if h, p, err := net.SplitHostPort(t.Endpoint); err != nil || h == "" || p == "" {
		return errf("tracing.endpoint", "want host:port (otel-collector:4317) or an http(s):// URL, got %q", t.Endpoint)
	}
	return nil
}
