package mpurse

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// mpurse's wire for the bad-input corpus (hostile.Provider): a JSON
// plaintext, AES-encrypted and base64-encoded as the body (cipher.go), so
// that mutating a field means encrypting again; and what Verify answers
// each mutation with. Decryption failures of every kind answer
// "undecryptable", so that the reply is no padding oracle.

var _ hostile.Provider = (*Provider)(nil)

// HostileAccounts are an AES-256-ECB and an AES-128-CBC account with
// throwaway keys.
func (p *Provider) HostileAccounts() []providers.Account {
	return []providers.Account{
		{ID: "mp-in", Provider: Name, Keys: providers.Keys{"merchant_id": "BIPARTNER1", "aes_key": "badinput-mpurse-aes-key-32bytes!", "aes_mode": "ecb"}, Currency: "INR"},
		{ID: "mp-cbc", Provider: Name, Keys: providers.Keys{"merchant_id": "BIPARTNER2", "aes_key": "bi-mpurse-cbc-16", "aes_mode": "cbc", "aes_iv": "bi-mpurse-iv-16b"}, Currency: "INR"},
	}
}

// HostileWire: base64 text of up to MaxBody bytes; a cut body no longer
// decodes or is short of whole blocks or of its padding; a foreign body is
// not base64.
func (p *Provider) HostileWire() hostile.Wire {
	malformed := hostile.Rejected(hostile.ReasonMalformed)
	return hostile.Wire{
		Format: hostile.FormatText, MaxBody: MaxBody,
		Truncated: hostile.Rejected(hostile.ReasonMalformed, hostile.ReasonUndecryptable),
		Foreign:   map[hostile.Format]hostile.Want{hostile.FormatJSON: malformed, hostile.FormatForm: malformed, hostile.FormatText: malformed},
	}
}

// HostileCallback is a UPI payin, succeeded or failed.
func (p *Provider) HostileCallback(g hostile.Gen, acct providers.Account, orderID string) *hostile.Callback {
	amt := 10000 + g.IntN(9990000) // paise
	completed := fmt.Sprintf("2026%02d%02d%02d%02d%02d", 1+g.IntN(12), 1+g.IntN(28), g.IntN(24), g.IntN(60), g.IntN(60))
	return &hostile.Callback{Account: acct, Kind: events.KindPayin, Obj: callback{
		MpQueryID: orderID, PayerVA: "payer" + g.Digits(4) + "@paytm", BankRRN: g.Digits(12),
		PayerAmount: hostile.Cents(amt), PayChannel: "UPI",
		TxnStatus:         g.Pick([]string{"TRANSACTION_SUCCESS", "TRANSACTION_SUCCESS", "TRANSACTION_FAILURE"}),
		TxnCompletionDate: completed, PartnerID: acct.Key("merchant_id"),
		ReceiverVA: "mpu.bi@icici", ErrorMsg: "transaction success",
	}.obj()}
}

// HostileSign encrypts c's plaintext under acct with encryptBody.
func (p *Provider) HostileSign(acct providers.Account, c *hostile.Callback) (http.Header, []byte, error) {
	return encryptBody(acct, c.Obj.Bytes())
}

// HostileMutations are mpurse's own mutations.
func (p *Provider) HostileMutations() []hostile.Mutation {
	return hostile.Build(addPreserving, addKeys, addCiphertext, addPlaintextEncodings, addEnvelope, addNumbers, addSemantics)
}

type mutateFunc = func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error)

// encrypted posts plaintext encrypted under c's account.
func encrypted(c *hostile.Callback, plain []byte, w hostile.Want) (hostile.Result, error) {
	h, body, err := encryptBody(c.Account, plain)
	return hostile.Result{Header: h, Body: body, Want: w}, err
}

// plaintextThen lets f change c's plaintext bytes, which are then encrypted.
func plaintextThen(w hostile.Want, f func(g hostile.Gen, c *hostile.Callback, plain []byte) []byte) mutateFunc {
	return func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		return encrypted(c, f(g, c, c.Obj.Bytes()), w)
	}
}

// bodyThen encrypts c, then lets f change the body (base64 text).
func bodyThen(w hostile.Want, f func(g hostile.Gen, c *hostile.Callback, body []byte) []byte) mutateFunc {
	return func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		ct, err := Encrypt(c.Account, c.Obj.Bytes())
		if err != nil {
			return hostile.Result{}, err
		}
		return hostile.Result{Header: hostile.TextHeader(), Body: f(g, c, []byte(ct)), Want: w}, nil
	}
}

// garbageOr is the body, refused as undecryptable, when it decrypts under
// acct to garbage for certain; else ErrRetry.
func garbageOr(acct providers.Account, body, orig []byte) (hostile.Result, error) {
	if classifyCiphertext(acct, body, orig) != plainGarbage {
		return hostile.Result{}, hostile.ErrRetry
	}
	return hostile.Result{Header: hostile.TextHeader(), Body: body, Want: hostile.Rejected(hostile.ReasonUndecryptable)}, nil
}

func addPreserving(ms *hostile.Mutations) {
	ms.Add(hostile.ClassPreserving, "plaintext keys reordered", hostile.BeforeSigning(hostile.Valid("the plaintext is JSON; key order carries nothing"), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj = c.Obj.Reversed()
	}))
	ms.Add(hostile.ClassPreserving, "base64 with MIME line breaks", bodyThen(hostile.Valid("CR/LF inside base64 are skipped"), func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		var out []byte
		for i := 0; i < len(body); i += 76 {
			out = append(out, body[i:min(i+76, len(body))]...)
			out = append(out, "\r\n"...)
		}
		return out
	}))
	ms.Add(hostile.ClassPreserving, "base64 without padding", bodyThen(hostile.Valid("unpadded base64 is accepted (one spelling per ciphertext)"), func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return bytes.TrimRight(body, "=")
	}))
	ms.Add(hostile.ClassPreserving, "surrounding whitespace", bodyThen(hostile.Valid("surrounding whitespace is trimmed"), func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return append(append([]byte(" \n"), body...), "\r\n\t"...)
	}))
}

// addKeys: encrypted under the wrong key or mode, or for the other account.
func addKeys(ms *hostile.Mutations) {
	ms.Add(hostile.ClassBadSignature, "encrypted under a wrong key", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		ct, err := Encrypt(c.Account.With("aes_key", strings.Repeat("K", len(c.Account.Key("aes_key")))), c.Obj.Bytes())
		if err != nil {
			return hostile.Result{}, err
		}
		return garbageOr(c.Account, []byte(ct), nil)
	})
	ms.Add(hostile.ClassBadSignature, "encrypted in the other AES mode", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		a := c.Account.With("aes_mode", "cbc").With("aes_iv", "0123456789abcdef")
		if c.Account.Key("aes_mode") == "cbc" {
			a = c.Account.With("aes_mode", "ecb").With("aes_iv", "")
		}
		ct, err := Encrypt(a, c.Obj.Bytes())
		if err != nil {
			return hostile.Result{}, err
		}
		return garbageOr(c.Account, []byte(ct), nil)
	})
	ms.Add(hostile.ClassCrossAccount, "callback of one account posted to the other account's URL", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		ct, err := Encrypt(c.Account, c.Obj.Bytes())
		if err != nil {
			return hostile.Result{}, err
		}
		to := g.OtherAccount(c.Account)
		r, err := garbageOr(to, []byte(ct), nil)
		r.Path = hostile.Path(Name, to.ID, c.Kind)
		return r, err
	})
	ms.Add(hostile.ClassAccountMismatch, "encrypted with the other account's key, posted to it, naming this merchant", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		to := g.OtherAccount(c.Account)
		ct, err := Encrypt(to, c.Obj.Bytes())
		return hostile.Result{Path: hostile.Path(Name, to.ID, c.Kind), Header: hostile.TextHeader(), Body: []byte(ct), Want: hostile.Rejected(hostile.ReasonAccountMismatch)}, err
	})
}

// addCiphertext changes the ciphertext: its length, a character, its
// blocks, on fresh callbacks and on replays of accepted ones.
func addCiphertext(ms *hostile.Mutations) {
	ms.Add(hostile.ClassBadSignature, "ciphertext not whole blocks", bodyThen(hostile.Rejected(hostile.ReasonUndecryptable), func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return []byte(base64.StdEncoding.EncodeToString(append(ciphertextOf(body), byte(g.IntN(256)))))
	}))
	ms.Add(hostile.ClassBadSignature, "not base64", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		body := g.Pick([]string{"====", "not base64!", "a===", "QUJD\x00", "%%%%"})
		return hostile.Result{Header: hostile.TextHeader(), Body: []byte(body), Want: hostile.Rejected(hostile.ReasonMalformed)}, nil
	})
	ms.Add(hostile.ClassTampered, "ciphertext character changed", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		ct, err := Encrypt(c.Account, c.Obj.Bytes())
		if err != nil {
			return hostile.Result{}, err
		}
		return garbageOr(c.Account, flipB64(g.IntN, []byte(ct)), c.Obj.Bytes())
	})
	ms.Add(hostile.ClassTampered, "ECB blocks swapped", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		if c.Account.Key("aes_mode") == "cbc" {
			return hostile.Result{}, hostile.ErrRetry
		}
		ct, err := Encrypt(c.Account, c.Obj.Bytes())
		if err != nil {
			return hostile.Result{}, err
		}
		in := ciphertextOf([]byte(ct))
		n := len(in) / 16
		i, j := g.IntN(n-1), g.IntN(n-1)
		if i == j {
			return hostile.Result{}, hostile.ErrRetry
		}
		out := append([]byte(nil), in...)
		copy(out[i*16:], in[j*16:j*16+16])
		copy(out[j*16:], in[i*16:i*16+16])
		return garbageOr(c.Account, []byte(base64.StdEncoding.EncodeToString(out)), c.Obj.Bytes())
	})
	ms.Add(hostile.ClassReplayTampered, "replay: ciphertext character changed", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		*c = *g.Original()
		return garbageOr(c.Account, flipB64(g.IntN, c.Body), c.Obj.Bytes())
	})
	ms.Add(hostile.ClassReplayTampered, "replay: last block spliced from another callback", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		o1, o2 := g.Original(), g.Original()
		if bytes.Equal(o1.Body, o2.Body) || o1.Account.ID != o2.Account.ID {
			return hostile.Result{}, hostile.ErrRetry
		}
		*c = *o1
		c1, c2 := ciphertextOf(o1.Body), ciphertextOf(o2.Body)
		out := append(append([]byte(nil), c1[:len(c1)-16]...), c2[len(c2)-16:]...)
		enc := []byte(base64.StdEncoding.EncodeToString(out))
		switch classifyCiphertext(c.Account, enc, o1.Obj.Bytes()) {
		case plainGarbage:
			return hostile.Result{Header: hostile.TextHeader(), Body: enc, Want: hostile.Rejected(hostile.ReasonUndecryptable)}, nil
		case plainSame:
			return hostile.Result{Header: hostile.TextHeader(), Body: enc, Want: hostile.Valid("the spliced block equals the original's: an exact replay")}, nil
		}
		return hostile.Result{}, hostile.ErrRetry
	})
}

// addPlaintextEncodings: the plaintext in other encodings, with unicode
// edges, a key twice or nested deep, encrypted validly. A plaintext that is
// not a UTF-8 JSON object is "undecryptable" like any decryption failure.
func addPlaintextEncodings(ms *hostile.Mutations) {
	undecryptable, malformed := hostile.Rejected(hostile.ReasonUndecryptable), hostile.Rejected(hostile.ReasonMalformed)
	ms.Add(hostile.ClassWrongEncoding, "latin-1 plaintext", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		c.Obj.Set("payerVA", hostile.Str("josé.zoë@upi"))
		return encrypted(c, hostile.Latin1(c.Obj.Bytes()), undecryptable)
	})
	ms.Add(hostile.ClassWrongEncoding, "UTF-16 plaintext", plaintextThen(undecryptable, func(g hostile.Gen, c *hostile.Callback, p []byte) []byte {
		return hostile.UTF16(p, g.IntN(2) == 0, g.IntN(2) == 0)
	}))
	ms.Add(hostile.ClassWrongEncoding, "UTF-8 BOM before the plaintext", plaintextThen(undecryptable, func(g hostile.Gen, c *hostile.Callback, p []byte) []byte {
		return append([]byte("\xef\xbb\xbf"), p...)
	}))
	ms.Add(hostile.ClassWrongEncoding, "invalid UTF-8 in the plaintext", plaintextThen(undecryptable, func(g hostile.Gen, c *hostile.Callback, p []byte) []byte {
		return bytes.Replace(p, []byte(`"payerVA":"`), []byte(`"payerVA":"`+g.Pick(hostile.InvalidUTF8)), 1)
	}))
	ms.Add(hostile.ClassUnicodeEdge, "unicode edge in payer fields (encrypted)", hostile.BeforeSigning(hostile.Valid("payer fields are data"), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set(g.Pick([]string{"payerVA", "errorMsg", "receiverVA"}), hostile.Str(g.Pick(hostile.UnicodeEdges)))
	}))
	ms.Add(hostile.ClassUnicodeEdge, "printable unicode edge in mpQueryId (encrypted)", hostile.BeforeSigning(hostile.Valid("printable order ids are opaque data"), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set("mpQueryId", hostile.Str("BI-"+g.Digits(6)+g.Pick(hostile.IDEdgesOK)))
	}))
	ms.Add(hostile.ClassUnicodeEdge, "control or format character in mpQueryId (encrypted)", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonInvalidEvent), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set("mpQueryId", hostile.Str("BI-"+g.Digits(6)+g.Pick(hostile.IDEdgesBad)))
	}))
	ms.Add(hostile.ClassUnicodeEdge, "raw control character in the plaintext", plaintextThen(undecryptable, func(g hostile.Gen, c *hostile.Callback, p []byte) []byte {
		return bytes.Replace(p, []byte(`"payerVA":"`), []byte(`"payerVA":"`+g.Pick([]string{"\x00", "\n", "\x1b"})), 1)
	}))
	ms.Add(hostile.ClassDuplicateKey, "plaintext key repeated", plaintextThen(malformed, func(g hostile.Gen, c *hostile.Callback, p []byte) []byte {
		k := g.Pick([]string{"payerAmount", "mpQueryId", "txnStatus", "partnerId", "bankRRN"})
		return append(p[:len(p)-1], []byte(`,"`+k+`":`+c.Obj.Get(k)+"}")...)
	}))
	ms.Add(hostile.ClassDeeplyNested, "deep nesting in the plaintext", plaintextThen(malformed, func(g hostile.Gen, c *hostile.Callback, p []byte) []byte {
		return append(p[:len(p)-1], []byte(`,"x":`+hostile.Nested(g.PickInt([]int{17, 1000, 20000}), "[", "]", "")+"}")...)
	}))
	ms.Add(hostile.ClassDeeplyNested, "plaintext is a deep array", plaintextThen(undecryptable, func(g hostile.Gen, c *hostile.Callback, p []byte) []byte {
		return []byte(hostile.Nested(10000, "[", "]", ""))
	}))
}

// addEnvelope changes the base64 envelope or sends the plaintext in
// another content type.
func addEnvelope(ms *hostile.Mutations) {
	malformed := hostile.Rejected(hostile.ReasonMalformed)
	ms.Add(hostile.ClassWrongEncoding, "base64 text in UTF-16", bodyThen(malformed, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return hostile.UTF16(body, g.IntN(2) == 0, g.IntN(2) == 0)
	}))
	ms.Add(hostile.ClassWrongEncoding, "UTF-8 BOM before the base64", bodyThen(malformed, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return append([]byte("\xef\xbb\xbf"), body...)
	}))
	ms.Add(hostile.ClassWrongEncoding, "base64url alphabet", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		ct, err := Encrypt(c.Account, c.Obj.Bytes())
		if err != nil {
			return hostile.Result{}, err
		}
		if !strings.ContainsAny(ct, "+/") {
			return hostile.Result{}, hostile.ErrRetry
		}
		out := strings.NewReplacer("+", "-", "/", "_").Replace(ct)
		return hostile.Result{Header: hostile.TextHeader(), Body: []byte(out), Want: malformed}, nil
	})
	ms.Add(hostile.ClassContentType, "plaintext JSON posted unencrypted", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		return hostile.Result{Header: hostile.JSONHeader(), Body: c.Obj.Bytes(), Want: malformed}, nil
	})
	ms.Add(hostile.ClassContentType, "form field data=<base64>", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		ct, err := Encrypt(c.Account, c.Obj.Bytes())
		escaped := strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(ct)
		return hostile.Result{Header: hostile.FormHeader(), Body: []byte("data=" + escaped), Want: malformed}, err
	})
}

// addNumbers: payerAmount out of range, encrypted validly.
func addNumbers(ms *hostile.Mutations) {
	badAmount := hostile.Rejected(hostile.ReasonBadAmount)
	for _, v := range []struct {
		raw  string
		want hostile.Want
	}{
		{`"1e400"`, badAmount},
		{`"-120.00"`, badAmount},
		{`"` + strings.Repeat("9", 45) + `"`, badAmount},
		{`1e2`, badAmount},
		{`"NaN"`, badAmount},
		{`""`, hostile.Rejected(hostile.ReasonMissingField)},
		{`{"v":"1"}`, hostile.Rejected(hostile.ReasonMalformed)},
		{`120.00`, hostile.Valid("a JSON number is taken as its exact digits")},
	} {
		ms.Add(hostile.ClassHugeNumber, "payerAmount "+hostile.ClipName(v.raw), hostile.BeforeSigning(v.want, func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set("payerAmount", v.raw)
		}))
	}
}

func succeeded(c *hostile.Callback) bool { return c.Obj.Get("txnStatus") == `"TRANSACTION_SUCCESS"` }

// addSemantics: validly encrypted callbacks that say something Parse
// refuses (or, for a failed payment, need not carry).
func addSemantics(ms *hostile.Mutations) {
	for _, v := range []struct {
		name string
		want func(c *hostile.Callback) hostile.Want
		f    func(g hostile.Gen, c *hostile.Callback)
	}{
		{"txnStatus unknown", func(*hostile.Callback) hostile.Want { return hostile.Rejected(hostile.ReasonBadStatus) }, func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set("txnStatus", hostile.Str(g.Pick([]string{"PENDING", "transaction_success", "SUCCESS"})))
		}},
		{"bankRRN removed", func(c *hostile.Callback) hostile.Want {
			if succeeded(c) {
				return hostile.Rejected(hostile.ReasonMissingField)
			}
			return hostile.Valid("a failed payment may carry no bank reference")
		}, func(g hostile.Gen, c *hostile.Callback) { c.Obj.Del("bankRRN") }},
		{"required field removed", func(*hostile.Callback) hostile.Want { return hostile.Rejected(hostile.ReasonMissingField) }, func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Del(g.Pick([]string{"mpQueryId", "partnerId", "payerAmount", "txnStatus"}))
		}},
		{"txnCompletionDate malformed", func(*hostile.Callback) hostile.Want {
			return hostile.Valid("an unreadable time falls back to received_at; a verified payment is not refused over it")
		}, func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set("txnCompletionDate", hostile.Str(g.Pick([]string{"2026-01-01", "20261301000000", "yesterday"})))
		}},
		{"field of the wrong type", func(*hostile.Callback) hostile.Want { return hostile.Rejected(hostile.ReasonMalformed) }, func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set(g.Pick([]string{"mpQueryId", "txnStatus", "bankRRN"}), g.Pick([]string{"true", "[]", `{"a":1}`}))
		}},
	} {
		ms.Add(hostile.ClassSemantic, v.name, func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
			v.f(g, c)
			return hostile.Result{Want: v.want(c)}, nil
		})
	}
	ms.Add(hostile.ClassSemantic, "trailing data after the object", plaintextThen(hostile.Rejected(hostile.ReasonUndecryptable), func(g hostile.Gen, c *hostile.Callback, p []byte) []byte {
		return append(p, " {}"...)
	}))
	ms.Add(hostile.ClassAccountMismatch, "partnerId of another merchant (encrypted)", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonAccountMismatch), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set("partnerId", g.Pick([]string{hostile.Str(g.OtherAccount(c.Account).Key("merchant_id")), "12345", hostile.Str(strings.ToLower(c.Account.Key("merchant_id")))}))
	}))
	ms.Add(hostile.ClassHugeField, "30 KB mpQueryId (encrypted)", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonInvalidEvent), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set("mpQueryId", hostile.Str("BI-"+strings.Repeat("8", 30000)+g.Digits(6)))
	}))
}
