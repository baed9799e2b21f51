package stripe

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/providers"
)

// HeaderSignature is the header Stripe signs every webhook request with:
// "t=<unix seconds>,v1=<hex>[,v1=<hex>...]", possibly with v0 and other
// schemes, which are ignored.
const HeaderSignature = "Stripe-Signature"

// DefaultTolerance is how far the signed timestamp may be from the time
// the request is received, either way (Stripe's libraries use 300 s): a
// captured request replayed later than that is refused.
const DefaultTolerance = 300 * time.Second

// maxHeader bounds the header; a real one is about 90 bytes per
// signature, and Stripe sends at most a handful (one per live secret).
const maxHeader = 4096

// Signature computes a v1 signature: HMAC-SHA256 of "{t}.{body}" keyed
// with the whole endpoint secret as written ("whsec_..." as bytes, not
// decoded), in lower-case hex.
func Signature(secret string, t time.Time, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(t.Unix(), 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// SignatureHeader is the Stripe-Signature value Stripe sends for body at t,
// one v1 per secret (several while a secret is being rolled).
func SignatureHeader(t time.Time, body []byte, secrets ...string) string {
	var b strings.Builder
	b.WriteString("t=" + strconv.FormatInt(t.Unix(), 10))
	for _, s := range secrets {
		b.WriteString(",v1=" + Signature(s, t, body))
	}
	return b.String()
}

// signedHeader is a parsed Stripe-Signature.
type signedHeader struct {
	t   time.Time
	v1s [][]byte
}

// parseHeader reads "t=...,v1=...". Exactly one t, of decimal digits, is
// required; v1 values that are not hex are skipped (as Stripe's libraries
// do) and at least one must remain; other schemes (v0) are ignored.
func parseHeader(h string) (signedHeader, error) {
	var sh signedHeader
	if h == "" {
		return sh, providers.Reject(providers.ReasonBadSignature, providers.ErrSignature, "no %s header", HeaderSignature)
	}
	if len(h) > maxHeader {
		return sh, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%s header over %d bytes", HeaderSignature, maxHeader)
	}
	seenT := false
	for _, pair := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return sh, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%s: an element is not key=value", HeaderSignature)
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || seenT || n < 0 || strings.HasPrefix(v, "+") {
				return sh, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%s: t is not one unix time", HeaderSignature)
			}
			seenT, sh.t = true, time.Unix(n, 0)
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil && len(sig) == sha256.Size {
				sh.v1s = append(sh.v1s, sig)
			}
		}
	}
	switch {
	case !seenT:
		return sh, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%s: no t", HeaderSignature)
	case len(sh.v1s) == 0:
		return sh, providers.Reject(providers.ReasonBadSignature, providers.ErrSignature, "%s: no v1 signature", HeaderSignature)
	}
	return sh, nil
}

// verify checks the header of body under secret: the signed time within
// tolerance of now, and one v1 equal (in constant time) to the expected
// signature. It returns the signed time.
func verify(header string, body []byte, secret string, now time.Time, tolerance time.Duration) (time.Time, error) {
	sh, err := parseHeader(header)
	if err != nil {
		return time.Time{}, err
	}
	if d := now.Sub(sh.t); d > tolerance || d < -tolerance {
		return time.Time{}, providers.Reject(providers.ReasonTooOld, providers.ErrStale, "signed at %s, received at %s: beyond the %s tolerance",
			sh.t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), tolerance)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(sh.t.Unix(), 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	want := mac.Sum(nil)
	ok := false
	for _, sig := range sh.v1s {
		// Every signature is compared, so the time taken does not tell
		// which one matched.
		if hmac.Equal(sig, want) {
			ok = true
		}
	}
	if !ok {
		return time.Time{}, providers.Reject(providers.ReasonBadSignature, providers.ErrSignature, "no v1 signature matches the endpoint secret")
	}
	return sh.t, nil
}
