package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/pkg/events"
)

// checkPair parses both keys and checks that the public key verifies what
// the private key signs.
func checkPair(t *testing.T, priv, pub string) {
	t.Helper()
	k, err := events.ParsePrivateKey(priv)
	if err != nil {
		t.Fatalf("private key: %v", err)
	}
	p, err := events.ParsePublicKey(pub)
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	s, _ := events.NewSigner(k)
	h := header{}
	s.Sign(h, "evt_1", time.Unix(1, 0), []byte("{}"))
	if _, err := events.Verify([]events.PublicKey{p}, h, []byte("{}")); err != nil {
		t.Fatalf("public key does not verify the private key's signature: %v", err)
	}
}

type header map[string]string

func (h header) Get(k string) string { return h[k] }
func (h header) Set(k, v string)     { h[k] = v }

func TestText(t *testing.T) {
	var out bytes.Buffer
	if err := run(nil, &out, io.Discard, rand.Reader); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "private_key: whsk_") || !strings.HasPrefix(lines[1], "public_key: whpk_") {
		t.Fatalf("output %q", out.String())
	}
	checkPair(t, strings.TrimPrefix(lines[0], "private_key: "), strings.TrimPrefix(lines[1], "public_key: "))
}

func TestJSONAndFreshKeys(t *testing.T) {
	var first keyPair
	for i := range 2 {
		var out bytes.Buffer
		if err := run([]string{"--json"}, &out, io.Discard, rand.Reader); err != nil {
			t.Fatal(err)
		}
		var p keyPair
		dec := json.NewDecoder(&out)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil || dec.More() {
			t.Fatalf("not one JSON document: %v", err)
		}
		checkPair(t, p.PrivateKey, p.PublicKey)
		if i == 1 && p.PrivateKey == first.PrivateKey {
			t.Fatal("two runs made the same key")
		}
		first = p
	}
}

func TestErrors(t *testing.T) {
	var stderr bytes.Buffer
	if code := cli.ExitCode(run([]string{"extra"}, io.Discard, io.Discard, rand.Reader), &stderr); code != cli.ExitConfig {
		t.Fatalf("argument: exit %d", code)
	}
	if code := cli.ExitCode(run([]string{"--bogus"}, io.Discard, io.Discard, rand.Reader), io.Discard); code != cli.ExitConfig {
		t.Fatalf("unknown flag: exit %d", code)
	}
	var out bytes.Buffer
	err := run(nil, &out, io.Discard, failingReader{})
	if err == nil || out.Len() != 0 || cli.ExitCode(err, io.Discard) != 1 {
		t.Fatalf("broken randomness: %v, printed %q", err, out.String())
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }
