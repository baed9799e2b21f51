package mpurse

import (
	"crypto/aes"
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"

	"github.com/payhook/payhook/pkg/providers"
)

// The bad-input corpus's own view of a ciphertext, written apart from
// Decrypt (whose behaviour is under test): it decrypts with the account's
// key to tell what a ciphertext mutation did to the plaintext. A mutation
// whose plaintext still is a JSON object is not a certain rejection, so the
// mutation draws another one instead of guessing.

// plainVerdict is what a mutated ciphertext decrypts to.
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
	pt := decryptBlocks(acct, ct)
	if pt == nil {
		return plainGarbage
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

// ciphertextOf is the ciphertext of a body Encrypt made.
func ciphertextOf(body []byte) []byte {
	ct, err := base64.StdEncoding.DecodeString(string(body))
	if err != nil {
		panic("mpurse: a body Encrypt made is not base64: " + err.Error())
	}
	return ct
}

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// flipB64 replaces one base64 character in the first three quarters of s
// (never the last quantum, whose spare bits strict decoding checks) with
// another alphabet character: the ciphertext changes, the encoding stays valid.
func flipB64(intN func(int) int, s []byte) []byte {
	out := append([]byte(nil), s...)
	i := intN(len(out) * 3 / 4)
	c := out[i]
	for out[i] == c {
		out[i] = b64Alphabet[intN(64)]
	}
	return out
}
