// Package providertest is the conformance suite every inbound provider passes:
// golden decode, tampered and truncated requests rejected with a reason, the
// ack rendered, and no panic on any mutation of a valid request; and, for a
// provider that describes its wire for the bad-input corpus, its own
// mutations with the outcome each declares (Hostile).
package providertest

import (
	"errors"
	"reflect"
	"testing"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Valid is a request that must verify and decode to Want.
type Valid struct {
	Name    string
	Account providers.Account
	Request providers.Request
	Want    events.Event
	// WantID, when set, is the expected deterministic event id.
	WantID string
}

// Invalid is a request that must be rejected with a *providers.RejectError
// wrapping Sentinel (when set) and carrying Reason (when set).
type Invalid struct {
	Name     string
	Account  providers.Account
	Request  providers.Request
	Sentinel error
	Reason   providers.Reason
}

// Run checks p against the cases. Every Valid case is also mutated byte by
// byte (flip, drop, truncate) to check that Parse never panics.
func Run(t *testing.T, p providers.Inbound, valid []Valid, invalid []Invalid) {
	t.Helper()
	if len(valid) == 0 {
		t.Fatal("providertest: no valid cases")
	}
	t.Run("kinds", func(t *testing.T) { checkKinds(t, p) })
	for _, c := range valid {
		t.Run("valid/"+c.Name, func(t *testing.T) { checkValid(t, p, c) })
		t.Run("truncated/"+c.Name, func(t *testing.T) { checkTruncated(t, p, c) })
		t.Run("mutations/"+c.Name, func(t *testing.T) { checkMutations(t, p, c) })
		t.Run("wrong-key/"+c.Name, func(t *testing.T) { checkWrongKey(t, p, c) })
	}
	for _, c := range invalid {
		t.Run("invalid/"+c.Name, func(t *testing.T) { checkInvalid(t, p, c) })
	}
}

// checkKinds: p sends at least one kind, and each kind's ack is a 2xx with
// a content type.
func checkKinds(t *testing.T, p providers.Inbound) {
	if len(p.Kinds()) == 0 {
		t.Fatalf("%s sends no kinds", p.Name())
	}
	for _, k := range p.Kinds() {
		r := p.Ack(k)
		if r.Status < 200 || r.Status > 299 {
			t.Errorf("ack for %s: status %d, want 2xx", k, r.Status)
		}
		if r.ContentType == "" {
			t.Errorf("ack for %s: no content type", k)
		}
	}
}

// checkValid: c verifies and decodes to c.Want, a valid event with the
// expected id that renders as a CloudEvent.
func checkValid(t *testing.T, p providers.Inbound, c Valid) {
	got, err := p.Parse(c.Account, c.Request)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := c.Want
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse mismatch:\n got  %+v\n want %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("decoded event invalid: %v", err)
	}
	if c.WantID != "" && got.ID() != c.WantID {
		t.Errorf("ID = %s, want %s", got.ID(), c.WantID)
	}
	if _, err := got.MarshalCloudEvent(); err != nil {
		t.Errorf("MarshalCloudEvent: %v", err)
	}
}

// checkTruncated: c's body cut short is rejected with a reason.
func checkTruncated(t *testing.T, p providers.Inbound, c Valid) {
	for _, n := range []int{0, 1, len(c.Request.Body) / 2, len(c.Request.Body) - 1} {
		if n < 0 || n >= len(c.Request.Body) {
			continue
		}
		r := c.Request
		r.Body = append([]byte(nil), c.Request.Body[:n]...)
		if _, err := p.Parse(c.Account, r); err == nil {
			t.Errorf("body truncated to %d bytes accepted", n)
		} else {
			assertReject(t, err)
		}
	}
}

// checkMutations: every one-byte flip or drop of c's body is parsed
// without a panic, and refused, if at all, with a reason.
func checkMutations(t *testing.T, p providers.Inbound, c Valid) {
	body := c.Request.Body
	for i := range body {
		for _, mut := range [][]byte{
			flip(body, i),
			append(append([]byte(nil), body[:i]...), body[i+1:]...),
		} {
			r := c.Request
			r.Body = mut
			func() {
				defer func() {
					if v := recover(); v != nil {
						t.Fatalf("Parse panicked on mutation at %d: %v", i, v)
					}
				}()
				if _, err := p.Parse(c.Account, r); err != nil {
					assertReject(t, err)
				}
			}()
		}
	}
}

// checkWrongKey: c is rejected under an account whose keys differ.
func checkWrongKey(t *testing.T, p providers.Inbound, c Valid) {
	// Every long key value (secrets and cipher keys; not modes,
	// rules or merchant_id, which would fail for another reason)
	// changes its last byte, keeping its length.
	a := c.Account
	changed := false
	for k, v := range c.Account.Keys {
		if k != "merchant_id" && len(v) >= 8 {
			a, changed = a.With(k, v[:len(v)-1]+string(rune('a'+(v[len(v)-1]+1)%26))), true
		}
	}
	if !changed {
		t.Fatal("the account has no secret or key to change")
	}
	if _, err := p.Parse(a, c.Request); err == nil {
		t.Error("accepted under a different key")
	} else {
		assertReject(t, err)
	}
}

// checkInvalid: c is rejected with a reason, wrapping c.Sentinel and
// carrying c.Reason when set.
func checkInvalid(t *testing.T, p providers.Inbound, c Invalid) {
	_, err := p.Parse(c.Account, c.Request)
	if err == nil {
		t.Fatal("accepted")
	}
	assertReject(t, err)
	if c.Sentinel != nil && !errors.Is(err, c.Sentinel) {
		t.Errorf("error %v does not wrap %v", err, c.Sentinel)
	}
	if c.Reason != "" && providers.ReasonOf(err) != c.Reason {
		t.Errorf("reason %q, want %q", providers.ReasonOf(err), c.Reason)
	}
}

func assertReject(t *testing.T, err error) {
	t.Helper()
	var re *providers.RejectError
	if !errors.As(err, &re) {
		t.Errorf("error is not a *providers.RejectError: %v", err)
		return
	}
	if re.Reason == "" {
		t.Errorf("reject without reason: %v", err)
	}
}

func flip(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i] ^= 0x01
	return out
}
