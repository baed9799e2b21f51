// Command payhook-keygen makes an event signing key pair (event_signing in
// docs/config.md): the private key for ingress and the reconciler, the public
// key for the dispatcher and any other reader of the event subjects.
//
//	payhook-keygen          private_key: whsk_...
//	                        public_key: whpk_...
//	payhook-keygen --json   {"private_key":"whsk_...","public_key":"whpk_..."}
package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/pkg/events"
)

func main() {
	os.Exit(cli.ExitCode(run(os.Args[1:], os.Stdout, os.Stderr, rand.Reader), os.Stderr))
}

// keyPair is the --json document.
type keyPair struct {
	PrivateKey string `json:"private_key"`
	PublicKey  string `json:"public_key"`
}

// run prints a new key pair drawn from random.
func run(args []string, stdout, stderr io.Writer, random io.Reader) error {
	fs := flag.NewFlagSet("payhook-keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON document")
	if err := fs.Parse(args); err != nil {
		return &cli.UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		return &cli.UsageError{Err: errors.New("payhook-keygen takes no arguments (only --json)")}
	}
	k, err := events.GenerateKey(random)
	if err != nil {
		return err
	}
	p := keyPair{PrivateKey: k.Encode(), PublicKey: k.Public().Encode()}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(p)
	}
	_, err = fmt.Fprintf(stdout, "private_key: %s\npublic_key: %s\n", p.PrivateKey, p.PublicKey)
	return err
}
