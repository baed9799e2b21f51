// Package badinput generates a deterministic corpus of hostile callback
// requests for the providers that call payhook back
// (docs/reliability.md "Bad input at scale"): malformed, tampered,
// replayed-with-tampering, oversized, wrongly encoded, unicode-edge, wrong
// content type, truncated, duplicated-key, deeply nested, huge-number,
// wrong-kind, unknown-account and wrong-provider-URL requests.
//
// It names no provider. Every registered provider that describes its wire
// (the hostile.Provider role, in its own package) is covered in full: its
// two throwaway accounts, fresh callbacks it builds and signs (or
// encrypts), its own mutations with the outcome each must have, and the
// mutations every such provider gets, derived from its hostile.Wire
// (wire.go). Every other provider with a simulated side of its own
// (providers.Simulated) gets the mutations that need nothing but that side
// (simulated.go).
//
// Every case starts from a validly signed (or encrypted) callback and is
// then mutated. Each mutation knows what ingress must do with it: reject it
// with one of a small set of reasons (usually exactly one, when the
// mutation determines it), or accept it (Want.Valid), with the reason it
// still verifies in Want.Why — reordered JSON keys, an added null field, a
// content type the decoders do not read, an exact replay, unicode in a
// signed free-text field.
//
// The same seed always yields the same corpus, byte for byte.
package badinput

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// Class is a mutation class (hostile.Class).
type Class = hostile.Class

// The mutation classes.
const (
	ClassValid           = hostile.ClassValid
	ClassPreserving      = hostile.ClassPreserving
	ClassTruncated       = hostile.ClassTruncated
	ClassTampered        = hostile.ClassTampered
	ClassReplayTampered  = hostile.ClassReplayTampered
	ClassBadSignature    = hostile.ClassBadSignature
	ClassOversized       = hostile.ClassOversized
	ClassHugeField       = hostile.ClassHugeField
	ClassWrongEncoding   = hostile.ClassWrongEncoding
	ClassUnicodeEdge     = hostile.ClassUnicodeEdge
	ClassContentType     = hostile.ClassContentType
	ClassDuplicateKey    = hostile.ClassDuplicateKey
	ClassDeeplyNested    = hostile.ClassDeeplyNested
	ClassHugeNumber      = hostile.ClassHugeNumber
	ClassSemantic        = hostile.ClassSemantic
	ClassAccountMismatch = hostile.ClassAccountMismatch
	ClassCrossAccount    = hostile.ClassCrossAccount
	ClassWrongKind       = hostile.ClassWrongKind
	ClassUnknownAccount  = hostile.ClassUnknownAccount
	ClassWrongProvider   = hostile.ClassWrongProvider
)

// ReasonStatus is every known reject reason with the HTTP statuses ingress
// may answer it with (missing_field is 401 when the missing field is the
// signature, 400 otherwise; wrong_kind is 404 from the URL, 400 when a
// verified body turns out to be of the other kind).
var ReasonStatus = map[string][]int{
	hostile.ReasonBadSignature:    {401},
	hostile.ReasonUndecryptable:   {401},
	hostile.ReasonNoKey:           {401},
	hostile.ReasonBadConfig:       {401},
	hostile.ReasonMissingField:    {400, 401},
	hostile.ReasonMalformed:       {400},
	hostile.ReasonAccountMismatch: {400},
	hostile.ReasonBadAmount:       {400},
	hostile.ReasonBadStatus:       {400},
	hostile.ReasonInvalidEvent:    {400},
	hostile.ReasonTooOld:          {400},
	hostile.ReasonUnreadable:      {400},
	hostile.ReasonInvalid:         {400},
	hostile.ReasonWrongKind:       {400, 404},
	hostile.ReasonUnknownAccount:  {404},
	hostile.ReasonUnknownProvider: {404},
	hostile.ReasonTooLarge:        {413},
	hostile.ReasonIPNotAllowed:    {403},
}

// Want is what ingress must do with a case (hostile.Want).
type Want = hostile.Want

// Case is one request of the corpus.
type Case struct {
	// N numbers the case within its corpus (originals first). Send it in
	// HeaderCase so the raw record can be matched to the case.
	N        int
	Class    Class
	Variant  string // "{provider} {kind}: {mutation}", e.g. "... payin: amount changed"
	Provider string // the provider whose callback the request was built from
	Account  string // the account it was built for
	Kind     events.Kind
	Path     string // /v1/callbacks/{provider}/{account}/{kind}
	Header   http.Header
	Body     []byte
	Want     Want
}

// HeaderCase carries Case.N on the wire.
const HeaderCase = "X-Badinput-Case"

// Corpus is a generated corpus.
type Corpus struct {
	Seed      uint64
	BodyLimit int64
	// Accounts to configure ingress with (two per provider that describes
	// its wire, one per other simulated provider).
	Accounts []providers.Account
	// Originals are valid callbacks to send (and see accepted) before Cases:
	// the replay_tampered and preserving replay cases reuse them.
	Originals []Case
	Cases     []Case
}

// Accounts are the corpus's merchant accounts with throwaway keys: each
// described provider's two, then each other simulated provider's demo
// account.
func Accounts() []providers.Account {
	var out []providers.Account
	for _, name := range Inbound {
		out = append(out, targets[name].HostileAccounts()...)
	}
	return append(out, simulatedAccounts()...)
}

// originalsPerProvider is how many valid callbacks per provider are sent first.
const originalsPerProvider = 40

// Generate builds a corpus from seed with at least n cases that must be
// rejected, plus the valid (semantics-preserving) cases the same passes over
// the mutation table make; it always ends on a whole pass, so every mutation
// is represented equally. bodyLimit is the ingress body limit the oversized
// cases must exceed.
func Generate(seed uint64, n int, bodyLimit int64) (*Corpus, error) {
	g := &gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed: seed, limit: bodyLimit,
		byProv: map[string][]providers.Account{}, originals: map[string][]*base{}}
	c := &Corpus{Seed: seed, BodyLimit: bodyLimit, Accounts: Accounts()}
	for _, a := range c.Accounts {
		g.byProv[a.Provider] = append(g.byProv[a.Provider], a)
	}
	for _, p := range append(slices.Clone(Inbound), Simulated...) {
		for range originalsPerProvider {
			b := g.newBase(p)
			hdr, body, err := g.sign(b)
			if err != nil {
				return nil, err
			}
			b.cb.Header, b.cb.Body = hdr, body
			g.originals[p] = append(g.originals[p], b)
			c.Originals = append(c.Originals, finish(len(c.Originals), ClassValid, "original", b, b.path(), hdr, body, hostile.Valid("an unmutated signed callback")))
		}
	}
	table := mutations()
	bad := 0
	for i := 0; bad < n || i%len(table) != 0; i++ {
		m := table[i%len(table)]
		b := g.newBase(m.prov)
		r, err := m.fn(g, b)
		if err != nil {
			return nil, fmt.Errorf("badinput: %s %s: %w", m.prov, m.name, err)
		}
		if r.Path == "" {
			r.Path = b.path()
		}
		if r.Header == nil {
			r.Header, r.Body, err = g.sign(b)
			if err != nil {
				return nil, fmt.Errorf("badinput: %s %s: %w", m.prov, m.name, err)
			}
		}
		if !r.Want.Valid {
			bad++
		}
		variant := m.prov + " " + string(b.cb.Kind) + ": " + m.name
		c.Cases = append(c.Cases, finish(len(c.Originals)+len(c.Cases), m.class, variant, b, r.Path, r.Header, r.Body, r.Want))
	}
	return c, nil
}

func finish(n int, class Class, variant string, b *base, path string, hdr http.Header, body []byte, w Want) Case {
	h := hdr.Clone()
	h.Set(HeaderCase, strconv.Itoa(n))
	return Case{N: n, Class: class, Variant: variant, Provider: b.prov, Account: b.cb.Account.ID, Kind: b.cb.Kind,
		Path: path, Header: h, Body: body, Want: w}
}
