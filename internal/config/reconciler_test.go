package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// The default schedule is part of the reconciler's contract (docs/reconciler.md):
// 1m+3m+10m+30m+1h+3h+6h+12h+24h ≈ 46.7 h, past cashypro's ~17 h and mpurse's ~2 h.
func TestDefaultSchedule(t *testing.T) {
	want := []time.Duration{time.Minute, 3 * time.Minute, 10 * time.Minute, 30 * time.Minute,
		time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}
	got := make([]time.Duration, len(DefaultSchedule))
	for i, d := range DefaultSchedule {
		got[i] = d.D()
	}
	if !slices.Equal(got, want) {
		t.Fatalf("DefaultSchedule = %v, want %v", got, want)
	}
	c, err := parseAll([]byte("nats: {url: nats://127.0.0.1:4222}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Reconciler.Schedule, DefaultSchedule) {
		t.Errorf("reconciler.schedule default = %v", c.Reconciler.Schedule)
	}
	c.Reconciler.Schedule[0] = Duration(time.Second)
	if DefaultSchedule[0] != Duration(time.Minute) {
		t.Error("a parsed config shares DefaultSchedule's array: changing one changed the default")
	}
	if c.Reconciler.RatePerSecond != 5 || c.Reconciler.RateBurst != 10 {
		t.Errorf("rate default %v/s burst %d, want 5/s burst 10", c.Reconciler.RatePerSecond, c.Reconciler.RateBurst)
	}
}

func TestReconcilerProviderOverrides(t *testing.T) {
	const base = "nats: {url: nats://127.0.0.1:4222}\nreconciler:\n  rate_per_second: 8\n"
	c, err := parseAll([]byte(base+`  providers:
    mrnpay: {schedule: [30s, 5m], rate_per_second: 0.5, rate_burst: 2}
    jpglo: {rate_burst: 20}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	m, j := c.Reconciler.Providers["mrnpay"], c.Reconciler.Providers["jpglo"]
	if !slices.Equal(m.Schedule, []Duration{Duration(30 * time.Second), Duration(5 * time.Minute)}) || m.RatePerSecond != 0.5 || m.RateBurst != 2 {
		t.Errorf("mrnpay override = %+v", m)
	}
	if len(j.Schedule) != 0 || j.RatePerSecond != 0 || j.RateBurst != 20 {
		t.Errorf("jpglo override = %+v (unset fields must stay zero: they inherit)", j)
	}

	cases := []struct{ name, yaml, want string }{
		{"unknown provider", "  providers: {paypal: {rate_burst: 1}}\n", "config: reconciler.providers.paypal: unknown provider"},
		{"negative provider rate", "  providers: {jpglo: {rate_per_second: -1}}\n", "config: reconciler.providers.jpglo.rate_per_second: must not be negative"},
		{"negative provider burst", "  providers: {cashypro: {rate_burst: -3}}\n", "config: reconciler.providers.cashypro.rate_burst: must not be negative"},
		{"zero delay in a provider schedule", "  providers: {mrnpay: {schedule: [1m, 0s]}}\n", "config: reconciler.providers.mrnpay.schedule[1]: must be positive"},
		{"negative global burst", "  rate_burst: -1\n", "config: reconciler.rate_burst: must not be negative"},
		{"misspelt key", "  providers: {jpglo: {rate: 3}}\n", "rate: unknown key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAll([]byte(base+tc.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
