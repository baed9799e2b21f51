package stripe_test

import (
	"testing"

	"github.com/payhook/payhook/pkg/providers/providertest"
	"github.com/payhook/payhook/pkg/providers/stripe"
)

func TestHostileMutations(t *testing.T) {
	providertest.Hostile(t, stripe.New(), 8)
}
