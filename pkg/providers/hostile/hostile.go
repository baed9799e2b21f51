// Package hostile is what a provider package declares about its own wire
// for the bad-input corpus (internal/badinput): the role a provider
// implements (Provider), the vocabulary of mutation classes and expected
// outcomes (Class, Want), and the small toolkit its mutations are written
// with (Obj and Form bodies whose bytes they control, encodings, unicode
// edges).
//
// The corpus generator knows no provider. It asks each registered provider
// with this role for two throwaway accounts, fresh unsigned callbacks, a
// signer, the shape of its wire (Wire) and its own mutations; it adds the
// mutations every provider gets (truncation, oversized bodies, wrong kinds,
// unknown accounts and providers, another provider's callback) from Wire.
// A provider's mutations say what ingress must answer each one with: the
// reasons its Parse rejects it with, or why it still verifies.
package hostile

import (
	"errors"
	"net/http"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Provider is implemented by a provider whose callbacks the bad-input
// corpus builds and mutates field by field. Its methods live in the
// provider's package (hostile.go), beside the code that verifies the same
// bytes; ingress never calls them.
type Provider interface {
	providers.Provider
	// HostileAccounts are two accounts of the provider with throwaway keys
	// and distinct merchant ids (the cross-account cases post one's
	// callback to the other).
	HostileAccounts() []providers.Account
	// HostileWire describes the provider's callback format for the
	// mutations every provider gets.
	HostileWire() Wire
	// HostileCallback draws a fresh, valid, unsigned callback for acct
	// whose merchant order id is orderID.
	HostileCallback(g Gen, acct providers.Account, orderID string) *Callback
	// HostileSign renders c as the provider sends it, signed (or encrypted)
	// under acct's keys; acct may be another account than c's.
	HostileSign(acct providers.Account, c *Callback) (http.Header, []byte, error)
	// HostileMutations are the provider's own mutations: its signature,
	// fields, encodings and semantics.
	HostileMutations() []Mutation
}

// Format is the shape of a provider's callback body on the wire.
type Format int

// The formats.
const (
	FormatJSON Format = iota // a JSON object
	FormatForm               // application/x-www-form-urlencoded
	FormatText               // text (mpurse: base64 of an AES ciphertext)
)

// Wire is what the mutations every provider gets need to know about its
// callbacks.
type Wire struct {
	Format Format
	// MaxBody is the provider package's own body limit; a body at the
	// ingress limit but over this one is refused as malformed.
	MaxBody int64
	// Truncated is what a validly signed body cut short must get.
	Truncated Want
	// Foreign is what another provider's valid callback, in the given
	// format, posted to this provider's URL must get: one entry per Format.
	Foreign map[Format]Want
	// SignBody signs body's exact bytes under acct, for a provider whose
	// signature covers the raw body and travels beside it; nil for one
	// whose signature covers its fields (whitespace is not signed) or that
	// encrypts. The mutations every provider gets that pad a signed body
	// without changing what it says sign the padded body again with it.
	SignBody func(acct providers.Account, kind events.Kind, body []byte) (http.Header, error)
}

// Callback is a provider callback before it is signed: its fields as an
// ordered JSON object (Obj, also the plaintext of an encrypted body) or a
// form (Form).
type Callback struct {
	Account providers.Account
	Kind    events.Kind
	Obj     *Obj
	Form    Form
	// Header and Body are the signed request, for the originals the
	// corpus sends (and sees accepted) first.
	Header http.Header
	Body   []byte
}

// Result is what a mutation makes. A nil Header means "sign the mutated
// callback" with the provider's HostileSign; an empty Path means the
// callback's own URL.
type Result struct {
	Path   string
	Header http.Header
	Body   []byte
	Want   Want
}

// Mutation is one entry of a provider's table: a class, a name (the case's
// variant) and the function that mutates a fresh valid callback.
type Mutation struct {
	Class Class
	Name  string
	Make  func(g Gen, c *Callback) (Result, error)
}

// ErrRetry is returned by a Make that landed, at random, on a callback it
// does not apply to or on an outcome it cannot classify with certainty:
// the generator draws a fresh callback and calls it again.
var ErrRetry = errors.New("hostile: retry on another callback")

// Gen is the generator a mutation draws on: one random source (so one seed
// is one corpus), the ingress body limit, and the provider's accounts and
// accepted originals.
type Gen interface {
	IntN(n int) int
	Pick(s []string) string
	PickInt(s []int) int
	// Digits draws n random decimal digits, the first not 0.
	Digits(n int) string
	// BodyLimit is the ingress body limit.
	BodyLimit() int64
	// Original is one of the provider's originals (Header and Body set):
	// callers copy it before they change it.
	Original() *Callback
	// OtherAccount is the provider's other account.
	OtherAccount(acct providers.Account) providers.Account
}

// Path is the callback URL of provider's account for kind.
func Path(provider, account string, kind events.Kind) string {
	return "/v1/callbacks/" + provider + "/" + account + "/" + string(kind)
}

// Clone is a deep copy of c: a mutation may change it freely.
func (c *Callback) Clone() *Callback {
	out := *c
	if c.Obj != nil {
		out.Obj = c.Obj.Clone()
	}
	out.Form = c.Form.Clone()
	out.Header = c.Header.Clone()
	out.Body = append([]byte(nil), c.Body...)
	return &out
}

// Mutations is a provider's table of mutations as it builds it.
type Mutations []Mutation

// Add appends the mutation of class named name that make makes.
func (ms *Mutations) Add(class Class, name string, make func(g Gen, c *Callback) (Result, error)) {
	*ms = append(*ms, Mutation{Class: class, Name: name, Make: make})
}

// Build is the table the adders make, in their order.
func Build(adders ...func(*Mutations)) []Mutation {
	var ms Mutations
	for _, add := range adders {
		add(&ms)
	}
	return ms
}

// BeforeSigning is a mutation that lets f change a fresh callback, which
// the corpus then signs (or encrypts) with the provider's HostileSign;
// the case wants w.
func BeforeSigning(w Want, f func(g Gen, c *Callback)) func(g Gen, c *Callback) (Result, error) {
	return func(g Gen, c *Callback) (Result, error) {
		f(g, c)
		return Result{Want: w}, nil
	}
}

// Edit is a named change to a fresh callback, which the corpus then signs,
// and the reason its provider must refuse the signed result with.
type Edit struct {
	Name   string
	Reason string
	F      func(g Gen, c *Callback)
}

// AddEdits adds a mutation of class per edit: the callback changed by
// F, signed, refused with Reason.
func AddEdits(ms *Mutations, class Class, edits []Edit) {
	for _, e := range edits {
		ms.Add(class, e.Name, BeforeSigning(Rejected(e.Reason), e.F))
	}
}
