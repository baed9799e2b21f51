package deploytest

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerStage is one FROM ... [AS name] stage and its instructions.
type dockerStage struct {
	From, Name string
	Lines      []string // instructions, continuation lines joined
}

func parseDockerfile(tb testing.TB, file string) []dockerStage {
	tb.Helper()
	f, err := os.Open(file)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var (
		stages []dockerStage
		cur    string
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur += s + " "
			continue
		}
		l, cur = cur+l, ""
		fields := strings.Fields(l)
		if strings.EqualFold(fields[0], "FROM") {
			st := dockerStage{From: fields[1]}
			if len(fields) >= 4 && strings.EqualFold(fields[2], "AS") {
				st.Name = fields[3]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			continue // ARG before FROM
		}
		stages[len(stages)-1].Lines = append(stages[len(stages)-1].Lines, l)
	}
	return stages
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "../../Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	var build *dockerStage
	for i := range stages {
		if strings.HasPrefix(stages[i].From, "golang:") {
			build = &stages[i]
		}
	}
	if build == nil {
		t.Fatal("no golang builder stage")
	}
	runs := strings.Join(build.Lines, "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/...", "go build"} {
		if !strings.Contains(runs, want) {
			t.Errorf("builder stage does not use %s", want)
		}
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.From, "gcr.io/distroless/static") && final.From != "scratch" {
		t.Errorf("final stage FROM %s, want distroless/static or scratch", final.From)
	}
	if final.From == "scratch" && !slices.ContainsFunc(final.Lines, func(l string) bool { return strings.Contains(l, "ca-certificates") }) {
		t.Error("scratch image without CA certificates: HTTPS to providers would fail")
	}
	user := ""
	copiesBuild := false
	for _, l := range final.Lines {
		f := strings.Fields(l)
		if strings.EqualFold(f[0], "USER") {
			user = f[1]
		}
		if strings.EqualFold(f[0], "COPY") && strings.Contains(l, "--from="+build.Name) {
			copiesBuild = true
		}
	}
	if !regexp.MustCompile(`^[1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(user) {
		t.Errorf("final stage USER %q, want a numeric non-root uid (runAsNonRoot needs it numeric)", user)
	}
	if !copiesBuild {
		t.Error("final stage does not copy the binaries from the builder")
	}
	// The Kubernetes pods run as the image's user.
	s := mustManifests(t)
	for _, comp := range components {
		d, ok := getDeployment(s, comp)
		if !ok {
			continue
		}
		if sc := d.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || user != "" && !strings.HasPrefix(user, itoa(*sc.RunAsUser)) {
			t.Errorf("Deployment %s runAsUser does not match the image's USER %s", d.Name, user)
		}
	}
}

func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var pats []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			pats = append(pats, l)
		}
	}
	for _, must := range []string{".git", ".env"} {
		if !slices.Contains(pats, must) {
			t.Errorf(".dockerignore does not exclude %s", must)
		}
	}
	for _, keep := range []string{"go.mod", "go.sum", "cmd", "internal", "pkg", "*.go", "**/*.go"} {
		if slices.Contains(pats, keep) {
			t.Errorf(".dockerignore excludes %s, which the build needs", keep)
		}
	}
}
