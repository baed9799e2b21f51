package badinput

import (
	"bytes"
	"slices"
	"strings"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// The mutations every described provider gets, beside its own: what they
// must get follows from ingress (the body limit, the URL) or from the
// provider's hostile.Wire.

// addPreserving adds the mutations that leave a callback valid: every
// provider, described or simulated, gets them.
func addPreserving(add addFunc, p string) {
	add(ClassPreserving, p, "content type changed, body untouched", func(g *gen, b *base) (hostile.Result, error) {
		h, body, err := g.sign(b)
		if err != nil {
			return hostile.Result{}, err
		}
		if ct := g.Pick(hostile.OtherContentTypes); ct == "" {
			h.Del("Content-Type")
		} else {
			h.Set("Content-Type", ct)
		}
		return hostile.Result{Header: h, Body: body, Want: hostile.Valid("decoders read the body, never the Content-Type header")}, nil
	})
	add(ClassPreserving, p, "exact replay of an accepted callback", func(g *gen, b *base) (hostile.Result, error) {
		*b = *g.original(p)
		return hostile.Result{Header: b.cb.Header.Clone(), Body: b.cb.Body, Want: hostile.Valid("a provider retry: acknowledged again, one event")}, nil
	})
}

// addWire adds the body-level mutations of described provider p: cut,
// over and at the body limit, another provider's callback on its URL.
func addWire(add addFunc, p string) {
	wire := targets[p].HostileWire()
	signedThen := func(w func(g *gen) Want, f func(g *gen, body []byte) []byte) func(*gen, *base) (hostile.Result, error) {
		return func(g *gen, b *base) (hostile.Result, error) {
			h, body, err := g.sign(b)
			return hostile.Result{Header: h, Body: f(g, body), Want: w(g)}, err
		}
	}
	always := func(w Want) func(*gen) Want { return func(*gen) Want { return w } }
	tooLarge := always(hostile.Rejected(hostile.ReasonTooLarge))
	add(ClassTruncated, p, "body cut short", signedThen(always(wire.Truncated), func(g *gen, body []byte) []byte {
		return body[:1+g.IntN(len(body)-1)]
	}))
	add(ClassTruncated, p, "empty body", signedThen(always(hostile.Rejected(hostile.ReasonMalformed)), func(g *gen, body []byte) []byte { return []byte{} }))
	add(ClassOversized, p, "body over the ingress limit", signedThen(tooLarge, func(g *gen, body []byte) []byte {
		return padTo(wire.Format, body, int(g.limit)+1+g.IntN(4096))
	}))
	add(ClassOversized, p, "body one byte over the ingress limit", signedThen(tooLarge, func(g *gen, body []byte) []byte {
		return padTo(wire.Format, body, int(g.limit)+1)
	}))
	atLimit := func(g *gen) Want {
		if g.limit > wire.MaxBody {
			return hostile.Rejected(hostile.ReasonMalformed)
		}
		return hostile.Valid("exactly body_limit bytes is allowed; the padding is whitespace or an unsigned field")
	}
	add(ClassOversized, p, "body exactly at the ingress limit (padding only)", func(g *gen, b *base) (hostile.Result, error) {
		h, body, err := g.sign(b)
		if err != nil {
			return hostile.Result{}, err
		}
		body = padTo(wire.Format, body, int(g.limit))
		if wire.SignBody != nil {
			h, err = wire.SignBody(b.cb.Account, b.cb.Kind, body)
		}
		return hostile.Result{Header: h, Body: body, Want: atLimit(g)}, err
	})
	for _, q := range Inbound {
		if q == p {
			continue
		}
		want := wire.Foreign[targets[q].HostileWire().Format]
		add(ClassWrongProvider, p, q+" callback posted to this provider's URL", func(g *gen, b *base) (hostile.Result, error) {
			h, body, err := g.sign(g.newBase(q))
			return hostile.Result{Header: h, Body: body, Want: want}, err
		})
	}
	addURL(add, p)
}

// addURL adds the mutations of p's callback URL: a kind it does not send,
// an account it does not have, a provider that does not call back.
func addURL(add addFunc, p string) {
	add(ClassWrongKind, p, "kind the provider does not send", func(g *gen, b *base) (hostile.Result, error) {
		kind := g.Pick(append(kindsNotSent(p), "refund", "PAYIN", "Payin", "payin2", "chargeback"))
		return hostile.Result{Path: hostile.Path(p, b.cb.Account.ID, events.Kind(kind)), Want: hostile.Rejected(hostile.ReasonWrongKind)}, nil
	})
	add(ClassUnknownAccount, p, "account not configured or of another provider", func(g *gen, b *base) (hostile.Result, error) {
		ids := []string{"nosuch", b.cb.Account.ID + "-x", strings.ToUpper(b.cb.Account.ID), "a", "0"}
		for _, q := range Inbound {
			if q != p {
				ids = append(ids, g.byProv[q][0].ID)
			}
		}
		return hostile.Result{Path: hostile.Path(p, g.Pick(ids), b.cb.Kind), Want: hostile.Rejected(hostile.ReasonUnknownAccount)}, nil
	})
	add(ClassWrongProvider, p, "unknown provider in the URL", func(g *gen, b *base) (hostile.Result, error) {
		name := g.Pick(unknownProviders(p))
		return hostile.Result{Path: hostile.Path(name, b.cb.Account.ID, b.cb.Kind), Want: hostile.Rejected(hostile.ReasonUnknownProvider)}, nil
	})
}

// kindsNotSent are the callback kinds p does not send.
func kindsNotSent(p string) []string {
	in, _ := providers.Role[providers.Inbound](registry.All(), p)
	var out []string
	for _, k := range []events.Kind{events.KindPayin, events.KindPayout, events.KindAppeal} {
		if in == nil || !slices.Contains(in.Kinds(), k) {
			out = append(out, string(k))
		}
	}
	return out
}

// unknownProviders are names in a callback URL that no provider serves:
// made up ones, spellings of p, and registered providers that send no
// callbacks (whose URL is not served either).
func unknownProviders(p string) []string {
	out := []string{"paypal"}
	all := registry.All()
	for _, n := range all.Names() {
		if _, calls := providers.Role[providers.Inbound](all, n); !calls {
			out = append(out, n)
		}
	}
	return append(out, strings.ToUpper(p), p+"2", "adyen")
}

// padTo pads body to n bytes without changing what it says: an unsigned
// form field (or empty segments), trailing newlines after base64 text,
// whitespace after a JSON object's opening brace.
func padTo(f hostile.Format, body []byte, n int) []byte {
	extra := n - len(body)
	if extra <= 0 {
		return body
	}
	switch f {
	case hostile.FormatForm:
		if extra < 6 {
			return append(body, bytes.Repeat([]byte("&"), extra)...)
		}
		return append(append(body, "&pad="...), bytes.Repeat([]byte("x"), extra-5)...)
	case hostile.FormatText:
		return append(body, bytes.Repeat([]byte("\n"), extra)...)
	default:
		out := append([]byte("{"), bytes.Repeat([]byte(" "), extra)...)
		return append(out, body[1:]...)
	}
}
