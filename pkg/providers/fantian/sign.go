package fantian

import (
	"github.com/payhook/payhook/pkg/providers/internal/md5sign"
)

// Signing rules selectable per account (providers.Account.Key("sign_rule")).
const (
	RuleDefault     = "default"      // sorted, &key=, MD5, lower-case hex
	RuleSortedLower = "sorted-lower" // the same, spelled out
	RuleSortedUpper = "sorted-upper" // the same string, upper-case hex
)

// ValidRule reports whether rule names a signing rule: "", "default",
// "sorted-lower" or "sorted-upper".
func ValidRule(rule string) bool {
	switch rule {
	case "", RuleDefault, RuleSortedLower, RuleSortedUpper:
		return true
	}
	return false
}

// Sign computes the sign field: every parameter except "sign" whose value is
// not empty, sorted by name (byte order), joined as "name=value" with "&",
// then "&key=" + secret appended, MD5; lower-case hex unless rule is
// "sorted-upper". An unknown rule signs like the default; SubmitReference
// refuses unknown rules before signing.
func Sign(params map[string]string, secret, rule string) string {
	fields := make(map[string]string, len(params))
	for k, v := range params {
		if k != "sign" && v != "" {
			fields[k] = v
		}
	}
	s := md5sign.SortedString(fields, secret)
	if rule == RuleSortedUpper {
		return md5sign.Upper(s)
	}
	return md5sign.Lower(s)
}
