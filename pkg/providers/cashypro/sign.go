package cashypro

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/payhook/payhook/pkg/providers/internal/md5sign"
)

// Signing rules selectable per account (providers.Account.Key("sign_rule")). The
// seed gives no rule (both its examples carry the same placeholder Sign),
// so each is an assumption; a rule name is the string that is hashed, then
// the hex case of the digest we send ("upper" or "lower"):
//
//   - sorted: the body's top-level fields whose value is neither null nor
//     "", sorted by name, "name=value" joined with "&", then "&key=" +
//     secret (docs/providers.md "cashypro", the default);
//   - sorted-empty: the same, but a field whose value is "" takes part
//     ("payCode=&"); only null is skipped. This is jpglo's rule (seed 004,
//     "Empty strings are included"), which providers of this family share;
//   - body: the raw body bytes exactly as sent, followed directly by the
//     secret, with no separator.
//
// Inbound, the case of a received Sign does not matter (see Verify), so
// "-upper" and "-lower" of one string verify alike; they differ in what
// Sign returns, and so in the header of our queries.
const (
	// RuleDefault is RuleSortedUpper, the assumption docs/providers.md states.
	RuleDefault          = "default"
	RuleSortedUpper      = "sorted-upper"
	RuleSortedLower      = "sorted-lower"
	RuleSortedEmptyUpper = "sorted-empty-upper"
	RuleSortedEmptyLower = "sorted-empty-lower"
	RuleBodyUpper        = "body-upper"
	RuleBodyLower        = "body-lower"
)

// Rules lists every rule name, RuleDefault first. ValidRule also accepts
// "", which means RuleDefault.
var Rules = []string{RuleDefault, RuleSortedUpper, RuleSortedLower, RuleSortedEmptyUpper, RuleSortedEmptyLower, RuleBodyUpper, RuleBodyLower}

// ErrSignRule reports a SignRule this package does not know.
var ErrSignRule = errors.New("cashypro: unknown sign rule")

// ValidRule reports whether rule is "" or one of Rules.
func ValidRule(rule string) bool {
	_, err := ruleOf(rule)
	return err == nil
}

// form is which string a rule hashes.
type form int

const (
	formSorted      form = iota // sorted fields, null and "" skipped
	formSortedEmpty             // sorted fields, null skipped, "" kept
	formBody                    // raw body + secret
)

// signRule is a parsed rule name.
type signRule struct {
	form  form
	upper bool
}

func ruleOf(name string) (signRule, error) {
	switch name {
	case "", RuleDefault, RuleSortedUpper:
		return signRule{formSorted, true}, nil
	case RuleSortedLower:
		return signRule{formSorted, false}, nil
	case RuleSortedEmptyUpper:
		return signRule{formSortedEmpty, true}, nil
	case RuleSortedEmptyLower:
		return signRule{formSortedEmpty, false}, nil
	case RuleBodyUpper:
		return signRule{formBody, true}, nil
	case RuleBodyLower:
		return signRule{formBody, false}, nil
	}
	return signRule{}, fmt.Errorf("%w %q", ErrSignRule, clip(name))
}

// Sign computes the Sign header for a JSON body under rule (see Rules).
// For the sorted rules each value is rendered exactly as written in the
// body: a number keeps its digits (20000.00 stays "20000.00", 2500.0000
// stays "2500.0000"), a string is unescaped and unquoted, true/false as
// written, a nested object or array as its JSON text. The digest is MD5
// in upper-case hex for "", "default" and the "-upper" rules, lower-case
// for the "-lower" ones. Whatever the rule, the body must be one JSON
// object without duplicate keys.
func Sign(body []byte, secret, rule string) (string, error) {
	r, err := ruleOf(rule)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(body) {
		return "", fmt.Errorf("cashypro: body is not UTF-8")
	}
	o, err := parseObject(body)
	if err != nil {
		return "", err
	}
	s, err := signingString(o, secret, r.form)
	if err != nil {
		return "", err
	}
	return digest(s, r.upper), nil
}

func digest(s string, upper bool) string {
	if upper {
		return md5sign.Upper(s)
	}
	return md5sign.Lower(s)
}

// signingString is the text rule form f hashes for o. It contains the
// secret: never log it.
func signingString(o *object, secret string, f form) (string, error) {
	if f == formBody {
		return string(o.b) + secret, nil
	}
	fields := make(map[string]string, len(o.keys))
	for _, k := range o.keys {
		var v string
		switch o.fields[k].(type) {
		case map[string]any, []any:
			v = string(o.rawOf(k)) // nested values sign as written
		default:
			t, ok, err := o.text(k)
			if err != nil {
				return "", err
			}
			if !ok {
				continue // null
			}
			v = t
		}
		if v == "" && f == formSorted {
			continue
		}
		fields[k] = v
	}
	return md5sign.SortedString(fields, secret), nil
}
