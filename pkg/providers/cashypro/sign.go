package cashypro

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/payhook/payhook/pkg/providers/internal/md5sign"
)

// Signing rules selectable per account (providers.Account.SignRule).
const (
	// RuleDefault is the assumed rule (PROVIDERS.md "cashypro", Gap): upper-case hex.
	RuleDefault = "default"
	// RuleSortedUpper is RuleDefault spelled out.
	RuleSortedUpper = "sorted-upper"
	// RuleSortedLower is the same string and digest rendered in lower-case hex.
	RuleSortedLower = "sorted-lower"
)

// ErrSignRule reports a SignRule this package does not know.
var ErrSignRule = errors.New("cashypro: unknown sign rule")

// ValidRule reports whether rule names a signing rule: "", "default",
// "sorted-upper" or "sorted-lower".
func ValidRule(rule string) bool {
	_, err := upperHex(rule)
	return err == nil
}

func upperHex(rule string) (bool, error) {
	switch rule {
	case "", RuleDefault, RuleSortedUpper:
		return true, nil
	case RuleSortedLower:
		return false, nil
	default:
		return false, fmt.Errorf("%w %q", ErrSignRule, clip(rule))
	}
}

// Sign computes the Sign header for a JSON body under the assumed rule:
// take the body's top-level fields whose value is neither null nor the
// empty string, sort them by name (byte order), render each value exactly
// as written in the body (a number keeps its digits, 20000.00 stays
// "20000.00" and 2500.0000 stays "2500.0000"; a string is unescaped and
// unquoted; true/false as written; a nested object or array as its JSON
// text), join "name=value" with "&", append "&key=" + secret, and MD5 it:
// upper-case hex for "", "default" and "sorted-upper", lower-case for
// "sorted-lower". The body must be one JSON object without duplicate keys.
func Sign(body []byte, secret, rule string) (string, error) {
	upper, err := upperHex(rule)
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
	s, err := signingString(o, secret)
	if err != nil {
		return "", err
	}
	return digest(s, upper), nil
}

func digest(s string, upper bool) string {
	if upper {
		return md5sign.Upper(s)
	}
	return md5sign.Lower(s)
}

func signingString(o *object, secret string) (string, error) {
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
		if v == "" {
			continue
		}
		fields[k] = v
	}
	return md5sign.SortedString(fields, secret), nil
}
