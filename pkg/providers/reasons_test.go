package providers_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const (
	reasonsSource = "reasons.go"
	reasonsDoc    = "../../docs/operations.md"
	reasonsBegin  = "<!-- reasons:begin -->\n"
	reasonsEnd    = "<!-- reasons:end -->\n"
)

// reasonDoc is one Reason constant as reasons.go declares it.
type reasonDoc struct {
	name, value, status, meaning string
}

// docRE is the shape of every Reason constant's comment: its name, the
// HTTP status in parentheses, then what it means.
var docRE = regexp.MustCompile(`^(Reason\w+) \(([^)]+)\): (.+)$`)

// parseReasons reads the Reason constants of reasons.go with their comments.
func parseReasons(t *testing.T) []reasonDoc {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), reasonsSource, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var out []reasonDoc
	seen := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" || len(vs.Names) != 1 || len(vs.Values) != 1 {
				t.Errorf("%v: declare each reason alone, as `ReasonX Reason = \"x\"`", vs.Names)
				continue
			}
			name := vs.Names[0].Name
			lit, ok := vs.Values[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: the value must be a string literal", name)
				continue
			}
			value, _ := strconv.Unquote(lit.Value)
			if !regexp.MustCompile(`^[a-z][a-z_]*$`).MatchString(value) {
				t.Errorf("%s = %q: a reason is lower_snake_case", name, value)
			}
			if other, dup := seen[value]; dup {
				t.Errorf("%s and %s are both %q", name, other, value)
			}
			seen[value] = name
			text := ""
			if vs.Doc != nil {
				text = strings.Join(strings.Fields(vs.Doc.Text()), " ")
			}
			m := docRE.FindStringSubmatch(text)
			if m == nil || m[1] != name {
				t.Errorf("%s: its comment must read \"%s (status): meaning\", got %q", name, name, text)
				continue
			}
			out = append(out, reasonDoc{name: name, value: value, status: m[2], meaning: m[3]})
		}
	}
	if len(out) == 0 {
		t.Fatal("no Reason constants in reasons.go")
	}
	return out
}

// reasonsTable renders the table docs/operations.md keeps between its markers.
func reasonsTable(rs []reasonDoc) string {
	var b strings.Builder
	b.WriteString("| reason | status | meaning |\n|---|---|---|\n")
	for _, r := range rs {
		b.WriteString("| `" + r.value + "` | " + r.status + " | " + strings.ReplaceAll(r.meaning, "|", `\|`) + " |\n")
	}
	return b.String()
}

// TestReasonsDocumented holds the reasons table of docs/operations.md to the
// Reason constants and their comments. PAYHOOK_UPDATE_DOCS=1 rewrites it.
func TestReasonsDocumented(t *testing.T) {
	want := reasonsTable(parseReasons(t))
	doc, err := os.ReadFile(reasonsDoc)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(doc, []byte(reasonsBegin)), bytes.Index(doc, []byte(reasonsEnd))
	if i < 0 || j < i {
		t.Fatalf("%s: no %q ... %q markers", reasonsDoc, strings.TrimSpace(reasonsBegin), strings.TrimSpace(reasonsEnd))
	}
	got := string(doc[i+len(reasonsBegin) : j])
	if got == want {
		return
	}
	if os.Getenv("PAYHOOK_UPDATE_DOCS") == "1" {
		out := append(append(append([]byte{}, doc[:i+len(reasonsBegin)]...), want...), doc[j:]...)
		if err := os.WriteFile(reasonsDoc, out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the reasons table of %s", reasonsDoc)
		return
	}
	t.Errorf("%s: the reasons table is not what reasons.go declares; run PAYHOOK_UPDATE_DOCS=1 go test ./pkg/providers -run TestReasonsDocumented\ngot:\n%swant:\n%s", reasonsDoc, got, want)
}

// TestReasonsNamed fails when production code rejects with a string
// literal instead of a Reason constant, so that every reason on the wire
// is one reasons.go declares and documents.
func TestReasonsNamed(t *testing.T) {
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "vendor" || (strings.HasPrefix(n, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if callee(n.Fun) == "Reject" && len(n.Args) > 0 && isString(n.Args[0]) {
					t.Errorf("%s: Reject with a literal reason; use a providers.Reason constant", fset.Position(n.Pos()))
				}
			case *ast.CompositeLit:
				if callee(n.Type) != "RejectError" {
					return true
				}
				for _, e := range n.Elts {
					if kv, ok := e.(*ast.KeyValueExpr); ok && callee(kv.Key) == "Reason" && isString(kv.Value) {
						t.Errorf("%s: RejectError with a literal reason; use a providers.Reason constant", fset.Position(n.Pos()))
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// callee is the last name of a (possibly qualified) identifier.
func callee(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

func isString(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && lit.Kind == token.STRING
}
