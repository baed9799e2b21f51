package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// StreamMsg is one message read back from a stream.
type StreamMsg struct {
	Stream   string
	Sequence uint64
	Subject  string
	// MsgID is the Nats-Msg-Id header (the event id on PAYHOOK_EVENTS).
	MsgID  string
	Header nats.Header
	Data   []byte
	Time   time.Time
}

// ReadStream returns every message of stream whose subject matches one of
// subjects (all when none), oldest first, with an ordered consumer that is
// gone when it returns.
func (c *Cluster) ReadStream(ctx context.Context, stream string, subjects ...string) ([]StreamMsg, error) {
	st, err := c.js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("e2e: stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("e2e: stream %s info: %w", stream, err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	last := info.State.LastSeq
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: subjects})
	if err != nil {
		return nil, fmt.Errorf("e2e: stream %s consumer: %w", stream, err)
	}
	var out []StreamMsg
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			return out, fmt.Errorf("e2e: stream %s fetch: %w", stream, err)
		}
		n := 0
		done := false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return out, err
			}
			out = append(out, StreamMsg{Stream: stream, Sequence: md.Sequence.Stream, Subject: m.Subject(),
				MsgID: m.Headers().Get(jetstream.MsgIDHeader), Header: m.Headers(), Data: m.Data(), Time: md.Timestamp})
			if md.NumPending == 0 || md.Sequence.Stream >= last {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return out, fmt.Errorf("e2e: stream %s fetch: %w", stream, err)
		}
		if done || n == 0 {
			return out, nil
		}
	}
}

// Metrics are the Prometheus metric families a service exposes, by name.
type Metrics map[string]*dto.MetricFamily

// Metrics scrapes /metrics of service s.
func (c *Cluster) Metrics(s Service) (Metrics, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.URL(s)+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("e2e: %s /metrics: HTTP %d %s", s, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("e2e: %s /metrics: %w", s, err)
	}
	return Metrics(mfs), nil
}

// Sum adds the values of every series of metric name whose labels include
// the given name/value pairs: counter, gauge and untyped values, the sample
// count of histograms and summaries. A missing metric sums to 0.
func (m Metrics) Sum(name string, labels ...string) float64 {
	mf, ok := m[name]
	if !ok {
		return 0
	}
	var total float64
series:
	for _, s := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range s.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
					break
				}
			}
			if !found {
				continue series
			}
		}
		switch {
		case s.Counter != nil:
			total += s.GetCounter().GetValue()
		case s.Gauge != nil:
			total += s.GetGauge().GetValue()
		case s.Untyped != nil:
			total += s.GetUntyped().GetValue()
		case s.Histogram != nil:
			total += float64(s.GetHistogram().GetSampleCount())
		case s.Summary != nil:
			total += float64(s.GetSummary().GetSampleCount())
		}
	}
	return total
}
