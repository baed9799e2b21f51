package mpurse

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"net/http"

	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// The one place that renders, encrypts and (for tests) decrypts MPurse's
// callbacks: the simulator (sim.go) and the bad-input corpus (hostile.go)
// both post what these build.

// callback is seed 001's plaintext as its fields' values.
type callback struct {
	MpQueryID, PayerVA, BankRRN string
	// PayerAmount is rupees with two decimals ("1234.50").
	PayerAmount, PayChannel, TxnStatus string
	// TxnCompletionDate is "yyyyMMddHHmmss" in IST; "" leaves it out.
	TxnCompletionDate     string
	PartnerID, ReceiverVA string
	// ErrorMsg "" leaves it out.
	ErrorMsg string
}

// obj is the plaintext JSON object, fields in the seed's order.
func (c callback) obj() *hostile.Obj {
	o := (&hostile.Obj{}).
		Set("mpQueryId", hostile.Str(c.MpQueryID)).Set("payerVA", hostile.Str(c.PayerVA)).
		Set("bankRRN", hostile.Str(c.BankRRN)).Set("payerAmount", hostile.Str(c.PayerAmount)).
		Set("payChannel", hostile.Str(c.PayChannel)).Set("txnStatus", hostile.Str(c.TxnStatus))
	if c.TxnCompletionDate != "" {
		o.Set("txnCompletionDate", hostile.Str(c.TxnCompletionDate))
	}
	o.Set("partnerId", hostile.Str(c.PartnerID)).Set("receiverVA", hostile.Str(c.ReceiverVA))
	if c.ErrorMsg != "" {
		o.Set("errorMsg", hostile.Str(c.ErrorMsg))
	}
	return o
}

// encryptBody is the request MPurse posts for plain under acct: Encrypt's
// base64 text as a text/plain body.
func encryptBody(acct providers.Account, plain []byte) (http.Header, []byte, error) {
	ct, err := Encrypt(acct, plain)
	if err != nil {
		return nil, nil, fmt.Errorf("mpurse account %q: %w", acct.ID, err)
	}
	return hostile.TextHeader(), []byte(ct), nil
}

// decryptBlocks decrypts ct, whole AES blocks, under acct's key and mode,
// padding left on; nil when the account's settings are unusable. It is
// written apart from Decrypt, whose behaviour the tests and the corpus
// check, so that they can tell what a ciphertext holds on their own.
func decryptBlocks(acct providers.Account, ct []byte) []byte {
	block, err := aes.NewCipher([]byte(acct.Key("aes_key")))
	if err != nil || len(ct)%aes.BlockSize != 0 {
		return nil
	}
	pt := make([]byte, len(ct))
	switch acct.Key("aes_mode") {
	case "cbc", "CBC":
		iv := []byte(acct.Key("aes_iv"))
		if len(iv) != aes.BlockSize {
			return nil
		}
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	default:
		for i := 0; i < len(ct); i += aes.BlockSize {
			block.Decrypt(pt[i:i+aes.BlockSize], ct[i:i+aes.BlockSize])
		}
	}
	return pt
}
