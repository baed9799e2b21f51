package stripe

import (
	"encoding/json"
	"strings"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Stripe writes every amount as an integer count of the currency's smallest
// unit ("Zero-decimal currencies" in Stripe's documentation): 1234 USD is
// 12.34, 1234 JPY is 1234, 12340 KWD is 12.340.
var (
	zeroDecimal  = set("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF")
	threeDecimal = set("BHD JOD KWD OMR TND")
)

func set(codes string) map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(codes) {
		m[c] = true
	}
	return m
}

// Exponent is the number of fraction digits of currency (an upper-case ISO
// 4217 code) in Stripe's amounts: 0, 3, or 2 for every other currency.
func Exponent(currency string) int {
	switch {
	case zeroDecimal[currency]:
		return 0
	case threeDecimal[currency]:
		return 3
	}
	return 2
}

// currencyOf reads an object's "currency" (lower-case ISO code in Stripe's
// objects) as the upper-case code events carry.
func currencyOf(obj map[string]any) (string, error) {
	c, ok := obj["currency"].(string)
	if !ok {
		return "", providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "currency missing or not a string")
	}
	c = strings.ToUpper(c)
	if len(c) != 3 || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return "", providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "currency %q is not an ISO 4217 code", providers.Clip(c, 8))
	}
	return c, nil
}

// amountOf reads the integer minor-unit field name of obj as money in currency.
func amountOf(obj map[string]any, name, currency string) (events.Money, error) {
	n, ok := obj[name].(json.Number)
	if !ok {
		return events.Money{}, providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "%s missing or not a number", name)
	}
	m, err := events.MoneyFromMinor(n.String(), Exponent(currency), currency)
	if err != nil || strings.HasPrefix(m.Value, "-") {
		return events.Money{}, providers.Reject(providers.ReasonBadAmount, providers.ErrMalformed, "%s is not a non-negative integer of minor units", name)
	}
	return m, nil
}
