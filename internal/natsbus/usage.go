package natsbus

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// StreamUsage exports how full payhook's streams are, from JetStream's
// stream info: payhook_stream_bytes{stream} and, for a stream with a byte
// limit, payhook_stream_max_bytes{stream}. The alerts compare the two (80 %
// of PAYHOOK_RAW or PAYHOOK_RAW_REJECTED: the oldest records are about to be
// discarded, or already are).
type StreamUsage struct {
	js       jetstream.JetStream
	streams  []string
	bytes    *prometheus.GaugeVec
	maxBytes *prometheus.GaugeVec
	log      *slog.Logger
}

// NewStreamUsage registers the gauges on reg for streams (default Streams).
func NewStreamUsage(js jetstream.JetStream, reg prometheus.Registerer, log *slog.Logger, streams ...string) (*StreamUsage, error) {
	if len(streams) == 0 {
		streams = Streams
	}
	if log == nil {
		log = slog.Default()
	}
	u := &StreamUsage{
		js: js, streams: streams, log: log,
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payhook_stream_bytes",
			Help: "Bytes stored in a payhook JetStream stream, as of the last poll.",
		}, []string{"stream"}),
		maxBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payhook_stream_max_bytes",
			Help: "Byte limit of a payhook JetStream stream (only streams that have one); past it the oldest messages are discarded.",
		}, []string{"stream"}),
	}
	for _, c := range []prometheus.Collector{u.bytes, u.maxBytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// Poll reads every stream's info once and sets the gauges. A stream that
// cannot be read keeps its last values (readyz reports NATS trouble); the
// first error is returned.
func (u *StreamUsage) Poll(ctx context.Context) error {
	var first error
	for _, name := range u.streams {
		st, err := u.js.Stream(ctx, name)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = st.Info(ctx)
		}
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		u.bytes.WithLabelValues(name).Set(float64(info.State.Bytes))
		if info.Config.MaxBytes > 0 {
			u.maxBytes.WithLabelValues(name).Set(float64(info.Config.MaxBytes))
		} else {
			u.maxBytes.DeleteLabelValues(name)
		}
	}
	return first
}

// Run polls every interval until ctx ends. A stream info costs NATS one
// request per stream: at 15 s that is 20 requests a minute per replica.
func (u *StreamUsage) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, every)
		if err := u.Poll(pctx); err != nil && ctx.Err() == nil {
			u.log.Debug("stream usage not read", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
