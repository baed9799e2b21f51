// Package metricscatalog reads the metrics catalog in the README (the table
// under "## Metrics": metric, type, labels, exposed by, meaning) so tests can
// hold the binaries' /metrics, the dashboard and the alerts to it.
package metricscatalog

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Metric is one row of the catalog.
type Metric struct {
	Name      string   // payhook_...
	Type      string   // counter | gauge | histogram
	Labels    []string // label names, in the order written
	ExposedBy []string // binaries: ingress, dispatcher, reconciler
	Meaning   string
}

// Catalog is the parsed table, in README order.
type Catalog []Metric

// Types a catalog row may declare.
var Types = []string{"counter", "gauge", "histogram"}

// Binaries a catalog row may name in "exposed by".
var Binaries = []string{"ingress", "dispatcher", "reconciler"}

var (
	nameRE  = regexp.MustCompile(`^payhook_[a-z_]+$`)
	labelRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
)

// Load reads the README at path and parses its catalog.
func Load(path string) (Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse finds the "## Metrics" section in markdown and parses the first
// table in it. Every row must be well formed; names must be unique.
func Parse(markdown []byte) (Catalog, error) {
	sc := bufio.NewScanner(bytes.NewReader(markdown))
	var (
		inSection, inTable, sawHeader bool
		cat                           Catalog
		seen                          = map[string]bool{}
		lineNo                        int
	)
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "## ") {
			if inSection {
				break
			}
			inSection = line == "## Metrics"
			continue
		}
		if !inSection {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break // the table ended
			}
			continue
		}
		inTable = true
		cells := splitRow(line)
		if !sawHeader {
			want := []string{"metric", "type", "labels", "exposed by", "meaning"}
			if !slices.Equal(cells, want) {
				return nil, fmt.Errorf("line %d: catalog header is %q, want %q", lineNo, cells, want)
			}
			sawHeader = true
			continue
		}
		if strings.Trim(strings.Join(cells, ""), "-: ") == "" {
			continue // the |---|---| separator
		}
		m, err := parseRow(cells)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if seen[m.Name] {
			return nil, fmt.Errorf("line %d: %s listed twice", lineNo, m.Name)
		}
		seen[m.Name] = true
		cat = append(cat, m)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !inTable || len(cat) == 0 {
		return nil, fmt.Errorf("no metrics table under \"## Metrics\"")
	}
	return cat, nil
}

func splitRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	parts := strings.Split(line, "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func list(cell string) []string {
	var out []string
	for _, f := range strings.Split(cell, ",") {
		f = strings.Trim(strings.TrimSpace(f), "`")
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseRow(cells []string) (Metric, error) {
	if len(cells) != 5 {
		return Metric{}, fmt.Errorf("want 5 cells, got %d", len(cells))
	}
	m := Metric{
		Name:      strings.Trim(cells[0], "`"),
		Type:      cells[1],
		Labels:    list(cells[2]),
		ExposedBy: list(cells[3]),
		Meaning:   cells[4],
	}
	if !nameRE.MatchString(m.Name) {
		return m, fmt.Errorf("metric name %q does not match %s", m.Name, nameRE)
	}
	if !slices.Contains(Types, m.Type) {
		return m, fmt.Errorf("%s: type %q, want one of %v", m.Name, m.Type, Types)
	}
	for _, l := range m.Labels {
		if !labelRE.MatchString(l) {
			return m, fmt.Errorf("%s: bad label name %q", m.Name, l)
		}
	}
	if len(m.ExposedBy) == 0 {
		return m, fmt.Errorf("%s: no binary in \"exposed by\"", m.Name)
	}
	for _, b := range m.ExposedBy {
		if !slices.Contains(Binaries, b) {
			return m, fmt.Errorf("%s: unknown binary %q, want one of %v", m.Name, b, Binaries)
		}
	}
	if m.Meaning == "" {
		return m, fmt.Errorf("%s: meaning is empty", m.Name)
	}
	return m, nil
}

// Lookup returns the metric named name.
func (c Catalog) Lookup(name string) (Metric, bool) {
	for _, m := range c {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// Names returns every metric name.
func (c Catalog) Names() []string {
	out := make([]string, len(c))
	for i, m := range c {
		out[i] = m.Name
	}
	return out
}

// For returns the metrics the binary exposes.
func (c Catalog) For(binary string) Catalog {
	var out Catalog
	for _, m := range c {
		if slices.Contains(m.ExposedBy, binary) {
			out = append(out, m)
		}
	}
	return out
}

// SeriesNames returns the names a metric appears under in the text format:
// a histogram's _bucket, _sum and _count besides its own name.
func (m Metric) SeriesNames() []string {
	if m.Type == "histogram" {
		return []string{m.Name + "_bucket", m.Name + "_sum", m.Name + "_count"}
	}
	return []string{m.Name}
}

// ForbiddenLabels are label names that would make a series per order, event,
// amount or endpoint: unbounded cardinality, and payloads in metrics.
var ForbiddenLabels = []string{
	"order", "order_id", "merchant_order_id", "provider_order_id", "amount", "url",
	"event_id", "id", "reference", "utr", "ip", "remote_addr",
}

// metricRefRE finds payhook metric names in PromQL.
var metricRefRE = regexp.MustCompile(`payhook_[a-z_]+`)

// Referenced returns the payhook metric names a PromQL expression uses, with
// histogram suffixes (_bucket, _sum, _count) stripped.
func Referenced(expr string) []string {
	var out []string
	for _, n := range metricRefRE.FindAllString(expr, -1) {
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if s, ok := strings.CutSuffix(n, suf); ok {
				n = s
				break
			}
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
