package badinput

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"

	"github.com/payhook/payhook/pkg/providers"
)

// The generator's own view of an mpurse ciphertext, independent of package
// mpurse (whose behaviour is under test): it decrypts with the account's key
// to tell what a ciphertext mutation did to the plaintext. A mutation whose
// plaintext still is a JSON object is not a certain rejection, so the
// generator picks another one instead of guessing.

// plainVerdict is what a mutated mpurse ciphertext decrypts to.
type plainVerdict int

const (
	plainGarbage plainVerdict = iota // bad length, bad padding, not UTF-8 or not a JSON object: undecryptable
	plainSame                        // exactly the original plaintext: a replay
	plainJSON                        // some other JSON object: ambiguous, not used
)

// classifyCiphertext decrypts body (base64) under acct and compares with orig.
func classifyCiphertext(acct providers.Account, body, orig []byte) plainVerdict {
	ct, err := base64.StdEncoding.DecodeString(string(body))
	if err != nil || len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return plainGarbage
	}
	block, err := aes.NewCipher([]byte(acct.Key("aes_key")))
	if err != nil {
		return plainGarbage
	}
	pt := make([]byte, len(ct))
	if acct.Key("aes_mode") == "cbc" {
		cipher.NewCBCDecrypter(block, []byte(acct.Key("aes_iv"))).CryptBlocks(pt, ct)
	} else {
		for i := 0; i < len(ct); i += aes.BlockSize {
			block.Decrypt(pt[i:i+aes.BlockSize], ct[i:i+aes.BlockSize])
		}
	}
	n := int(pt[len(pt)-1])
	if n < 1 || n > aes.BlockSize {
		return plainGarbage
	}
	for _, c := range pt[len(pt)-n:] {
		if int(c) != n {
			return plainGarbage
		}
	}
	pt = pt[:len(pt)-n]
	if string(pt) == string(orig) {
		return plainSame
	}
	var m map[string]any
	if !utf8.Valid(pt) || json.Unmarshal(pt, &m) != nil || m == nil {
		return plainGarbage
	}
	return plainJSON
}
