package mpurse_test

import (
	"testing"

	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/providertest"
)

func TestHostileMutations(t *testing.T) {
	providertest.Hostile(t, mpurse.New(), 8)
}
