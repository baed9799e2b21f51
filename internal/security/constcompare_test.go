package security_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// secretWords are identifier words that name a secret, a signature or a
// credential. A comparison whose operand mentions one of them must be
// constant time (subtle.ConstantTimeCompare, hmac.Equal, md5sign.Equal)
// unless the other operand is a constant (an emptiness check, a field name).
var secretWords = map[string]bool{
	"sign": true, "signature": true, "sig": true, "secret": true, "secrets": true, "token": true,
	"hmac": true, "mac": true, "digest": true, "password": true, "passwd": true, "apikey": true,
	"authorization": true, "bearer": true, "aeskey": true,
}

// variableTimeCalls compare their arguments in time that depends on where they first differ.
var variableTimeCalls = map[string]bool{
	"bytes.Equal": true, "bytes.Compare": true, "strings.EqualFold": true, "strings.Compare": true,
	"reflect.DeepEqual": true, "slices.Equal": true, "strings.HasPrefix": true, "bytes.HasPrefix": true,
}

// reviewed are comparisons the scan flags that were read and found not to
// compare a secret: file (relative to the module root) + the expression.
var reviewed = map[string]string{
	"pkg/providers/fantian/fantian.go: ae.Code == CodeBadSignature": "fantian's reply error code compared with the constant \"0004\" (验签错误); no secret involved",
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

// words splits an identifier into lower-case words: wantSign → want, sign;
// AES_KEY → aes, key; aesKey → aes, key (and the joined aeskey).
func words(id string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(id)
	for i, r := range rs {
		switch {
		case r == '_' || r == '-':
			flush()
		case unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
	}
	flush()
	for i, n := 0, len(out); i+1 < n; i++ {
		out = append(out, out[i]+out[i+1])
	}
	return out
}

// secretish reports whether e names a secret: an identifier, a selector, a
// map key ("sign" in f["sign"]) or an account key (acct.Key("secret")) with
// a secret word.
func secretish(e ast.Expr) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.CallExpr:
			if id, ok := x.Fun.(*ast.Ident); ok && (id.Name == "len" || id.Name == "cap") {
				return false
			}
			if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Key" && len(x.Args) == 1 {
				if lit, ok := x.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						for _, w := range words(s) {
							found = found || secretWords[w]
						}
					}
				}
			}
		case *ast.Ident:
			for _, w := range words(x.Name) {
				found = found || secretWords[w]
			}
		case *ast.IndexExpr:
			if lit, ok := x.Index.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					for _, w := range words(s) {
						found = found || secretWords[w]
					}
				}
			}
		}
		return !found
	})
	return found
}

// constant reports whether e is a literal, nil, or a len() — the operand of
// an emptiness or shape check, which leaks nothing about a secret.
func constant(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return x.Name == "nil" || x.Name == "true" || x.Name == "false"
	case *ast.CallExpr:
		if id, ok := x.Fun.(*ast.Ident); ok && (id.Name == "len" || id.Name == "cap") {
			return true
		}
	case *ast.ParenExpr:
		return constant(x.X)
	}
	return false
}

// TestSecretsComparedInConstantTime scans every non-test Go file in the
// module for == / != / bytes.Equal / strings.EqualFold (and other
// early-exit comparisons) whose operand names a signature, secret or token
// while the other operand is not a constant. Each such comparison leaks, by
// its timing, how many leading bytes of a forged signature were right.
func TestSecretsComparedInConstantTime(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	files, constantTime := 0, 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "vendor", ".git", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		rel, _ := filepath.Rel(root, path)
		for _, fd := range findings(f) {
			expr := exprText(fset, path, fd.node)
			if why, ok := reviewed[rel+": "+expr]; ok && why != "" {
				continue
			}
			t.Errorf("%s: %s compares a secret in variable time: %s (use subtle.ConstantTimeCompare / hmac.Equal)", fset.Position(fd.node.Pos()), fd.what, expr)
		}
		constantTime += countConstantTime(f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("scanned only %d files: wrong root?", files)
	}
	if constantTime == 0 {
		t.Fatal("no constant-time comparison found at all: the scan is broken")
	}
	t.Logf("scanned %d files: %d constant-time comparisons, no variable-time comparison of a secret", files, constantTime)
}

type finding struct {
	node ast.Node
	what string
}

// findings are f's comparisons of a secret that are not constant time.
func findings(f *ast.File) []finding {
	var out []finding
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.BinaryExpr:
			if x.Op != token.EQL && x.Op != token.NEQ {
				return true
			}
			if secretish(x.X) && !constant(x.Y) || secretish(x.Y) && !constant(x.X) {
				out = append(out, finding{x, x.Op.String()})
			}
		case *ast.SwitchStmt:
			// switch sign { case want: } is == in disguise.
			if x.Tag != nil && secretish(x.Tag) {
				for _, s := range x.Body.List {
					for _, c := range s.(*ast.CaseClause).List {
						if !constant(c) {
							out = append(out, finding{x, "switch"})
						}
					}
				}
			}
		case *ast.CallExpr:
			if name := callName(x.Fun); variableTimeCalls[name] {
				for _, a := range x.Args {
					if secretish(a) {
						out = append(out, finding{x, name})
						break
					}
				}
			}
		}
		return true
	})
	return out
}

func countConstantTime(f *ast.File) int {
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		if c, ok := node.(*ast.CallExpr); ok {
			switch callName(c.Fun) {
			case "subtle.ConstantTimeCompare", "hmac.Equal", "md5sign.Equal":
				n++
			}
		}
		return true
	})
	return n
}

// TestScanFindsVariableTimeComparisons checks the scan's heuristics on
// snippets, so that a scan that silently stopped finding anything fails.
func TestScanFindsVariableTimeComparisons(t *testing.T) {
	tests := []struct {
		name, stmt string
		flagged    bool
	}{
		{"== on a signature", `if sign == want {}`, true},
		{"!= on a map's sign", `if f["sign"] != got {}`, true},
		{"bytes.Equal on a MAC", `if bytes.Equal(mac, expected) {}`, true},
		{"EqualFold on a token", `if strings.EqualFold(got, a.Token) {}`, true},
		{"switch on a secret", `switch acct.Secret { case other: }`, true},
		{"switch on an account key", `switch acct.Key("secret") { case other: }`, true},
		{"!= on an account's aes key", `if a.Key("aes_key") != k {}`, true},
		{"camel-case name", `if wantSign == gotValue {}`, true},
		{"emptiness check", `if sign == "" {}`, false},
		{"field-name check", `if k == "sign" {}`, false},
		{"length check", `if len(secret) != 32 {}`, false},
		{"constant-time compare", `if subtle.ConstantTimeCompare([]byte(sign), []byte(want)) != 1 {}`, false},
		{"unrelated compare", `if status == want {}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parser.ParseFile(token.NewFileSet(), "x.go", "package x\nfunc f() {\n"+tt.stmt+"\n}\n", 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(findings(f)) > 0; got != tt.flagged {
				t.Errorf("flagged = %v, want %v", got, tt.flagged)
			}
		})
	}
}

func callName(fun ast.Expr) string {
	if s, ok := fun.(*ast.SelectorExpr); ok {
		if id, ok := s.X.(*ast.Ident); ok {
			return id.Name + "." + s.Sel.Name
		}
	}
	return ""
}

func exprText(fset *token.FileSet, path string, n ast.Node) string {
	src, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	s, e := fset.Position(n.Pos()).Offset, fset.Position(n.End()).Offset
	if _, ok := n.(*ast.SwitchStmt); ok {
		e = min(e, s+60)
	}
	return strings.Join(strings.Fields(string(src[s:e])), " ")
}

// TestVerifiersUseConstantTime pins the functions that check a secret or a
// signature to a constant-time primitive, so that a refactor that drops it
// fails here even if the scan's heuristics miss the new comparison.
func TestVerifiersUseConstantTime(t *testing.T) {
	root := moduleRoot(t)
	tests := []struct {
		name, file, fn string
		uses           []string
	}{
		{"admin bearer token", "internal/ops/ops.go", "RequireToken", []string{"subtle.ConstantTimeCompare"}},
		{"MD5 signatures", "pkg/providers/internal/md5sign/md5sign.go", "Equal", []string{"subtle.ConstantTimeCompare"}},
		{"jpglo sign", "pkg/providers/jpglo/jpglo.go", "Verify", []string{"md5sign.Equal"}},
		{"mrnpay sign and appKey", "pkg/providers/mrnpay/mrnpay.go", "Verify", []string{"md5sign.Equal"}},
		{"cashypro Sign header", "pkg/providers/cashypro/cashypro.go", "Verify", []string{"subtle.ConstantTimeCompare", "md5sign.Equal"}},
		{"mpurse partnerId", "pkg/providers/mpurse/mpurse.go", "Verify", []string{"subtle.ConstantTimeCompare"}},
		{"mpurse PKCS#7 padding", "pkg/providers/mpurse/cipher.go", "pkcs7", []string{"subtle.ConstantTimeByteEq", "subtle.ConstantTimeLessOrEq"}},
		{"stripe v1 signatures", "pkg/providers/stripe/sign.go", "verify", []string{"hmac.Equal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, filepath.Join(root, tt.file), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			found := map[string]bool{}
			var seen bool
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Name.Name != tt.fn {
					continue
				}
				seen = true
				ast.Inspect(fd, func(n ast.Node) bool {
					if c, ok := n.(*ast.CallExpr); ok {
						found[callName(c.Fun)] = true
					}
					return true
				})
			}
			if !seen {
				t.Fatalf("%s: no func %s", tt.file, tt.fn)
			}
			for _, u := range tt.uses {
				if !found[u] {
					t.Errorf("%s.%s no longer calls %s", tt.file, tt.fn, u)
				}
			}
		})
	}
}
