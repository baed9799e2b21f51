package testenv_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/payhook/payhook/internal/testenv"
)

// TestLogBufferConcurrentWrites: writes from many goroutines all land, and
// String may be read meanwhile (run with -race to check the locking).
func TestLogBufferConcurrentWrites(t *testing.T) {
	var b testenv.LogBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("x\n"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "x\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
}
