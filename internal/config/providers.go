package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/payhook/payhook/pkg/providers"
)

// checkCredentials refuses two accounts of one provider with the same
// callback identity (providers.CallbackIdentity: the key callbacks verify
// under, with the merchant id they carry where they carry one): a callback
// verifying under both would be stored once per account URL it is posted
// to, as two events with different ids.
func checkCredentials(p Providers, accounts []providers.Account) error {
	first := map[[2]string]int{}
	for i, a := range accounts {
		id, what, ok := p.CallbackIdentity(a)
		if !ok {
			continue
		}
		k := [2]string{a.Provider, id}
		if j, ok := first[k]; ok {
			return errf(fmt.Sprintf("accounts[%d]", i), "account %q has the same %s as accounts[%d] %q: a callback would verify for both", a.ID, what, j, accounts[j].ID)
		}
		first[k] = i
	}
	return nil
}

// Providers is what config needs from the providers a binary links (a
// *providers.Set): which names exist, and each provider's check of its own
// keys of an account (a *providers.KeyError naming the key).
type Providers interface {
	Names() []string
	Known(name string) bool
	CheckAccount(acct providers.Account) error
	CallbackIdentity(acct providers.Account) (id, what string, ok bool)
}

// CheckProviders checks what only the linked providers know: every
// provider named in accounts, reconciler.providers and subscriber filters
// exists, and each account's provider keys are what its provider takes.
// Parse cannot: config links no provider, so that a binary which handles
// no callbacks (the dispatcher) links none either. Every binary that does
// calls it right after Load (cli.Flags.Providers).
func (c *Config) CheckProviders(p Providers) error {
	want := strings.Join(p.Names(), ", ")
	for i, a := range c.Accounts {
		k := fmt.Sprintf("accounts[%d]", i)
		if !p.Known(a.Provider) {
			return errf(k+".provider", "unknown provider %q (want one of %s)", a.Provider, want)
		}
		if err := p.CheckAccount(a); err != nil {
			var ke *providers.KeyError
			if errors.As(err, &ke) {
				key := k + "." + ke.Key
				if line, ok := c.lines[key]; ok && strings.HasPrefix(ke.Msg, "unknown key") {
					return errf(key, "%s (line %d)", ke.Msg, line)
				}
				return errf(key, "%s", ke.Msg)
			}
			return errf(k, "%s", oneLine(err.Error()))
		}
	}
	if err := checkCredentials(p, c.Accounts); err != nil {
		return err
	}
	names := make([]string, 0, len(c.Reconciler.Providers))
	for name := range c.Reconciler.Providers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !p.Known(name) {
			return errf("reconciler.providers."+name, "unknown provider (want one of %s)", want)
		}
	}
	for i, s := range c.Subscribers {
		for _, name := range s.Filter.Providers {
			if !p.Known(name) {
				return errf(fmt.Sprintf("subscribers[%d].filter.providers", i), "unknown provider %q", name)
			}
		}
	}
	return nil
}
