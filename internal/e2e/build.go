package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binaries are the executables a Cluster runs, built once per test binary.
type Binaries struct {
	Dir        string
	Ingress    string
	Dispatcher string
	Reconciler string
	NATSServer string
}

// What Build builds: the three payhook services, and nats-server from the
// module payhook already depends on (no download, same version as the
// embedded server the unit tests use).
var buildPackages = []string{
	"github.com/payhook/payhook/cmd/ingress",
	"github.com/payhook/payhook/cmd/dispatcher",
	"github.com/payhook/payhook/cmd/reconciler",
	"github.com/nats-io/nats-server/v2",
}

var (
	binMu  sync.Mutex
	bins   *Binaries
	binErr error
)

// Build compiles the binaries into dir with one `go build` (the packages
// share the build cache; -s -w skips the symbol table and DWARF, which
// makes linking about four times faster and changes nothing the suite
// observes: panics still print symbolized stacks).
func Build(ctx context.Context, dir string) (*Binaries, error) {
	args := append([]string{"build", "-ldflags=-s -w", "-o", dir + string(os.PathSeparator)}, buildPackages...)
	cmd := exec.CommandContext(ctx, goTool(), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("e2e: go build: %v\n%s", err, out)
	}
	b := &Binaries{
		Dir:        dir,
		Ingress:    filepath.Join(dir, "ingress"),
		Dispatcher: filepath.Join(dir, "dispatcher"),
		Reconciler: filepath.Join(dir, "reconciler"),
		NATSServer: filepath.Join(dir, "nats-server"),
	}
	for _, p := range []string{b.Ingress, b.Dispatcher, b.Reconciler, b.NATSServer} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("e2e: go build did not produce %s: %w", p, err)
		}
	}
	return b, nil
}

// goTool is the go command of the toolchain running the tests ($GO wins).
func goTool() string {
	if v := os.Getenv("GO"); v != "" {
		return v
	}
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Main is the TestMain of a package that starts Clusters: it builds the
// binaries once into a temp dir, runs the tests and removes the dir. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }
//
// A build failure fails every test (each Start reports it) rather than
// hiding them.
func Main(m *testing.M) int {
	flag.Parse() // testing.Verbose needs parsed flags; m.Run would parse them too
	removeStale(os.TempDir(), binDirPrefix, time.Hour)
	dir, err := os.MkdirTemp("", binDirPrefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	start := time.Now()
	b, err := Build(ctx, dir)
	cancel()
	binMu.Lock()
	bins, binErr = b, err
	binMu.Unlock()
	if err == nil && testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built %d binaries in %s\n", len(buildPackages), time.Since(start).Round(time.Millisecond))
	}
	return m.Run()
}

// binDirPrefix names the temp dirs Main builds into.
const binDirPrefix = "payhook-e2e-bin-"

// removeStale deletes build dirs older than age: a run killed by its
// timeout (the test binary exits from a panic, skipping Main's cleanup)
// leaves ~80 MB behind. No run lasts an hour (go test -timeout is 15m).
func removeStale(tmp, prefix string, age time.Duration) {
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			_ = os.RemoveAll(filepath.Join(tmp, e.Name()))
		}
	}
}

// Built returns the binaries Main built; it fails tb when Main was not used
// or the build failed.
func Built(tb testing.TB) *Binaries {
	tb.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if binErr != nil {
		tb.Fatalf("%v", binErr)
	}
	if bins == nil {
		tb.Fatalf("e2e: binaries not built: the package's TestMain must call e2e.Main(m)")
	}
	return bins
}
