package metricscatalog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNoPromtool says promtool was not found; scripts/tools.sh installs it.
var ErrNoPromtool = errors.New("promtool not found on PATH, in /usr/bin or in $PAYHOOK_TOOLS/bin (~/.cache/payhook/tools/bin): run scripts/tools.sh, which installs it")

// PromtoolPath finds promtool where scripts/tools.sh puts it, after PATH and
// /usr/bin (Debian's prometheus package).
func PromtoolPath() (string, error) {
	if p, err := exec.LookPath("promtool"); err == nil {
		return p, nil
	}
	cands := []string{"/usr/bin/promtool"}
	if d := os.Getenv("PAYHOOK_TOOLS"); d != "" {
		cands = append(cands, filepath.Join(d, "bin", "promtool"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		cands = append(cands, filepath.Join(h, ".cache", "payhook", "tools", "bin", "promtool"))
	}
	for _, p := range cands {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrNoPromtool
}

// Promtool runs promtool with args and stdin; a non-zero exit is an error
// carrying promtool's output.
func Promtool(stdin []byte, args ...string) (string, error) {
	p, err := PromtoolPath()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(p, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}
