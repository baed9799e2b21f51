package mrnpay_test

import (
	"testing"

	"github.com/payhook/payhook/pkg/providers/mrnpay"
	"github.com/payhook/payhook/pkg/providers/providertest"
)

func TestHostileMutations(t *testing.T) {
	providertest.Hostile(t, mrnpay.New(), 8)
}
