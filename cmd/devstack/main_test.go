package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/devstack"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/providers"
)

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

// summaryRow is one provider's row of devstack's live summary.
type summaryRow struct {
	orders, callbacks, stored, duplicates, rejected, recovered, delivered int
	utr                                                                   string
}

// lastSummary reads the newest summary row of each provider in out. A row
// is "<provider> <orders> <callbacks> <stored> <duplicates absorbed>
// <rejected> <recovered by reconciler> <delivered> <UTRs matched>".
func lastSummary(out string) map[string]summaryRow {
	rows := map[string]summaryRow{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 9 || !isProvider(f[0]) {
			continue
		}
		var n [7]int
		ok := true
		for i := range n {
			v, err := strconv.Atoi(f[1+i])
			ok = ok && err == nil
			n[i] = v
		}
		if ok {
			rows[f[0]] = summaryRow{n[0], n[1], n[2], n[3], n[4], n[5], n[6], f[8]}
		}
	}
	return rows
}

func isProvider(s string) bool {
	for _, p := range registry.All().Names() {
		if p == s {
			return true
		}
	}
	return false
}

// allFlowing: every provider that calls back has callbacks stored and
// events delivered; one that takes UTRs instead (fantian) has UTRs matched.
func allFlowing(rows map[string]summaryRow) bool {
	provs := registry.All()
	for _, p := range provs.Names() {
		r, ok := rows[p]
		_, submits := providers.Role[providers.ReferenceSubmitter](provs, p)
		switch {
		case !ok || r.orders == 0:
			return false
		case submits:
			if n, err := strconv.Atoi(r.utr); err != nil || n == 0 {
				return false
			}
		case r.stored == 0 || r.delivered == 0:
			return false
		}
	}
	return true
}

// TestBinaryNoFlags builds the real devstack binary and runs it as a
// newcomer would (`make devstack`: no flags), with only the data dir moved
// to a temp dir, on a machine where 127.0.0.1:8080 is already taken: it must
// move ingress to a free port and print it, serve there, show traffic of all
// five providers in its summary, and exit 0 on Ctrl-C (SIGINT).
func TestBinaryNoFlags(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGINT")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "devstack")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goTool(), "build", "-ldflags=-s -w", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/devstack: %v\n%s", err, out)
	}

	// Occupy ingress's default port. If something else on the machine holds
	// it already, it is taken all the same.
	if ln, err := net.Listen("tcp", devstack.IngressAddr); err == nil {
		defer ln.Close()
	} else {
		t.Logf("%s already in use by another process: %v", devstack.IngressAddr, err)
	}

	data := filepath.Join(tmp, "data")
	work := filepath.Join(tmp, "work") // the process's working directory, where a default ./.devstack would go
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	out, stderr := &testenv.LogBuffer{}, &testenv.LogBuffer{}
	cmd := exec.Command(bin, "--data", data)
	cmd.Dir, cmd.Stdout, cmd.Stderr = work, out, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nstdout:\n%s\nstderr:\n%s", append(args, out.String(), stderr.String())...)
	}
	waitFor := func(what string, timeout time.Duration, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond(out.String()) {
			select {
			case err := <-exited:
				stopped = true
				fail("devstack exited (%v) before %s", err, what)
			default:
			}
			if time.Now().After(deadline) {
				fail("no %s after %s", what, timeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	waitFor("banner", 60*time.Second, func(s string) bool { return strings.Contains(s, "Traffic: ") })
	start := time.Now()
	s := out.String()
	ingress := regexp.MustCompile(`(?m)^  ingress +http://(\S+)`).FindStringSubmatch(s)
	sim := regexp.MustCompile(`(?m)^  provider simulator +http://(\S+)`).FindStringSubmatch(s)
	if ingress == nil || sim == nil {
		fail("banner lacks the ingress or simulator address")
	}
	if ingress[1] == devstack.IngressAddr {
		fail("ingress printed on %s, which the test holds", devstack.IngressAddr)
	}
	if !strings.Contains(s, "devstack: ingress: "+devstack.IngressAddr+" is in use, so "+ingress[1]+" instead") {
		fail("no note that ingress moved from %s to %s", devstack.IngressAddr, ingress[1])
	}
	// The printed addresses are the real ones.
	for _, u := range []string{"http://" + ingress[1] + "/healthz", "http://" + sim[1] + "/faults"} {
		resp, err := http.Get(u)
		if err != nil {
			fail("GET %s: %v", u, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fail("GET %s: %d", u, resp.StatusCode)
		}
	}

	// Summaries come every 5s; a newcomer should see every provider flowing within a minute.
	waitFor("summary with traffic from all five providers", time.Minute, func(s string) bool { return allFlowing(lastSummary(s)) })
	t.Logf("all five providers flowing %s after the banner: %+v", time.Since(start).Round(time.Second), lastSummary(out.String()))

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			fail("exit status %d after SIGINT, want 0", ee.ExitCode())
		} else if err != nil {
			fail("wait: %v", err)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGQUIT) // dump goroutines into stderr
		time.Sleep(time.Second)
		fail("devstack did not exit within 60s of SIGINT")
	}
	if !fileExists(filepath.Join(data, "jetstream")) {
		t.Errorf("no JetStream store under --data %s", data)
	}
	for _, dir := range []string{work, "."} {
		if fileExists(filepath.Join(dir, ".devstack")) {
			t.Errorf("a .devstack directory was left in %s", dir)
		}
	}
}

func TestRunFlags(t *testing.T) {
	env := func(args ...string) (cli.Env, *testenv.LogBuffer) {
		out := &testenv.LogBuffer{}
		return cli.Env{Args: args, LookupEnv: func(string) (string, bool) { return "", false }, Stdout: out, Stderr: io.Discard}, out
	}
	e, out := env("--version")
	if err := run(context.Background(), e); err != nil || !strings.HasPrefix(out.String(), "devstack ") {
		t.Fatalf("--version: %v %q", err, out.String())
	}
	e, _ = env("--nope")
	if code := cli.ExitCode(run(context.Background(), e), io.Discard); code != cli.ExitConfig {
		t.Errorf("unknown flag: exit %d, want %d", code, cli.ExitConfig)
	}
	// An address asked for explicitly must be free: no fallback.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	e, _ = env("--data", t.TempDir(), "--ingress-listen", taken.Addr().String())
	err = run(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "ingress address "+taken.Addr().String()) {
		t.Fatalf("--ingress-listen on a taken port: %v", err)
	}
	if code := cli.ExitCode(err, io.Discard); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
}
