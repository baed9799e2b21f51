// Package vectorstest loads the signing and decryption vectors the provider
// packages test against, and reads their fuzz corpus files. Each provider
// keeps its section of the vectors in testdata/vectors.json, so that its
// tests run on their own; when an externally computed copy of the vectors
// is present beside the checkout (SharedPath), the package's section must
// equal its section there.
package vectorstest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// LocalPath is a provider package's copy of its vectors, relative to the
// package directory tests run in.
var LocalPath = filepath.Join("testdata", "vectors.json")

// SharedPath is where an externally computed copy of the vectors is read
// from, when one is present beside the checkout; relative to a provider
// package's directory. It is optional: without it the package's own copy
// is used alone.
var SharedPath = filepath.Join("..", "..", "..", "..", "shared", "vectors.json")

// Load decodes section of the vectors file at path into []T, numbers as
// json.Number (integers must reach a signer as their digits). ok is false
// when the file does not exist; any other failure, and an empty or absent
// section, fails tb.
func Load[T any](tb testing.TB, path, section string) (vs []T, ok bool) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		tb.Fatalf("read %s: %v", path, err)
	}
	var file map[string]json.RawMessage
	if err := json.Unmarshal(b, &file); err != nil {
		tb.Fatalf("decode %s: %v", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(file[section]))
	dec.UseNumber()
	if err := dec.Decode(&vs); err != nil || len(vs) == 0 {
		tb.Fatalf("%s has no %s vectors (%v)", path, section, err)
	}
	return vs, true
}

// Local returns section of the package's testdata/vectors.json; a missing
// file fails tb.
func Local[T any](tb testing.TB, section string) []T {
	tb.Helper()
	vs, ok := Load[T](tb, LocalPath, section)
	if !ok {
		tb.Fatalf("%s missing", LocalPath)
	}
	return vs
}

// Shared returns section of the externally computed copy of the vectors
// (SharedPath) and checks that the package's copy holds the same vectors
// (an error on tb otherwise, so the copy cannot drift). ok is false, with a
// log line, when no such copy is present; the package's copy is then used
// alone.
func Shared[T any](tb testing.TB, section string) (vs []T, ok bool) {
	tb.Helper()
	shared, ok := Load[T](tb, SharedPath, section)
	if !ok {
		tb.Logf("no %s here; %s used alone", SharedPath, LocalPath)
		return nil, false
	}
	if local := Local[T](tb, section); !reflect.DeepEqual(local, shared) {
		tb.Errorf("%s differs from %s; refresh the copy", LocalPath, SharedPath)
	}
	return shared, true
}

// ReadCorpus decodes a one-value "go test fuzz v1" file holding []byte("...").
func ReadCorpus(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	header, rest, _ := strings.Cut(string(b), "\n")
	lit, ok := strings.CutPrefix(strings.TrimSpace(rest), "[]byte(")
	if header != "go test fuzz v1" || !ok {
		tb.Fatalf("%s: not a go test fuzz v1 []byte file", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// Verdict is a fuzz corpus file and what Parse must make of it as a
// callback of Kind: Want is the reject reason, "" for accepted.
type Verdict struct {
	File string
	Kind events.Kind
	Want string
}

// CheckCorpus parses each file of testdata/fuzz/<target> with p and acct,
// one subtest per file, and checks its verdict: signed corpus entries must
// keep verifying, so that fuzzing starts past the signature check.
func CheckCorpus(t *testing.T, p providers.Inbound, acct providers.Account, target string, received time.Time, verdicts []Verdict) {
	t.Helper()
	for _, v := range verdicts {
		t.Run(v.File, func(t *testing.T) {
			body := ReadCorpus(t, filepath.Join("testdata", "fuzz", target, v.File))
			_, err := p.Parse(acct, providers.Request{Kind: v.Kind, Body: body, ReceivedAt: received})
			got := ""
			if err != nil {
				got = string(providers.ReasonOf(err))
			}
			if got != v.Want {
				t.Errorf("verdict %q (%v), want %q", got, err, v.Want)
			}
		})
	}
}
