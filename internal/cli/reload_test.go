package cli

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/testenv"
)

// TestReloadsOnSIGHUP: each SIGHUP loads the file again; a file that does
// not validate is logged and sends nothing, and the process lives on.
func TestReloadsOnSIGHUP(t *testing.T) {
	p := filepath.Join(t.TempDir(), "payhook.yaml")
	write := func(y string) {
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var logs testenv.LogBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := Reloads(ctx, p, func(string) (string, bool) { return "", false }, slog.New(slog.NewTextHandler(&logs, nil)))
	hup := func() {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	write("nats: {url: \"nats://127.0.0.1:1\"}\nlog: {level: debug}\n")
	hup()
	select {
	case c := <-ch:
		if c.Log.Level != "debug" {
			t.Fatalf("reloaded config: %+v", c.Log)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no config after SIGHUP")
	}

	write("nats: {url: \"nats://127.0.0.1:1\"}\nlog: {levle: debug}\n")
	hup()
	select {
	case c := <-ch:
		t.Fatalf("a bad file was sent: %+v", c)
	case <-time.After(time.Second):
	}
	if !strings.Contains(logs.String(), "config not reloaded") || !strings.Contains(logs.String(), "levle") {
		t.Errorf("log: %s", logs.String())
	}
}
