// Package md5sign holds the pieces of the MD5 signing rules that jpglo,
// mrnpay, cashypro and fantian share: the digest in lower- or upper-case
// hex, the sorted "name=value&...&key=SECRET" string the sorted rules hash,
// and the constant-time comparison a received value is checked with. Which
// fields take part and how each value is rendered stay in each provider's
// package, next to the seed section that says so.
package md5sign

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"sort"
	"strings"
)

// Lower is the MD5 of s in lower-case hex (32 characters).
func Lower(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Upper is the MD5 of s in upper-case hex (32 characters).
func Upper(s string) string { return strings.ToUpper(Lower(s)) }

// Equal reports whether a and b are the same bytes, in time that depends
// on their lengths only: for signatures and the account ids checked
// beside them.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// SortedString is the text the sorted rules hash: every entry of fields
// sorted by name in byte order (the seeds' "ASCII 升序"), written
// name=value, each followed by "&", then "key=" + secret. Callers leave out
// the fields their rule skips (nil, empty, "sign") and render the values
// first. It contains the secret: never log it.
func SortedString(fields map[string]string, secret string) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(fields[k])
		b.WriteByte('&')
	}
	b.WriteString("key=")
	b.WriteString(secret)
	return b.String()
}
