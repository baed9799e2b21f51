package cashypro_test

import (
	"testing"

	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/providertest"
)

func TestHostileMutations(t *testing.T) {
	providertest.Hostile(t, cashypro.New(), 8)
}
