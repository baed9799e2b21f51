package providertest

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// HostileInbound is a provider that calls back and describes its wire for
// the bad-input corpus.
type HostileInbound interface {
	providers.Inbound
	hostile.Provider
}

// Hostile runs each of p's own bad-input mutations (hostile.Provider)
// rounds times on fresh callbacks straight through p.Parse and checks the
// outcome each declares: accepted when valid, else refused with one of its
// reasons. Outcomes that only ingress decides (an unknown account or kind
// in the URL, the body limit) are left to internal/badinput, which sends
// the whole corpus through a real ingress.
func Hostile(t *testing.T, p HostileInbound, rounds int) {
	t.Helper()
	g := &hostileGen{rng: rand.New(rand.NewPCG(1, 2)), accts: p.HostileAccounts()}
	if len(g.accts) < 2 {
		t.Fatalf("%s: HostileAccounts gives %d accounts, want two", p.Name(), len(g.accts))
	}
	for i := range 16 {
		c := g.fresh(p, i)
		h, body, err := p.HostileSign(c.Account, c)
		if err != nil {
			t.Fatalf("HostileSign: %v", err)
		}
		c.Header, c.Body = h, body
		if _, err := p.Parse(c.Account, providers.Request{Kind: c.Kind, Header: h, Body: body, ReceivedAt: time.Now()}); err != nil {
			t.Fatalf("an unmutated signed callback does not parse: %v", err)
		}
		g.originals = append(g.originals, c)
	}
	n := 0
	for _, m := range p.HostileMutations() {
		for range rounds {
			n++
			c, r, err := g.make(p, m, n)
			if err != nil {
				t.Fatalf("%s %s: %v", m.Class, m.Name, err)
			}
			checkHostile(t, p, g.accts, m, c, r)
		}
	}
}

func checkHostile(t *testing.T, p HostileInbound, accts []providers.Account, m hostile.Mutation, c *hostile.Callback, r hostile.Result) {
	t.Helper()
	acct, kind := c.Account, c.Kind
	if r.Path != "" {
		parts := strings.Split(r.Path, "/") // "", v1, callbacks, provider, account, kind
		i := slices.IndexFunc(accts, func(a providers.Account) bool { return a.ID == parts[4] })
		if parts[3] != p.Name() || i < 0 || !slices.Contains(p.Kinds(), events.Kind(parts[5])) {
			return // ingress refuses it before the provider sees it
		}
		acct, kind = accts[i], events.Kind(parts[5])
	}
	for _, reason := range []string{hostile.ReasonTooLarge, hostile.ReasonUnknownAccount, hostile.ReasonUnknownProvider} {
		if slices.Contains(r.Want.Reasons, reason) {
			return
		}
	}
	_, err := p.Parse(acct, providers.Request{Kind: kind, Header: r.Header, Body: r.Body, ReceivedAt: time.Now()})
	switch {
	case r.Want.Valid && err != nil:
		t.Errorf("%s %s: want %s, got %v", m.Class, m.Name, r.Want, err)
	case !r.Want.Valid && err == nil:
		t.Errorf("%s %s: want %s, accepted", m.Class, m.Name, r.Want)
	case !r.Want.Valid && !slices.Contains(r.Want.Reasons, string(providers.ReasonOf(err))):
		t.Errorf("%s %s: want %s, got %v", m.Class, m.Name, r.Want, err)
	}
}

// hostileGen is a small hostile.Gen for one provider.
type hostileGen struct {
	rng       *rand.Rand
	accts     []providers.Account
	originals []*hostile.Callback
}

func (g *hostileGen) fresh(p HostileInbound, n int) *hostile.Callback {
	return p.HostileCallback(g, g.accts[g.rng.IntN(len(g.accts))], "PT-"+g.Digits(4)+"-"+string(rune('a'+n%26)))
}

// make runs m on fresh callbacks until it makes a case.
func (g *hostileGen) make(p HostileInbound, m hostile.Mutation, n int) (*hostile.Callback, hostile.Result, error) {
	for range 64 {
		c := g.fresh(p, n)
		r, err := m.Make(g, c)
		if errors.Is(err, hostile.ErrRetry) {
			continue
		}
		if err == nil && r.Header == nil {
			r.Header, r.Body, err = p.HostileSign(c.Account, c)
		}
		return c, r, err
	}
	return nil, hostile.Result{}, errors.New("no case in 64 attempts")
}

func (g *hostileGen) IntN(n int) int         { return g.rng.IntN(n) }
func (g *hostileGen) Pick(s []string) string { return s[g.rng.IntN(len(s))] }
func (g *hostileGen) PickInt(s []int) int    { return s[g.rng.IntN(len(s))] }
func (g *hostileGen) BodyLimit() int64       { return 64 << 10 }
func (g *hostileGen) Original() *hostile.Callback {
	return g.originals[g.rng.IntN(len(g.originals))].Clone()
}

func (g *hostileGen) Digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.rng.IntN(10))
	}
	if b[0] == '0' {
		b[0] = '1'
	}
	return string(b)
}

func (g *hostileGen) OtherAccount(a providers.Account) providers.Account {
	for _, x := range g.accts {
		if x.ID != a.ID {
			return x
		}
	}
	return a
}
