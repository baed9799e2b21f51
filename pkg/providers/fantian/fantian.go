// Package fantian submits a UTR/RRN to Fantian to match a pay-in order
// ("(印度支付)UTR匹配订单", seed 000_6906735f1e1e0762.txt). Fantian sends us
// no callbacks, so the package has no Inbound provider.
//
// A payer who paid by UPI but whose order was not credited gives the UTR
// (Unique Transaction Reference) or RRN (Retrieval Reference Number) from
// their UPI app; the merchant submits it and Fantian matches it against the
// order. Only orders of service SVC0031 (UPI India) can be matched.
//
// Request: POST {base}/gateway/api/v1/payments/reference,
// Content-Type application/json;charset=utf-8, body {platform_id
// (String(7)), payment_cl_id (String(32)), payment_reference (String(64)),
// sign (String(32))}. Reply {"error_code":"0000"} on success, else
// error_code and error_msg, e.g. {"error_code":"0004","error_msg":"验签错误!"}.
//
// Assumption (gap in the seed): the signing rule lives on a page we do not
// have. The seed's example sign is 32 lower-case hex, so an MD5; by default
// we use the sorted rule (see Sign) in lower-case hex, and
// providers.Account.Key("sign_rule") "sorted-upper" switches to upper case.
//
// Refusing a UTR already used for another order is the caller's job (the
// reconciler's reference store): it must happen before the UTR reaches
// Fantian (docs/interfaces.md "Admin APIs", POST /v1/references → 409).
package fantian

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/httpx"
)

// ReferencePath is the UTR matching endpoint under the account's BaseURL.
const ReferencePath = "/gateway/api/v1/payments/reference"

// OpSubmitReference is the Op of *providers.APIError returned by SubmitReference.
const OpSubmitReference = "submit_reference"

// DefaultTimeout bounds a submission when NewClient is given no *http.Client.
const DefaultTimeout = 10 * time.Second

// Field limits from the seed's parameter table.
const (
	MaxPlatformID = 7  // platform_id String(7)
	MaxOrderID    = 32 // payment_cl_id String(32)
	MaxReference  = 64 // payment_reference String(64)
)

// Codes in Fantian's replies that the seed documents.
const (
	CodeOK           = "0000" // matched
	CodeBadSignature = "0004" // 验签错误 (signature check failed)
)

// maxReply bounds a reply; the seed's is under 60 bytes.
const maxReply = 64 << 10

var (
	// ErrInvalid reports a submission refused before sending: an empty or
	// too long field, characters other than printable ASCII, or "&"/"=".
	ErrInvalid = errors.New("fantian: invalid submission")
	// ErrSignRule reports a SignRule this package does not know.
	ErrSignRule = errors.New("fantian: unknown sign rule")
	// ErrReply reports a reply that is not Fantian's {"error_code",...} object.
	ErrReply = errors.New("fantian: unexpected reply")
)

// Client submits references to Fantian.
type Client struct {
	hc *http.Client
}

// NewClient returns a client using hc, or an *http.Client with a
// DefaultTimeout timeout when hc is nil.
func NewClient(hc *http.Client) *Client {
	return &Client{hc: httpx.Client(hc, DefaultTimeout)}
}

type submission struct {
	PlatformID       string `json:"platform_id"`
	PaymentClID      string `json:"payment_cl_id"`
	PaymentReference string `json:"payment_reference"`
	Sign             string `json:"sign"`
}

// SubmitReference asks Fantian to match reference (a UTR or RRN) to the
// merchant order merchantOrderID of acct. It returns nil when Fantian
// answers error_code "0000" (matched). Other answers:
//
//   - error_code other than "0000": a *providers.APIError with Code and
//     Message from the reply (HTTP holds the status); NotMatched tells
//     whether it means the reference did not match.
//   - an HTTP status other than 2xx: a *providers.APIError with HTTP set,
//     Code and Message from the body when it still carries them, else Code
//     "http_NNN" and the status text; Temporary for 5xx and 429.
//   - a reply that is not Fantian's object: ErrReply.
//   - bad input, checked before sending: ErrInvalid or ErrSignRule.
//   - a transport failure or timeout: a temporary *providers.APIError with
//     Code "transport"; a reply over 64 KiB: Code "too_large" (httpx.Do).
//     A cancelled or expired ctx returns the context's error, wrapped.
//
// Fantian does not sign its replies (the seed shows no sign), so none is checked.
func (c *Client) SubmitReference(ctx context.Context, acct providers.Account, merchantOrderID, reference string) error {
	if !ValidRule(acct.Key("sign_rule")) {
		return fmt.Errorf("%w %q", ErrSignRule, acct.Key("sign_rule"))
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"platform_id", acct.Key("merchant_id"), MaxPlatformID},
		{"payment_cl_id", merchantOrderID, MaxOrderID},
		{"payment_reference", reference, MaxReference},
	} {
		if err := checkField(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	if acct.BaseURL == "" {
		return fmt.Errorf("%w: account has no base_url", ErrInvalid)
	}
	params := map[string]string{"platform_id": acct.Key("merchant_id"), "payment_cl_id": merchantOrderID, "payment_reference": reference}
	body, err := json.Marshal(submission{
		PlatformID: acct.Key("merchant_id"), PaymentClID: merchantOrderID, PaymentReference: reference,
		Sign: Sign(params, acct.Key("secret"), acct.Key("sign_rule")),
	})
	if err != nil {
		return fmt.Errorf("fantian submit: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(acct.BaseURL, "/")+ReferencePath, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("fantian submit: %w", err)
	}
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	status, reply, err := httpx.Do(c.hc, req, Name, OpSubmitReference, maxReply)
	if err != nil {
		return err
	}
	return ParseReply(status, reply)
}

// checkField: non-empty, at most max characters, printable ASCII without
// spaces, "&" or "=". Merchant ids, order numbers and UTRs are all of that
// alphabet; a stray space or control character is a caller bug better
// caught here than signed and sent, and "&"/"=" in a payer-supplied UTR
// would make the signing string ambiguous.
func checkField(name, v string, max int) error {
	if v == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalid, name)
	}
	if len(v) > max {
		return fmt.Errorf("%w: %s longer than %d characters", ErrInvalid, name, max)
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' || v[i] == '&' || v[i] == '=' {
			return fmt.Errorf("%w: %s has a character outside printable ASCII or a signing delimiter (& =)", ErrInvalid, name)
		}
	}
	return nil
}

// ParseReply maps Fantian's answer (HTTP status and body) to nil (matched)
// or an error, as documented on SubmitReference.
func ParseReply(httpStatus int, body []byte) error {
	code, msg, decodeErr := decodeReply(body)
	if !httpx.OK(httpStatus) {
		ae := httpx.StatusError(Name, OpSubmitReference, httpStatus)
		if decodeErr == nil {
			ae.Code, ae.Message = clip(code), clip(msg)
		}
		return ae
	}
	if decodeErr != nil {
		return fmt.Errorf("%w (http %d): %v", ErrReply, httpStatus, decodeErr)
	}
	if code == CodeOK {
		return nil
	}
	return &providers.APIError{Provider: Name, Op: OpSubmitReference, HTTP: httpStatus, Code: clip(code), Message: clip(msg)}
}

// decodeReply reads {"error_code": string, "error_msg"?: string}. A
// duplicate key is an error: {"error_code":"0004","error_code":"0000"}
// must not read as success.
func decodeReply(body []byte) (code, msg string, err error) {
	if len(body) > maxReply {
		return "", "", fmt.Errorf("larger than %d bytes", maxReply)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", "", errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	var haveCode bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", "", err
		}
		key, _ := tok.(string)
		if seen[key] {
			return "", "", errors.New("duplicate key")
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", "", err
		}
		switch key {
		case "error_code":
			if err := json.Unmarshal(raw, &code); err != nil || string(raw) == "null" {
				return "", "", errors.New("error_code is not a string")
			}
			haveCode = true
		case "error_msg":
			if string(raw) != "null" {
				if err := json.Unmarshal(raw, &msg); err != nil {
					return "", "", errors.New("error_msg is not a string")
				}
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return "", "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", "", errors.New("data after the object")
	}
	if !haveCode {
		return "", "", errors.New("no error_code")
	}
	return code, msg, nil
}

// noMatchPhrases are error_msg fragments that say, in the seed's languages,
// that the reference did not match an order.
var noMatchPhrases = []string{
	"不匹配", "未匹配", "匹配失败", "无法匹配", "無法匹配", "匹配不到", "查无", "查無",
	"not match", "no match", "unmatched", "not found",
}

// NotMatched reports whether err is Fantian's answer that the reference did
// not match the order, so the caller may release its claim on the
// reference. The seed documents one error code only, 0004 (bad
// signature), and no "no match" code; so, conservatively, NotMatched is
// true only for a well-formed 2xx reply whose error_msg plainly says the
// reference or order was not matched or not found (不匹配, 未匹配, 匹配失败,
// 无法匹配, 查无, "not match", "no match", "unmatched", "not found",
// case-insensitive) and does not mention the signature (sign, 签); never
// for 0000, 0004, transport errors, non-2xx replies, or unknown codes
// without such a message. A false "not matched" could let one UTR be
// offered for a second order, so doubt answers false.
func NotMatched(err error) bool {
	var ae *providers.APIError
	if !errors.As(err, &ae) || ae.Provider != Name || ae.HTTP < 200 || ae.HTTP > 299 {
		return false
	}
	if ae.Code == "" || ae.Code == CodeOK || ae.Code == CodeBadSignature {
		return false
	}
	msg := strings.ToLower(ae.Message)
	if strings.Contains(msg, "sign") || strings.Contains(msg, "签") {
		return false
	}
	for _, p := range noMatchPhrases {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// clip bounds a provider-supplied value kept in an error.
func clip(s string) string { return providers.Clip(s, 200) }
