package vectorstest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/payhook/payhook/pkg/providers/internal/vectorstest"
)

// recorder keeps what a helper reports instead of failing the test.
type recorder struct {
	testing.TB
	errors, fatals []string
}

type fatal struct{}

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(f string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(f, args...))
}
func (r *recorder) Fatal(args ...any) {
	r.fatals = append(r.fatals, fmt.Sprint(args...))
	panic(fatal{})
}
func (r *recorder) Fatalf(f string, args ...any) { r.Fatal(fmt.Sprintf(f, args...)) }
func run(r *recorder, f func(tb testing.TB)) {
	defer func() {
		if p := recover(); p != nil && p != (fatal{}) {
			panic(p)
		}
	}()
	f(r)
}

type vec struct {
	Name   string         `json:"name"`
	Params map[string]any `json:"params"`
}

func TestSharedAndLocal(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	same := `{"p":[{"name":"a","params":{"n":10000000}}]}`
	tests := []struct {
		name          string
		local, shared string // file bodies; "" for no file
		wantShared    bool
		errors, fatal bool
	}{
		{name: "equal copies", local: same, shared: same, wantShared: true},
		{name: "no shared file", local: same},
		{name: "drifted copy", local: same, shared: `{"p":[{"name":"a","params":{"n":10000001}}]}`, wantShared: true, errors: true},
		{name: "no local file", shared: same, fatal: true},
		{name: "empty section", local: `{"q":[]}`, fatal: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vectorstest.LocalPath = filepath.Join(dir, fmt.Sprintf("none-l%d", i))
			vectorstest.SharedPath = filepath.Join(dir, fmt.Sprintf("none-s%d", i))
			if tt.local != "" {
				vectorstest.LocalPath = write(fmt.Sprintf("l%d.json", i), tt.local)
			}
			if tt.shared != "" {
				vectorstest.SharedPath = write(fmt.Sprintf("s%d.json", i), tt.shared)
			}
			r := &recorder{TB: t}
			var ok bool
			run(r, func(tb testing.TB) {
				local := vectorstest.Local[vec](tb, "p")
				if want := (map[string]any{"n": json.Number("10000000")}); !reflect.DeepEqual(local[0].Params, want) {
					t.Errorf("params %#v: numbers not kept as json.Number", local[0].Params)
				}
				_, ok = vectorstest.Shared[vec](tb, "p")
			})
			if (len(r.fatals) > 0) != tt.fatal || (len(r.errors) > 0) != tt.errors {
				t.Fatalf("fatals %q errors %q", r.fatals, r.errors)
			}
			if !tt.fatal && ok != tt.wantShared {
				t.Errorf("Shared ok = %v", ok)
			}
		})
	}
}

func TestReadCorpus(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, file string
		want       string
		fatal      bool
	}{
		{name: "bytes", file: "go test fuzz v1\n[]byte(\"a\\\"b\\x00\")\n", want: "a\"b\x00"},
		{name: "wrong header", file: "go test fuzz v2\n[]byte(\"a\")\n", fatal: true},
		{name: "string value", file: "go test fuzz v1\nstring(\"a\")\n", fatal: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, fmt.Sprint(i))
			if err := os.WriteFile(p, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			r := &recorder{TB: t}
			var got []byte
			run(r, func(tb testing.TB) { got = vectorstest.ReadCorpus(tb, p) })
			if (len(r.fatals) > 0) != tt.fatal || (!tt.fatal && string(got) != tt.want) {
				t.Errorf("got %q fatals %q", got, r.fatals)
			}
		})
	}
}
