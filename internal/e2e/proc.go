package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one child process: a payhook binary or nats-server. Every start
// appends to the same log file, after a "=== start N ===" marker line, so a
// test that restarts a service still has the logs of every run.
type proc struct {
	name    string
	path    string
	args    []string
	env     []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	state  *os.ProcessState
	starts int
}

// start runs the child in its own process group, stdout and stderr appended
// to logPath. It does not wait for readiness.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.exitedLocked() {
		return fmt.Errorf("e2e: %s is already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	p.starts++
	fmt.Fprintf(logf, "=== start %d of %s at %s ===\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = p.env
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("e2e: start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.state = cmd, done, nil
	go func() {
		_ = cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.state = cmd.ProcessState
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func (p *proc) exitedLocked() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// running reports whether the child is alive.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.exitedLocked()
}

// pid is the running child's process id, 0 when none runs.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.exitedLocked() {
		return 0
	}
	return p.cmd.Process.Pid
}

// kill sends SIGKILL to the child's whole process group and waits for it.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
	<-done
}

// term sends SIGTERM and waits up to grace for the exit; past it the child
// is killed. It returns the exit code (-1 when killed by a signal) and
// whether the child exited on its own within grace.
func (p *proc) term(grace time.Duration) (code int, clean bool) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return 0, true
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		clean = true
	case <-time.After(grace):
		p.kill()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return -1, clean
	}
	return p.state.ExitCode(), clean
}

// exitCode is the last run's exit code, or -2 while running / never started.
func (p *proc) exitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return -2
	}
	return p.state.ExitCode()
}

// logs returns everything the child wrote, over every run.
func (p *proc) logs() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	return string(b)
}

// tail returns the last n bytes of the log, for failure messages.
func (p *proc) tail(n int) string {
	s := p.logs()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// waitReady polls url until it answers 200, failing early when the child exits.
func (p *proc) waitReady(ctx context.Context, url string) error {
	c := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		var last string
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, bytes.TrimSpace(b))
		} else {
			last = err.Error()
		}
		if !p.running() {
			return fmt.Errorf("e2e: %s exited (code %d) before %s answered 200; log:\n%s", p.name, p.exitCode(), url, p.tail(4000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("e2e: %s: %s not ready (%s): %w; log:\n%s", p.name, url, last, ctx.Err(), p.tail(4000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
