package jpglo_test

import (
	"testing"

	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/providertest"
)

func TestHostileMutations(t *testing.T) {
	providertest.Hostile(t, jpglo.New(), 8)
}
