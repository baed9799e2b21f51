package mpurse

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"

	"github.com/payhook/payhook/pkg/providers"
)

// CheckAccount reports whether acct's AES key, mode and IV are usable.
func CheckAccount(acct providers.Account) error {
	_, err := newCipher(acct)
	return err
}

type aesSpec struct {
	block cipher.Block
	cbc   bool
	iv    []byte
}

func newCipher(acct providers.Account) (aesSpec, error) {
	block, err := aes.NewCipher([]byte(acct.Key("aes_key")))
	if err != nil {
		return aesSpec{}, providers.Reject(providers.ReasonBadConfig, providers.ErrDecrypt, "aes key must be 16, 24 or 32 bytes, got %d", len(acct.Key("aes_key")))
	}
	switch acct.Key("aes_mode") {
	case "", "ecb", "ECB":
		return aesSpec{block: block}, nil
	case "cbc", "CBC":
		if len(acct.Key("aes_iv")) != aes.BlockSize {
			return aesSpec{}, providers.Reject(providers.ReasonBadConfig, providers.ErrDecrypt, "aes iv must be 16 bytes for cbc, got %d", len(acct.Key("aes_iv")))
		}
		return aesSpec{block: block, cbc: true, iv: []byte(acct.Key("aes_iv"))}, nil
	default:
		return aesSpec{}, providers.Reject(providers.ReasonBadConfig, providers.ErrDecrypt, "aes mode %q (want ecb or cbc)", clip(acct.Key("aes_mode")))
	}
}

// Encrypt produces the body MPurse would send for plaintext under acct's key,
// mode and IV: BASE64(AES(PKCS#7(plaintext))), standard alphabet with padding.
// The simulator and load generator use it.
func Encrypt(acct providers.Account, plaintext []byte) (string, error) {
	spec, err := newCipher(acct)
	if err != nil {
		return "", err
	}
	n := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := make([]byte, len(plaintext)+n)
	copy(buf, plaintext)
	for i := len(plaintext); i < len(buf); i++ {
		buf[i] = byte(n)
	}
	if spec.cbc {
		cipher.NewCBCEncrypter(spec.block, spec.iv).CryptBlocks(buf, buf)
	} else {
		for i := 0; i < len(buf); i += aes.BlockSize {
			spec.block.Encrypt(buf[i:i+aes.BlockSize], buf[i:i+aes.BlockSize])
		}
	}
	return base64.StdEncoding.EncodeToString(buf), nil
}

// Decrypt turns a callback body into its plaintext: base64-decode, AES
// decrypt, strip PKCS#7 padding. Errors are *providers.RejectError with
// reason malformed (empty, too large, not base64), undecryptable (length,
// padding) or bad_config (key, mode, IV).
func Decrypt(acct providers.Account, body []byte) ([]byte, error) {
	spec, err := newCipher(acct)
	if err != nil {
		return nil, err
	}
	if len(body) > MaxBody {
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "body larger than %d bytes", MaxBody)
	}
	text := bytes.TrimSpace(body)
	if len(text) == 0 {
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "empty body")
	}
	ct, err := decodeBase64(text)
	if err != nil {
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "body is not base64")
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, providers.Reject(providers.ReasonUndecryptable, providers.ErrDecrypt, "ciphertext of %d bytes is not whole AES blocks", len(ct))
	}
	if spec.cbc {
		cipher.NewCBCDecrypter(spec.block, spec.iv).CryptBlocks(ct, ct)
	} else {
		for i := 0; i < len(ct); i += aes.BlockSize {
			spec.block.Decrypt(ct[i:i+aes.BlockSize], ct[i:i+aes.BlockSize])
		}
	}
	n, ok := pkcs7(ct)
	if !ok {
		return nil, providers.Reject(providers.ReasonUndecryptable, providers.ErrDecrypt, "bad padding")
	}
	return ct[:len(ct)-n], nil
}

// decodeBase64 accepts standard base64 with padding, or without it. Strict
// decoding refuses non-zero trailing bits, so one ciphertext has one
// spelling; CR and LF are still skipped by the decoder.
func decodeBase64(text []byte) ([]byte, error) {
	// Sized for the larger unpadded reading, which Decode may need before it fails.
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(text))+3)
	n, err := base64.StdEncoding.Strict().Decode(out, text)
	if err != nil && bytes.IndexByte(text, '=') < 0 {
		n, err = base64.RawStdEncoding.Strict().Decode(out, text)
	}
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

// pkcs7 returns the pad length of the last block, checking every pad byte
// without branching on secret data.
func pkcs7(b []byte) (int, bool) {
	last := b[len(b)-aes.BlockSize:]
	n := int(last[aes.BlockSize-1])
	good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, aes.BlockSize)
	for i := 0; i < aes.BlockSize; i++ {
		// Bytes at positions >= 16-n must equal n.
		inPad := subtle.ConstantTimeLessOrEq(aes.BlockSize-n, i)
		eq := subtle.ConstantTimeByteEq(last[i], byte(n))
		good &= eq | (inPad ^ 1)
	}
	return n, good == 1
}
