package hostile

import (
	"strings"

	"github.com/payhook/payhook/pkg/providers"
)

// Class is a mutation class.
type Class string

// The mutation classes.
const (
	ClassValid           Class = "valid"              // an unmutated, validly signed callback (the originals)
	ClassPreserving      Class = "preserving"         // a mutation that keeps the signed content: must still be accepted
	ClassTruncated       Class = "truncated"          // the body cut short (including empty)
	ClassTampered        Class = "tampered"           // a signed value changed without re-signing
	ClassReplayTampered  Class = "replay_tampered"    // an accepted callback replayed with a change
	ClassBadSignature    Class = "bad_signature"      // signed with the wrong key, or the signature damaged
	ClassOversized       Class = "oversized"          // body over the ingress body limit
	ClassHugeField       Class = "huge_field"         // a validly signed field far longer than the provider allows
	ClassWrongEncoding   Class = "wrong_encoding"     // latin-1, UTF-16, invalid UTF-8, BOM
	ClassUnicodeEdge     Class = "unicode_edge"       // RTL marks, zero-width joiners, combining chars, emoji, NUL
	ClassContentType     Class = "wrong_content_type" // body in the format another content type names
	ClassDuplicateKey    Class = "duplicate_key"      // a key (or header) given twice
	ClassDeeplyNested    Class = "deeply_nested"      // nesting far past any decoder's depth limit
	ClassHugeNumber      Class = "huge_number"        // amounts out of range, exponents, negatives, fractions of minor units
	ClassSemantic        Class = "semantic"           // validly signed but a required field missing, of the wrong type or status
	ClassAccountMismatch Class = "account_mismatch"   // validly signed for the account but naming another merchant
	ClassCrossAccount    Class = "cross_account"      // a callback for one account posted to another of the same provider
	ClassWrongKind       Class = "wrong_kind"         // a kind the provider does not send, or a body of the other kind
	ClassUnknownAccount  Class = "unknown_account"    // an account that does not exist or belongs to another provider
	ClassWrongProvider   Class = "wrong_provider"     // another provider's callback, or an unknown provider, in the URL
)

// The reject reasons ingress and the providers answer with ({"error":
// reason}) that mutations expect, as strings: the vocabulary is
// providers.Reason.
const (
	ReasonBadSignature    = string(providers.ReasonBadSignature)
	ReasonUndecryptable   = string(providers.ReasonUndecryptable)
	ReasonMalformed       = string(providers.ReasonMalformed)
	ReasonMissingField    = string(providers.ReasonMissingField)
	ReasonAccountMismatch = string(providers.ReasonAccountMismatch)
	ReasonBadAmount       = string(providers.ReasonBadAmount)
	ReasonBadStatus       = string(providers.ReasonBadStatus)
	ReasonWrongKind       = string(providers.ReasonWrongKind)
	ReasonUnknownAccount  = string(providers.ReasonUnknownAccount)
	ReasonUnknownProvider = string(providers.ReasonUnknownProvider)
	ReasonTooLarge        = string(providers.ReasonTooLarge)
	ReasonTooOld          = string(providers.ReasonTooOld)
	ReasonInvalidEvent    = string(providers.ReasonInvalidEvent)
	ReasonIPNotAllowed    = string(providers.ReasonIPNotAllowed)
	ReasonUnreadable      = string(providers.ReasonUnreadable)
	ReasonNoKey           = string(providers.ReasonNoKey)
	ReasonBadConfig       = string(providers.ReasonBadConfig)
	ReasonInvalid         = string(providers.ReasonInvalid)
)

// Want is what ingress must do with a case.
type Want struct {
	// Valid cases must be acknowledged (HTTP 200, the provider's own reply).
	Valid bool
	// Why says why a Valid mutation still verifies; empty for rejections.
	Why string
	// Reasons are the reject reasons the mutation allows; the first is the
	// usual one. One reason when the class determines it.
	Reasons []string
}

// Valid is the Want of a mutation that must be accepted, and why.
func Valid(why string) Want { return Want{Valid: true, Why: why} }

// Rejected is the Want of a mutation that must be refused with one of reasons.
func Rejected(reasons ...string) Want { return Want{Reasons: reasons} }

// String is "valid (why)" or "rejected reason|reason", for messages.
func (w Want) String() string {
	if w.Valid {
		return "valid (" + w.Why + ")"
	}
	return "rejected " + strings.Join(w.Reasons, "|")
}
