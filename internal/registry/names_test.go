package registry_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/payhook/payhook/internal/registry"
)

// legacy are the directories whose non-test code may name the providers
// that predate the kit. pkg/dedupe/dedupetest only uses two names as
// sample data for order keys.
var legacy = []string{"pkg/dedupe/dedupetest"}

// TestNoCodeNamesAProvider: outside its own package and the registry, no
// non-test code imports a provider package or spells a registered
// provider's name in a string literal: everything else finds providers by
// role. The legacy directories may name the five older providers, never a
// newer one.
func TestNoCodeNamesAProvider(t *testing.T) {
	root := moduleRoot(t)
	names := registry.All().Names()
	older := []string{"fantian", "mpurse", "cashypro", "mrnpay", "jpglo"} // the providers that predate the kit
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if d.Name() == "testdata" || d.Name() == ".git" || rel == "internal/registry" {
				return filepath.SkipDir
			}
			for _, n := range names {
				if rel == "pkg/providers/"+n {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		files++
		allowed := func(name string) bool {
			return slices.Contains(older, name) && slices.ContainsFunc(legacy, func(dir string) bool { return strings.HasPrefix(rel, dir+"/") })
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if name, ok := strings.CutPrefix(p, "github.com/payhook/payhook/pkg/providers/"); ok && slices.Contains(names, name) && !allowed(name) {
				t.Errorf("%s imports the provider package %s", rel, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, _ := strconv.Unquote(lit.Value)
			if slices.Contains(names, s) && !allowed(s) {
				t.Errorf("%s spells the provider name %q", rel, s)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("scanned only %d files: wrong root?", files)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}
