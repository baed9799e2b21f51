package mpurse

import (
	"unicode/utf8"

	"github.com/payhook/payhook/pkg/providers"
)

var _ providers.ClaimedOrder = (*Provider)(nil)

// maxClaimedLen bounds a claimed order id (mpQueryId); MPurse's are tens of bytes.
const maxClaimedLen = 128

// ClaimedOrder reads mpQueryId, the order id of the callback, from a body
// that decrypts under acct's key but was refused all the same (another
// partnerId, a field missing, a bad amount...). A body that does not
// decrypt claims nothing: its order id is unreadable ciphertext. Decrypt's
// answer is never shown to the caller (ingress only files the refusal's
// record under it), so this is no padding oracle.
func (p *Provider) ClaimedOrder(acct providers.Account, req providers.Request) (string, bool) {
	plain, err := Decrypt(acct, req.Body)
	if err != nil || !utf8.Valid(plain) {
		return "", false
	}
	fields, err := decodeObject(plain)
	if err != nil {
		return "", false
	}
	s, ok, err := stringField(fields, "mpQueryId")
	if err != nil || !ok || s == "" || len(s) > maxClaimedLen {
		return "", false
	}
	return s, true
}
