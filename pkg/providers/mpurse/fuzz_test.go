package mpurse_test

import (
	"testing"

	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/parsetest"
	"github.com/payhook/payhook/pkg/providers/mpurse"
)

// checkOutcome is what every input must satisfy: a *providers.RejectError
// with a reason, or an event that validates (parsetest.Outcome) for acct.
func checkOutcome(t *testing.T, acct providers.Account, body []byte) {
	t.Helper()
	ev, err := mpurse.New().Parse(acct, req(body))
	if !parsetest.Outcome(t, "", ev, err) {
		return
	}
	if ev.Account != acct.ID || ev.Provider != "mpurse" {
		t.Fatalf("event for %s/%s", ev.Provider, ev.Account)
	}
}

// FuzzMpurseParse feeds arbitrary bodies (base64 layer and below) to every account mode.
func FuzzMpurseParse(f *testing.F) {
	f.Add([]byte(""))
	f.Add(encBody(f, acct128, seedPlain))
	f.Add(encBody(f, acct256cbc, seedPlain))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, acct := range []providers.Account{acct128, acct192, acct256cbc} {
			checkOutcome(t, acct, body)
		}
	})
}

// FuzzMpursePlaintext encrypts arbitrary plaintext correctly, so the fuzzer
// reaches the JSON and field decoding that a random body never gets past.
func FuzzMpursePlaintext(f *testing.F) {
	f.Add([]byte(seedPlain))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, plain []byte) {
		checkOutcome(t, acct128, encBody(t, acct128, string(plain)))
	})
}
