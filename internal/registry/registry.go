// Package registry is the one place that names every provider payhook
// links: one line per provider. Everything else asks the set for providers
// by role (providers.With, providers.Role), so adding a provider is its
// package under pkg/providers plus its line here.
package registry

import (
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/fantian"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
	"github.com/payhook/payhook/pkg/providers/stripe"
)

// All returns every provider, in a stable order. Each call builds fresh
// values (their HTTP clients included), so callers share nothing.
func All() *providers.Set {
	return providers.NewSet(
		fantian.New(),
		mpurse.New(),
		cashypro.New(),
		mrnpay.New(),
		jpglo.New(),
		stripe.New(),
	)
}

// Inbound returns every provider that sends callbacks, by name.
func Inbound() map[string]providers.Inbound { return providers.With[providers.Inbound](All()) }
