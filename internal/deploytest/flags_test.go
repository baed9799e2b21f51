package deploytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The payhook binaries, built once per test binary by mustFlagChecker into
// binDir, which TestMain removes.
var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// flagChecker checks a container's argv against the flag set of the real
// binary it names. Each binary parses its flags with internal/cli (the
// standard flag package, ContinueOnError): an undefined flag or a bad value
// makes Parse fail before --version is acted on, wherever --version is in
// argv, and the binary exits 2 naming the flag; only a clean parse prints
// "<name> <version>" and exits 0. So running `argv[0] argv[1:]... --version`
// accepts exactly the argv the binary would accept, without a config, NATS
// or Redis. A stray positional argument ends flag parsing (and a last flag
// without its value takes "--version" as its value), so --version is never
// seen and the binary goes on to load its config: that is reported as well
// (the services ignore positional arguments, which would hide a typo such
// as `- config`).
type flagChecker struct{ dir string }

// mustFlagChecker builds every known binary (cmd/*) once.
func mustFlagChecker(tb testing.TB) *flagChecker {
	tb.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "payhook-deploytest-bin-")
		if binErr != nil {
			return
		}
		args := []string{"build", "-ldflags=-s -w", "-o", binDir + string(os.PathSeparator)}
		for _, b := range knownBinaries {
			args = append(args, "github.com/payhook/payhook/cmd/"+b)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, goTool(), args...).CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		tb.Fatal(binErr)
	}
	return &flagChecker{dir: binDir}
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

// check runs argv[0] (one of knownBinaries) with argv[1:] and --version, in
// an empty environment (no PAYHOOK_CONFIG) and the build dir, and returns why the binary
// refuses argv, or nil.
func (fc *flagChecker) check(argv []string) error {
	if len(argv) == 0 || !slices.Contains(knownBinaries, argv[0]) {
		return fmt.Errorf("%q does not run a payhook binary (%v)", argv, knownBinaries)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(fc.dir, argv[0]), append(slices.Clone(argv[1:]), "--version")...)
	cmd.Env = []string{}
	cmd.Dir = fc.dir // devstack would put its data dir here if argv got past --version
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return fmt.Errorf("run %s: %v", argv[0], err)
	}
	code := cmd.ProcessState.ExitCode()
	if code == 0 && strings.HasPrefix(stdout.String(), argv[0]+" ") {
		return nil
	}
	last := lastLine(stderr.String())
	if code == 2 && (strings.HasPrefix(last, "flag provided but not defined") || strings.HasPrefix(last, "invalid value") ||
		strings.HasPrefix(last, "bad flag syntax")) {
		return fmt.Errorf("%s rejects its arguments %q: %s", argv[0], argv[1:], last)
	}
	return fmt.Errorf("%s %q: flag parsing did not reach a trailing --version (a stray positional argument, or a last flag without its value?): exit %d, %q",
		argv[0], argv[1:], code, last)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestFlagChecker shows the check accepts each binary's real flags and
// catches what a typo in a manifest would be.
func TestFlagChecker(t *testing.T) {
	fc := mustFlagChecker(t)
	good := [][]string{
		{"ingress", "--config", "/etc/payhook/payhook.yaml"},
		{"dispatcher", "--config=/etc/payhook/payhook.yaml"},
		{"reconciler", "-config", "/etc/payhook/payhook.yaml"},
		{"providersim", "--config", "/c.yaml", "--listen", "0.0.0.0:8090", "--ingress", "http://ingress:8080", "--rate", "1", "--timescale", "0.01", "--seed", "7"},
		{"dispatcher", "dlq", "replay", "--subscriber", "ledger", "--event-id", "x", "--config", "/c.yaml"},
		{"devstack"},
	}
	for _, argv := range good {
		if err := fc.check(argv); err != nil {
			t.Errorf("%q: %v", argv, err)
		}
	}
	bad := map[string]struct {
		argv []string
		want string
	}{
		"typo":                {[]string{"providersim", "--config", "/c.yaml", "--rat", "1"}, "flag provided but not defined: -rat"},
		"another's flag":      {[]string{"ingress", "--config", "/c.yaml", "--rate", "1"}, "flag provided but not defined: -rate"},
		"bad value":           {[]string{"providersim", "--config", "/c.yaml", "--rate", "fast"}, `invalid value "fast" for flag -rate`},
		"missing value":       {[]string{"reconciler", "--config"}, `did not reach a trailing --version`},
		"bad syntax":          {[]string{"reconciler", "---config", "/c.yaml"}, "bad flag syntax: ---config"},
		"stray argument":      {[]string{"ingress", "serve", "--config", "/c.yaml"}, "did not reach a trailing --version"},
		"flag after argument": {[]string{"dispatcher", "--config", "/c.yaml", "extra"}, "did not reach a trailing --version"},
		"unknown binary":      {[]string{"reconcile", "--config", "/c.yaml"}, "does not run a payhook binary"},
	}
	for name, c := range bad {
		t.Run(name, func(t *testing.T) {
			err := fc.check(c.argv)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%q: %v, want an error containing %q", c.argv, err, c.want)
			}
		})
	}
}
