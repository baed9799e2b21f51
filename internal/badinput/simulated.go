package badinput

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// The registered providers with their own simulated side
// (providers.Simulated) that do not describe their wire field by field
// (hostile.Provider) are covered by the mutations that need nothing but
// that side: callbacks it renders (SimCallback), and bodies the generator
// mutates and has it sign again (SimSign), on one demo account each. The
// reasons a generic mutation may get are the shared vocabulary (malformed,
// bad_signature, ...); which one depends on where the provider's own checks
// first fail.

// simulatedSides are those providers that send callbacks, by name.
var simulatedSides = func() map[string]providers.Simulated {
	provs := registry.All()
	out := providers.With[providers.Simulated](provs)
	for name := range out {
		if _, calls := providers.Role[providers.Inbound](provs, name); !calls {
			delete(out, name)
		}
	}
	for name := range targets {
		delete(out, name)
	}
	return out
}()

// Simulated lists them in registration order.
var Simulated = inRegistrationOrder(simulatedSides)

// simSignedAt is when the simulated providers' callbacks are signed: once
// per process, to the minute, so that the corpora one process generates
// from a seed are the same byte for byte. A provider whose signature covers
// the time of sending (within 300 s, say) refuses a corpus sent much later than
// it was generated.
var simSignedAt = time.Now().Truncate(time.Minute)

// simulatedAccounts are their demo accounts, "{provider}-bi".
func simulatedAccounts() []providers.Account {
	var out []providers.Account
	for _, name := range Simulated {
		a := simulatedSides[name].SimAccount(name + "-bi")
		a.Provider = name
		out = append(out, a)
	}
	return out
}

// newSimBase is a fresh order of a simulated provider for acct: a kind it
// sends, succeeded or failed, in the currency's precision.
func (g *gen) newSimBase(b *base, acct providers.Account, id string) {
	sp := simulatedSides[b.prov]
	amt := 10000 + g.rng.Int64N(9990000) // minor units
	kinds := sp.SimKinds()
	b.cb = hostile.Callback{Account: acct, Kind: kinds[g.rng.IntN(len(kinds))]}
	exp := sp.SimExponent(b.cb.Kind, acct.Currency)
	m, err := events.MoneyFromMinor(strconv.FormatInt(amt, 10), exp, acct.Currency)
	if err != nil {
		m = events.MustMoney("1", acct.Currency)
	}
	st := events.StatusSucceeded
	if g.rng.IntN(4) == 0 {
		st = events.StatusFailed
	}
	o := providers.SimOrder{Kind: b.cb.Kind, MerchantOrderID: id, Amount: m, Paid: m, Status: st, CompletedAt: simSignedAt}
	sp.SimIDs(&o, g.Digits)
	b.sim = &o
}

// Where a damaged body fails first is the provider's business: its
// signature, its decryption or its decoder.
var simDamaged = hostile.Rejected(hostile.ReasonBadSignature, hostile.ReasonMalformed, hostile.ReasonMissingField, hostile.ReasonUndecryptable)

// addSimulated adds the generic mutations for simulated provider p.
func addSimulated(add addFunc, p string) {
	addPreserving(add, p)
	addSimulatedDamage(add, p)
	addSimulatedResigned(add, p)
	add(ClassWrongKind, p, "kind the provider does not send", func(g *gen, b *base) (hostile.Result, error) {
		kind := g.Pick(append(kindsNotSent(p), "refund", "PAYIN", "chargeback"))
		return hostile.Result{Path: hostile.Path(p, b.cb.Account.ID, events.Kind(kind)), Want: hostile.Rejected(hostile.ReasonWrongKind)}, nil
	})
	add(ClassUnknownAccount, p, "account not configured or of another provider", func(g *gen, b *base) (hostile.Result, error) {
		ids := []string{"nosuch", b.cb.Account.ID + "-x", strings.ToUpper(b.cb.Account.ID)}
		if len(Inbound) > 0 {
			ids = append(ids, g.byProv[Inbound[0]][0].ID)
		}
		return hostile.Result{Path: hostile.Path(p, g.Pick(ids), b.cb.Kind), Want: hostile.Rejected(hostile.ReasonUnknownAccount)}, nil
	})
}

// addSimulatedDamage adds p's callbacks damaged after signing: cut,
// emptied, a byte changed, replayed with a byte changed, signed with
// another key, over the body limit.
func addSimulatedDamage(add addFunc, p string) {
	signedThen := func(w Want, f func(g *gen, body []byte) []byte) func(*gen, *base) (hostile.Result, error) {
		return func(g *gen, b *base) (hostile.Result, error) {
			h, body, err := g.sign(b)
			return hostile.Result{Header: h, Body: f(g, body), Want: w}, err
		}
	}
	add(ClassTruncated, p, "body cut short", signedThen(simDamaged, func(g *gen, body []byte) []byte { return body[:1+g.IntN(len(body)-1)] }))
	add(ClassTruncated, p, "empty body", signedThen(simDamaged, func(g *gen, body []byte) []byte { return []byte{} }))
	add(ClassTampered, p, "one byte of the body changed, not signed again", signedThen(simDamaged, func(g *gen, body []byte) []byte {
		body = bytes.Clone(body)
		body[g.IntN(len(body))] ^= byte(1 + g.IntN(0x7e))
		return body
	}))
	add(ClassReplayTampered, p, "an accepted callback replayed with a byte changed", func(g *gen, b *base) (hostile.Result, error) {
		*b = *g.original(p)
		body := bytes.Clone(b.cb.Body)
		body[len(body)/2] ^= 0x01
		return hostile.Result{Header: b.cb.Header.Clone(), Body: body, Want: simDamaged}, nil
	})
	add(ClassBadSignature, p, "signed with another key", func(g *gen, b *base) (hostile.Result, error) {
		h, body, err := simulatedSides[p].SimCallback(b.cb.Account, *b.sim, simSignedAt, true)
		return hostile.Result{Header: h, Body: body, Want: hostile.Rejected(hostile.ReasonBadSignature, hostile.ReasonUndecryptable, hostile.ReasonMissingField)}, err
	})
	add(ClassOversized, p, "body over the ingress limit", signedThen(hostile.Rejected(hostile.ReasonTooLarge), func(g *gen, body []byte) []byte {
		return append(bytes.Clone(body), bytes.Repeat([]byte(" "), int(g.limit)+1-len(body)+g.IntN(4096))...)
	}))
}

// addSimulatedResigned adds bodies of p's callbacks the generator breaks
// and has p sign again (SimSign): they verify, and the decoder refuses them.
func addSimulatedResigned(add addFunc, p string) {
	resigned := func(f func(g *gen, body []byte) []byte) func(*gen, *base) (hostile.Result, error) {
		return func(g *gen, b *base) (hostile.Result, error) {
			_, body, err := g.sign(b)
			if err != nil {
				return hostile.Result{}, err
			}
			body = f(g, body)
			h, err := simulatedSides[p].SimSign(b.cb.Account, b.cb.Kind, body, simSignedAt)
			return hostile.Result{Header: h, Body: body, Want: hostile.Rejected(hostile.ReasonMalformed, hostile.ReasonMissingField, hostile.ReasonBadAmount, hostile.ReasonInvalidEvent)}, err
		}
	}
	add(ClassWrongEncoding, p, "UTF-16, signed again", resigned(func(g *gen, body []byte) []byte {
		return hostile.UTF16(body, g.IntN(2) == 0, g.IntN(2) == 0)
	}))
	add(ClassWrongEncoding, p, "invalid UTF-8 inserted, signed again", resigned(func(g *gen, body []byte) []byte {
		i := 1 + g.IntN(len(body)-2)
		return append(append(bytes.Clone(body[:i]), g.Pick(hostile.InvalidUTF8)...), body[i:]...)
	}))
	add(ClassDeeplyNested, p, "a body nested far too deep, signed", resigned(func(g *gen, body []byte) []byte {
		return []byte(hostile.Nested(1000+g.IntN(9000), "[", "]", ""))
	}))
	add(ClassDeeplyNested, p, "an object nested far too deep, signed", resigned(func(g *gen, body []byte) []byte {
		return []byte(hostile.Nested(1000+g.IntN(9000), `{"a":`, "}", "1"))
	}))
}
