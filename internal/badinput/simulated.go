package badinput

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// The registered providers with their own simulated side
// (providers.Simulated: stripe) are covered by the mutations that need
// nothing but that side: callbacks it renders (SimCallback), and bodies the
// generator mutates and has it sign again (SimSign), on one demo account
// each. The reasons a generic mutation may get are the shared vocabulary
// (malformed, bad_signature, ...); which one depends on where the
// provider's own checks first fail.

// simulatedSides are those providers, by name.
var simulatedSides = providers.With[providers.Simulated](registry.All())

// Simulated lists them in registration order.
var Simulated = func() []string {
	var out []string
	for _, name := range registry.All().Names() {
		if _, ok := simulatedSides[name]; ok {
			out = append(out, name)
		}
	}
	return out
}()

// simSignedAt is when the simulated providers' callbacks are signed: once
// per process, to the minute, so that the corpora one process generates
// from a seed are the same byte for byte. A provider whose signature covers
// the time of sending (stripe, 300 s) refuses a corpus sent much later than
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

// newSimBase is a fresh order of a simulated provider: a kind it sends,
// succeeded or failed, amt minor units (in the currency's precision).
func (g *gen) newSimBase(b *base, id string, amt int64) {
	sp := simulatedSides[b.prov]
	kinds := sp.SimKinds()
	b.kind = kinds[g.rng.IntN(len(kinds))]
	exp := sp.SimExponent(b.kind, b.acct.Currency)
	m, err := events.MoneyFromMinor(strconv.FormatInt(amt, 10), exp, b.acct.Currency)
	if err != nil {
		m = events.MustMoney("1", b.acct.Currency)
	}
	st := events.StatusSucceeded
	if g.rng.IntN(4) == 0 {
		st = events.StatusFailed
	}
	o := providers.SimOrder{Kind: b.kind, MerchantOrderID: id, Amount: m, Paid: m, Status: st, CompletedAt: simSignedAt}
	sp.SimIDs(&o, g.digits)
	b.sim = &o
}

// addSimulated adds the generic mutations for simulated provider p.
func addSimulated(add addFunc, p string) {
	sp := simulatedSides[p]
	// Where a damaged body fails first is the provider's business: its
	// signature, its decryption or its decoder.
	damaged := rejected(ReasonBadSignature, ReasonMalformed, ReasonMissingField, ReasonUndecryptable)
	resigned := func(g *gen, b *base, body []byte) (result, error) {
		h, err := sp.SimSign(b.acct, b.kind, body, simSignedAt)
		return result{hdr: h, body: body, want: rejected(ReasonMalformed, ReasonMissingField, ReasonBadAmount, ReasonInvalidEvent)}, err
	}
	addPreserving(add, p)
	add(ClassTruncated, p, "body cut short", func(g *gen, b *base) (result, error) {
		h, body, err := g.sign(b)
		return result{hdr: h, body: body[:1+g.rng.IntN(len(body)-1)], want: damaged}, err
	})
	add(ClassTruncated, p, "empty body", func(g *gen, b *base) (result, error) {
		h, _, err := g.sign(b)
		return result{hdr: h, body: []byte{}, want: damaged}, err
	})
	add(ClassTampered, p, "one byte of the body changed, not signed again", func(g *gen, b *base) (result, error) {
		h, body, err := g.sign(b)
		body = bytes.Clone(body)
		i := g.rng.IntN(len(body))
		body[i] ^= byte(1 + g.rng.IntN(0x7e))
		return result{hdr: h, body: body, want: damaged}, err
	})
	add(ClassReplayTampered, p, "an accepted callback replayed with a byte changed", func(g *gen, b *base) (result, error) {
		orig := g.originals[p][g.rng.IntN(len(g.originals[p]))]
		*b = *orig
		body := bytes.Clone(orig.body)
		body[len(body)/2] ^= 0x01
		return result{hdr: orig.hdr.Clone(), body: body, want: damaged}, nil
	})
	add(ClassBadSignature, p, "signed with another key", func(g *gen, b *base) (result, error) {
		h, body, err := sp.SimCallback(b.acct, *b.sim, simSignedAt, true)
		return result{hdr: h, body: body, want: rejected(ReasonBadSignature, ReasonUndecryptable, ReasonMissingField)}, err
	})
	add(ClassOversized, p, "body over the ingress limit", func(g *gen, b *base) (result, error) {
		h, body, err := g.sign(b)
		big := append(bytes.Clone(body), bytes.Repeat([]byte(" "), int(g.limit)+1-len(body)+g.rng.IntN(4096))...)
		return result{hdr: h, body: big, want: rejected(ReasonTooLarge)}, err
	})
	add(ClassWrongEncoding, p, "UTF-16, signed again", func(g *gen, b *base) (result, error) {
		_, body, err := g.sign(b)
		if err != nil {
			return result{}, err
		}
		return resigned(g, b, toUTF16(body, g.rng.IntN(2) == 0, g.rng.IntN(2) == 0))
	})
	add(ClassWrongEncoding, p, "invalid UTF-8 inserted, signed again", func(g *gen, b *base) (result, error) {
		_, body, err := g.sign(b)
		if err != nil {
			return result{}, err
		}
		i := 1 + g.rng.IntN(len(body)-2)
		bad := append(append(bytes.Clone(body[:i]), g.pick(invalidUTF8)...), body[i:]...)
		return resigned(g, b, bad)
	})
	add(ClassDeeplyNested, p, "a body nested far too deep, signed", func(g *gen, b *base) (result, error) {
		return resigned(g, b, []byte(nested(1000+g.rng.IntN(9000), "[", "]", "")))
	})
	add(ClassDeeplyNested, p, "an object nested far too deep, signed", func(g *gen, b *base) (result, error) {
		return resigned(g, b, []byte(nested(1000+g.rng.IntN(9000), `{"a":`, "}", "1")))
	})
	add(ClassWrongKind, p, "kind the provider does not send", func(g *gen, b *base) (result, error) {
		in, _ := providers.Role[providers.Inbound](registry.All(), p)
		var kinds []string
		for _, k := range []events.Kind{events.KindPayin, events.KindPayout, events.KindAppeal} {
			if in == nil || !slices.Contains(in.Kinds(), k) {
				kinds = append(kinds, string(k))
			}
		}
		kinds = append(kinds, "refund", "PAYIN", "chargeback")
		return result{path: "/v1/callbacks/" + p + "/" + b.acct.ID + "/" + g.pick(kinds), want: rejected(ReasonWrongKind)}, nil
	})
	add(ClassUnknownAccount, p, "account not configured or of another provider", func(g *gen, b *base) (result, error) {
		ids := []string{"nosuch", b.acct.ID + "-x", strings.ToUpper(b.acct.ID), g.byProv[Inbound[0]][0].ID}
		return result{path: "/v1/callbacks/" + p + "/" + g.pick(ids) + "/" + string(b.kind), want: rejected(ReasonUnknownAccount)}, nil
	})
}
