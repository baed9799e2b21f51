package badinput

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// targets are the registered providers that describe their wire for the
// corpus (hostile.Provider), by name.
var targets = providers.With[hostile.Provider](registry.All())

// Inbound lists them in registration order: the providers covered in full.
var Inbound = inRegistrationOrder(targets)

func inRegistrationOrder[R any](m map[string]R) []string {
	var out []string
	for _, name := range registry.All().Names() {
		if _, ok := m[name]; ok {
			out = append(out, name)
		}
	}
	return out
}

// gen is the generator's state: one random source, so one seed is one corpus.
type gen struct {
	rng       *rand.Rand
	seed      uint64
	limit     int64
	seq       int
	byProv    map[string][]providers.Account
	originals map[string][]*base
}

// base is a fresh valid callback of prov before it is mutated: a
// described provider's hostile.Callback, or a simulated provider's order
// (sim). cb.Header and cb.Body are set for originals.
type base struct {
	prov string
	cb   hostile.Callback
	sim  *providers.SimOrder
}

func (b *base) path() string { return hostile.Path(b.prov, b.cb.Account.ID, b.cb.Kind) }

func (g *gen) IntN(n int) int         { return g.rng.IntN(n) }
func (g *gen) Pick(s []string) string { return s[g.rng.IntN(len(s))] }
func (g *gen) PickInt(s []int) int    { return s[g.rng.IntN(len(s))] }
func (g *gen) BodyLimit() int64       { return g.limit }

func (g *gen) Digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.rng.IntN(10))
	}
	if b[0] == '0' {
		b[0] = '1'
	}
	return string(b)
}

// original is one of prov's originals, drawn at random.
func (g *gen) original(prov string) *base {
	os := g.originals[prov]
	return os[g.rng.IntN(len(os))]
}

// otherAccount is the other account of a's provider.
func (g *gen) otherAccount(a providers.Account) providers.Account {
	for _, x := range g.byProv[a.Provider] {
		if x.ID != a.ID {
			return x
		}
	}
	return a
}

// view is the generator as one provider's mutations see it (hostile.Gen).
type view struct {
	*gen
	prov string
}

func (v view) Original() *hostile.Callback { return v.original(v.prov).cb.Clone() }

func (v view) OtherAccount(a providers.Account) providers.Account { return v.otherAccount(a) }

// newBase makes a fresh valid callback of prov with a unique order id.
func (g *gen) newBase(prov string) *base {
	g.seq++
	accts := g.byProv[prov]
	acct := accts[g.rng.IntN(len(accts))]
	id := fmt.Sprintf("BI%d-%s-%06d", g.seed%1000, prov[:2], g.seq)
	b := &base{prov: prov}
	if t, ok := targets[prov]; ok {
		b.cb = *t.HostileCallback(view{g, prov}, acct, id)
		return b
	}
	g.newSimBase(b, acct, id)
	return b
}

// sign renders b as its provider would send it, validly signed or encrypted.
func (g *gen) sign(b *base) (http.Header, []byte, error) {
	if t, ok := targets[b.prov]; ok {
		return t.HostileSign(b.cb.Account, &b.cb)
	}
	if sp, ok := simulatedSides[b.prov]; ok {
		return sp.SimCallback(b.cb.Account, *b.sim, simSignedAt, false)
	}
	return nil, nil, fmt.Errorf("no signer for %s", b.prov)
}

// mutation is one entry of the table: a class, the provider whose callback
// it mutates, and the function that mutates a fresh valid base.
type mutation struct {
	class Class
	prov  string
	name  string
	fn    func(g *gen, b *base) (hostile.Result, error)
}

type addFunc func(class Class, prov, name string, fn func(*gen, *base) (hostile.Result, error))

// mutations is the table: for each described provider the mutations every
// one gets and its own; for each other simulated provider the generic ones.
func mutations() []mutation {
	var ms []mutation
	add := func(class Class, prov, name string, fn func(*gen, *base) (hostile.Result, error)) {
		ms = append(ms, mutation{class: class, prov: prov, name: name, fn: retrying(fn)})
	}
	for _, p := range Inbound {
		addPreserving(add, p)
		addWire(add, p)
		for _, m := range targets[p].HostileMutations() {
			add(m.Class, p, m.Name, func(g *gen, b *base) (hostile.Result, error) { return m.Make(view{g, p}, &b.cb) })
		}
	}
	for _, p := range Simulated {
		addSimulated(add, p)
	}
	return ms
}

// retrying re-runs fn on a fresh base of the same provider when it
// returns hostile.ErrRetry.
func retrying(fn func(*gen, *base) (hostile.Result, error)) func(*gen, *base) (hostile.Result, error) {
	return func(g *gen, b *base) (hostile.Result, error) {
		for range 64 {
			r, err := fn(g, b)
			if !errors.Is(err, hostile.ErrRetry) {
				return r, err
			}
			*b = *g.newBase(b.prov)
		}
		return hostile.Result{}, errors.New("no classifiable mutation in 64 attempts")
	}
}
