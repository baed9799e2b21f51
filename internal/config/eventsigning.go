package config

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/payhook/payhook/pkg/events"
)

// EventSigning holds the keys of the ed25519 signatures every event message
// on the bus carries (pkg/events "Signed events on the bus"). Producers
// (ingress, reconciler) sign with PrivateKey; the dispatcher, and any other
// reader, verifies under PublicKeys, several while a key is rotated.
type EventSigning struct {
	// PrivateKey is "whsk_" + base64 of a 32-byte ed25519 seed.
	PrivateKey string `yaml:"private_key"`
	// PublicKeys are "whpk_" + base64 of a 32-byte ed25519 public key.
	PublicKeys []string `yaml:"public_keys"`
	// Disabled turns signing and checking off, on purpose only: then any
	// client that can publish on payhook.events.> can have the dispatcher
	// deliver a made-up event. Every binary says so at start.
	Disabled bool `yaml:"disabled"`
}

// placeholderKeyBytes is a published example key: whsk_ or whpk_ + base64
// of these 32 bytes is well-formed, and a producer configured with it would
// sign with a seed anyone can read, so it is refused like the REPLACE
// placeholders.
const placeholderKeyBytes = "REPLACE-ME-with-payhook-keygen!!"

// placeholderKeyProblem is the error for a placeholder key.
const placeholderKeyProblem = "replace the placeholder: generate a pair with payhook-keygen (private_key for ingress and the reconciler, public_key for the dispatcher)"

// isPlaceholderKey reports whether s, a private or public key as written in
// a config, is a placeholder: anything starting with whsk_REPLACE or
// whpk_REPLACE (the shipped ones), or the published placeholder bytes
// above under either prefix. The compose dev pair and the test pair are
// real keys and pass: devstack and the tests use them on purpose.
func isPlaceholderKey(s, prefix string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return false
	}
	if strings.HasPrefix(rest, "REPLACE") {
		return true
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	return err == nil && string(raw) == placeholderKeyBytes
}

// parsePrivateKey is events.ParsePrivateKey refusing placeholders, with
// the problem as one line for key.
func parsePrivateKey(raw string) (events.PrivateKey, error) {
	if isPlaceholderKey(raw, events.PrivateKeyPrefix) {
		return events.PrivateKey{}, errf("event_signing.private_key", "%s", placeholderKeyProblem)
	}
	k, err := events.ParsePrivateKey(raw)
	if err != nil {
		return events.PrivateKey{}, errf("event_signing.private_key", "%s", keyProblem(err))
	}
	return k, nil
}

// parsePublicKey is events.ParsePublicKey refusing placeholders, with the
// problem as one line for public_keys[i].
func parsePublicKey(raw string, i int) (events.PublicKey, error) {
	key := fmt.Sprintf("event_signing.public_keys[%d]", i)
	if isPlaceholderKey(raw, events.PublicKeyPrefix) {
		return events.PublicKey{}, errf(key, "%s", placeholderKeyProblem)
	}
	k, err := events.ParsePublicKey(raw)
	if err != nil {
		return events.PublicKey{}, errf(key, "%s", keyProblem(err))
	}
	return k, nil
}

// validate checks the format of the keys that are given, and that none is
// a placeholder; which keys a binary needs is its role's business (Signer,
// PublicKeyList).
func (s EventSigning) validate() error {
	if s.PrivateKey != "" {
		if _, err := parsePrivateKey(s.PrivateKey); err != nil {
			return err
		}
	}
	for i, k := range s.PublicKeys {
		if _, err := parsePublicKey(k, i); err != nil {
			return err
		}
	}
	return nil
}

// keyProblem is the parser's message without its sentinel's prefix.
func keyProblem(err error) string {
	return strings.TrimPrefix(err.Error(), events.ErrKey.Error()+": ")
}

// Signer returns the signer of a producer role (role names it in the
// error): nil when signing is disabled, a *Error naming
// event_signing.private_key when no key is configured.
func (s EventSigning) Signer(role string) (*events.Signer, error) {
	if s.Disabled {
		return nil, nil
	}
	if s.PrivateKey == "" {
		return nil, errf("event_signing.private_key", "required by the %s, which signs every event it stores (or event_signing.disabled: true, on purpose)", role)
	}
	k, err := parsePrivateKey(s.PrivateKey)
	if err != nil {
		return nil, err
	}
	return events.NewSigner(k)
}

// PublicKeyList returns the keys a reader role verifies under: nil when
// signing is disabled, a *Error naming event_signing.public_keys when none
// is configured.
func (s EventSigning) PublicKeyList(role string) ([]events.PublicKey, error) {
	if s.Disabled {
		return nil, nil
	}
	if len(s.PublicKeys) == 0 {
		return nil, errf("event_signing.public_keys", "required by the %s, which delivers only events signed by one of them (or event_signing.disabled: true, on purpose)", role)
	}
	keys := make([]events.PublicKey, 0, len(s.PublicKeys))
	for i, raw := range s.PublicKeys {
		k, err := parsePublicKey(raw, i)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// DisabledWarning is what every binary logs at start while signing is
// disabled.
const DisabledWarning = "event_signing.disabled is true: events on the bus are neither signed nor checked, and anyone who can publish on payhook.events.> can have a made-up event delivered"
