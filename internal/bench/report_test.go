package bench

import (
	"strings"
	"testing"
)

func TestRoundsLine(t *testing.T) {
	line, ok := roundsLine([]float64{0.15, 0.11, 0.19, 0.13})
	if !ok || !strings.Contains(line, "4 rounds") || !strings.Contains(line, "0.15 0.11 0.19 0.13") || !strings.Contains(line, "0.14× median") {
		t.Fatalf("rounds line %q", line)
	}
	if line, _ := roundsLine([]float64{0.3, 0.1, 0.2}); !strings.Contains(line, "0.20× median") {
		t.Fatalf("odd count: %q", line)
	}
	if _, ok := roundsLine([]float64{0.2}); ok {
		t.Fatal("a single round got a rounds line")
	}
}

func TestSeriesLine(t *testing.T) {
	line := seriesLine("payhook / minimal max req/s", []float64{0.36, 0.45, 0.39}, "≥ 0.90× MISSED")
	for _, want := range []string{"payhook / minimal max req/s, 3 rounds", "0.36 0.45 0.39", "0.39× median", "≥ 0.90× MISSED"} {
		if !strings.Contains(line, want) {
			t.Errorf("series line %q lacks %q", line, want)
		}
	}
}
