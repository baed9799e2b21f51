package reconcile

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe/memdedupe"
	"github.com/payhook/payhook/pkg/providers"
)

// An account the reconciler must call without a base_url is a config error
// naming the key (exit 2), not days of failing polls.
func TestAccountWithoutBaseURLIsAConfigError(t *testing.T) {
	js, _ := jetstream.New(testenv.StartNATS(t).Connect(t))
	cfg := &config.Config{Accounts: []providers.Account{
		{ID: "mp-in", Provider: "mpurse", Keys: providers.Keys{"merchant_id": "m", "aes_key": "mpurseKey16bytes"}, Currency: "INR"},
		{ID: "glo-in", Provider: "jpglo", Keys: providers.Keys{"merchant_id": "1", "secret": "k"}, Currency: "INR"},
	}}
	_, err := New(Deps{Config: cfg, JS: js, Store: memdedupe.New(memdedupe.Config{}),
		Providers: registry.All()})
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Key != "accounts[1].base_url" {
		t.Fatalf("New = %v, want a config error on accounts[1].base_url", err)
	}
}

// reconcile.New turns the config's schedules and rate limits into each
// provider's Schedule and each account's token bucket: the default schedule
// where nothing is set, reconciler.schedule for every provider, and
// reconciler.providers.{name} over both.
func TestNewAppliesScheduleAndRateOverrides(t *testing.T) {
	js, _ := jetstream.New(testenv.StartNATS(t).Connect(t))
	parse := func(t *testing.T, yml string) *config.Config {
		t.Helper()
		cfg, err := config.Parse([]byte("nats: {url: nats://127.0.0.1:4222}\n"+yml+`
accounts:
  - {id: glo-in, provider: jpglo, merchant_id: "1", secret: k, base_url: "http://127.0.0.1:1", currency: INR}
  - {id: mrn-cn, provider: mrnpay, merchant_id: a, secret: k, base_url: "http://127.0.0.1:1", currency: CNY}
`), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	build := func(t *testing.T, cfg *config.Config) *Reconciler {
		t.Helper()
		r, err := New(Deps{Config: cfg, JS: js, Store: memdedupe.New(memdedupe.Config{}),
			Providers: registry.All()})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	durations := func(ds []config.Duration) []time.Duration {
		var out []time.Duration
		for _, d := range ds {
			out = append(out, d.D())
		}
		return out
	}
	def := durations(config.DefaultSchedule)

	t.Run("defaults", func(t *testing.T) {
		r := build(t, parse(t, ""))
		for _, p := range registry.All().Names() {
			if s := r.ScheduleFor(p); !slices.Equal(s.Delays, def) || s.Grace != 2*time.Minute {
				t.Errorf("%s: delays %v grace %v, want %v and 2m", p, s.Delays, s.Grace, def)
			}
		}
		for _, id := range []string{"glo-in", "mrn-cn"} {
			if l := r.lanes[id].limiter; l.Limit() != 5 || l.Burst() != 10 {
				t.Errorf("%s: bucket %v/s burst %d, want 5/s burst 10", id, l.Limit(), l.Burst())
			}
		}
	})
	t.Run("overrides", func(t *testing.T) {
		r := build(t, parse(t, `reconciler:
  schedule: [1m, 2m]
  retrigger_grace: 45s
  rate_per_second: 8
  rate_burst: 4
  providers:
    mrnpay: {schedule: [30s, 5m, 1h], rate_per_second: 0.5, rate_burst: 2}
    jpglo: {rate_burst: 20}
`))
		want := map[string][]time.Duration{
			"mrnpay": {30 * time.Second, 5 * time.Minute, time.Hour},
			"jpglo":  {time.Minute, 2 * time.Minute}, "cashypro": {time.Minute, 2 * time.Minute},
		}
		for p, w := range want {
			if s := r.ScheduleFor(p); !slices.Equal(s.Delays, w) || s.Grace != 45*time.Second {
				t.Errorf("%s: delays %v grace %v, want %v and 45s", p, s.Delays, s.Grace, w)
			}
		}
		if l := r.lanes["mrn-cn"].limiter; l.Limit() != 0.5 || l.Burst() != 2 {
			t.Errorf("mrnpay account: %v/s burst %d, want 0.5/s burst 2", l.Limit(), l.Burst())
		}
		// Only the burst is overridden for jpglo: the rate is the reconciler's.
		if l := r.lanes["glo-in"].limiter; l.Limit() != 8 || l.Burst() != 20 {
			t.Errorf("jpglo account: %v/s burst %d, want 8/s burst 20", l.Limit(), l.Burst())
		}
	})
}
