// Package registry maps provider names to their implementations, the one
// place that imports every provider package.
package registry

import (
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/fantian"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

// Inbound returns every provider that sends callbacks, by name.
func Inbound() map[string]providers.Inbound {
	m := map[string]providers.Inbound{}
	for _, p := range []providers.Inbound{jpglo.New(), mrnpay.New(), mpurse.New(), cashypro.New()} {
		m[p.Name()] = p
	}
	return m
}

// Queriers returns the outbound clients of every provider with a query
// endpoint (cashypro, jpglo, mrnpay), by name, for the reconciler. mpurse
// and fantian have none: their orders cannot be verified by polling.
func Queriers() map[string]providers.Querier {
	return map[string]providers.Querier{
		providers.Cashypro: cashypro.NewClient(nil),
		providers.Jpglo:    jpglo.NewClient(nil),
		providers.Mrnpay:   mrnpay.NewClient(nil),
	}
}

// Fantian returns fantian's UTR submission client and the test that tells,
// from its error, that fantian did not match the reference.
func Fantian() (*fantian.Client, func(error) bool) {
	return fantian.NewClient(nil), fantian.NotMatched
}
