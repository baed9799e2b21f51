package natsbus_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
)

// A PAYHOOK_RAW made by an older payhook (all of payhook.raw.>) gives up
// payhook.raw.*.rejected to PAYHOOK_RAW_REJECTED; the records it holds
// stay, and new records go to the stream their result belongs to.
func TestEnsureStreamsSplitsAnOldRawStream(t *testing.T) {
	ctx := context.Background()
	js, err := jetstream.New(testenv.StartNATS(t).Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: natsbus.StreamRaw, Subjects: []string{"payhook.raw.>"}, MaxBytes: 10 << 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "payhook.raw.jpglo.rejected", []byte(`{"verdict":"rejected"}`)); err != nil {
		t.Fatal(err)
	}
	cfg := config.NATS{RawMaxAge: config.Duration(time.Hour), RawMaxBytes: 8 << 20, RawRejectedMaxBytes: 2 << 20}
	if err := natsbus.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if err := natsbus.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if err := natsbus.CheckStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	for subject, want := range map[string]string{
		"payhook.raw.jpglo.rejected":    natsbus.StreamRawRejected,
		"payhook.raw.unknown.rejected":  natsbus.StreamRawRejected,
		"payhook.raw.jpglo.accepted":    natsbus.StreamRaw,
		"payhook.raw.jpglo.unavailable": natsbus.StreamRaw,
		"payhook.raw.rejected.accepted": natsbus.StreamRaw,
	} {
		ack, err := js.Publish(ctx, subject, []byte("x"))
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		if ack.Stream != want {
			t.Errorf("%s stored on %s, want %s", subject, ack.Stream, want)
		}
	}
	for name, limit := range map[string]int64{natsbus.StreamRaw: 8 << 20, natsbus.StreamRawRejected: 2 << 20} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.MaxBytes != limit {
			t.Errorf("%s max bytes %d, want %d", name, info.Config.MaxBytes, limit)
		}
		if name == natsbus.StreamRaw {
			if slices.Contains(info.Config.Subjects, "payhook.raw.>") {
				t.Errorf("PAYHOOK_RAW still takes payhook.raw.>: %v", info.Config.Subjects)
			}
			if info.State.FirstSeq != 1 {
				t.Errorf("the old record is gone: first seq %d", info.State.FirstSeq)
			}
		}
	}
}

// Attach waits only for the streams it is given: a dispatcher (which needs
// PAYHOOK_EVENTS and PAYHOOK_DLQ) starts on a NATS where an older ingress
// made no PAYHOOK_RAW_REJECTED, and CheckStreams with the same names is
// ready there, while the check of every stream is not.
func TestAttachWaitsOnlyForTheNamedStreams(t *testing.T) {
	ctx := context.Background()
	n := testenv.StartNATS(t)
	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range natsbus.StreamConfigs(config.NATS{Replicas: 1}) {
		if sc.Name == natsbus.StreamRawRejected {
			continue
		}
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nc, ajs, err := natsbus.Attach(actx, config.NATS{URL: n.URL}, "test", nil, natsbus.StreamEvents, natsbus.StreamDLQ)
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	defer nc.Close()
	if err := natsbus.CheckStreams(ctx, ajs, natsbus.StreamEvents, natsbus.StreamDLQ); err != nil {
		t.Fatalf("CheckStreams of the named streams: %v", err)
	}
	if err := natsbus.CheckStreams(ctx, ajs); err == nil || !strings.Contains(err.Error(), natsbus.StreamRawRejected) {
		t.Fatalf("CheckStreams of every stream = %v, want one naming %s", err, natsbus.StreamRawRejected)
	}
}
