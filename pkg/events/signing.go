package events

// Signed events on the bus. Every event message a payhook producer stores on
// NATS carries the Standard Webhooks headers, as NATS headers:
//
//	webhook-id:        the CloudEvent id
//	webhook-timestamp: unix seconds when it was signed
//	webhook-signature: v1a,<base64 ed25519 signature of "{id}.{timestamp}.{data}">
//
// "v1a" is Standard Webhooks' asymmetric (ed25519) scheme: producers hold the
// private key, every reader holds only public keys, so a reader that can
// verify cannot forge. Several signatures may be given, space-separated;
// one that verifies under one of the reader's keys is enough. Signatures of
// other versions ("v1," HMAC) are skipped, as the Standard Webhooks
// verification procedure says.
//
// There is no timestamp tolerance: events are stored for 90 days and
// replayed (new subscribers, DLQ replay), so a signature that expired would
// refuse genuine events. Replaying a genuine stored event is harmless (the
// same id, which receivers dedupe on); what the signature rules out is an
// event that no producer made.

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Header names of a signed event message.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Key prefixes: "whsk_" + base64(32-byte ed25519 seed) and "whpk_" +
// base64(32-byte ed25519 public key), standard base64 with padding.
const (
	PrivateKeyPrefix = "whsk_"
	PublicKeyPrefix  = "whpk_"
	signatureVersion = "v1a,"
)

// Bounds on what a verifier reads from headers, so a hostile message costs
// little: an event id is 36 characters ("evt_" + 32 hex digits), or 45 with
// ":conflict"; a timestamp is at most 19 digits (int64); a header holds at
// most maxSignatures.
const (
	maxIDLen         = 256
	maxTimestampLen  = 19
	maxSignatureHdr  = 4096
	maxSignatures    = 16
	encodedKeyLen    = 44 // base64 of 32 bytes
	encodedSigLength = 88 // base64 of 64 bytes
)

// Errors of key parsing and verification. Verification errors wrap
// ErrUnsigned (a header is missing or malformed) or ErrSignature (no
// signature verifies under any of the keys, or the id does not match).
var (
	ErrKey       = errors.New("invalid event signing key")
	ErrUnsigned  = errors.New("event message not signed")
	ErrSignature = errors.New("event signature does not verify")
)

// PrivateKey signs event messages. Its zero value is not usable.
type PrivateKey struct{ k ed25519.PrivateKey }

// PublicKey verifies event messages. Its zero value verifies nothing.
type PublicKey struct{ k ed25519.PublicKey }

// GenerateKey makes a new key pair from r (crypto/rand.Reader when nil).
func GenerateKey(r io.Reader) (PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(r)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return PrivateKey{k: k}, nil
}

// PrivateKeyFromSeed builds the key of a 32-byte ed25519 seed.
func PrivateKeyFromSeed(seed []byte) (PrivateKey, error) {
	if len(seed) != ed25519.SeedSize {
		return PrivateKey{}, fmt.Errorf("%w: want a %d-byte seed, got %d bytes", ErrKey, ed25519.SeedSize, len(seed))
	}
	return PrivateKey{k: ed25519.NewKeyFromSeed(seed)}, nil
}

// ParsePrivateKey reads "whsk_" + base64(32-byte seed). The error never
// contains the input.
func ParsePrivateKey(s string) (PrivateKey, error) {
	raw, err := decodeKey(s, PrivateKeyPrefix)
	if err != nil {
		return PrivateKey{}, err
	}
	return PrivateKeyFromSeed(raw)
}

// ParsePublicKey reads "whpk_" + base64(32-byte public key).
func ParsePublicKey(s string) (PublicKey, error) {
	raw, err := decodeKey(s, PublicKeyPrefix)
	if err != nil {
		return PublicKey{}, err
	}
	return PublicKey{k: ed25519.PublicKey(raw)}, nil
}

func decodeKey(s, prefix string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return nil, fmt.Errorf("%w: must start with %s", ErrKey, prefix)
	}
	if len(b64) != encodedKeyLen {
		return nil, fmt.Errorf("%w: want %s followed by base64 of 32 bytes (%d characters), got %d characters", ErrKey, prefix, encodedKeyLen, len(b64))
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: not base64 of 32 bytes after %s", ErrKey, prefix)
	}
	return raw, nil
}

// Encode renders the key as "whsk_..." (a secret: for key files and the
// keygen command only, never for logs).
func (k PrivateKey) Encode() string {
	if len(k.k) != ed25519.PrivateKeySize {
		return ""
	}
	return PrivateKeyPrefix + base64.StdEncoding.EncodeToString(k.k.Seed())
}

// String hides the key, so that printing it by mistake leaks nothing.
func (k PrivateKey) String() string { return PrivateKeyPrefix + "<redacted>" }

// Public returns the key's public half.
func (k PrivateKey) Public() PublicKey {
	if len(k.k) != ed25519.PrivateKeySize {
		return PublicKey{}
	}
	return PublicKey{k: k.k.Public().(ed25519.PublicKey)}
}

// Encode renders the key as "whpk_...".
func (k PublicKey) Encode() string {
	if len(k.k) != ed25519.PublicKeySize {
		return ""
	}
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(k.k)
}

// String is Encode: a public key is not a secret.
func (k PublicKey) String() string { return k.Encode() }

// HeaderSetter is where a Signer writes: nats.Header and http.Header both are.
type HeaderSetter interface{ Set(key, value string) }

// HeaderGetter is what a verifier reads: nats.Header and http.Header both are.
type HeaderGetter interface{ Get(key string) string }

// Signer signs event messages with one or more private keys (more than one
// only while rotating, so readers holding either public key verify).
type Signer struct{ keys []PrivateKey }

// NewSigner returns a Signer for keys; it needs at least one usable key.
func NewSigner(keys ...PrivateKey) (*Signer, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no private key", ErrKey)
	}
	for _, k := range keys {
		if len(k.k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("%w: zero private key", ErrKey)
		}
	}
	return &Signer{keys: keys}, nil
}

// Signature returns the webhook-signature value for the message (id, at,
// data): "v1a,<base64>" per key, space-separated.
func (s *Signer) Signature(id string, at int64, data []byte) string {
	msg := signedContent(id, strconv.FormatInt(at, 10), data)
	var b strings.Builder
	b.Grow(len(s.keys) * (len(signatureVersion) + encodedSigLength + 1))
	for i, k := range s.keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(signatureVersion)
		b.WriteString(base64.StdEncoding.EncodeToString(ed25519.Sign(k.k, msg)))
	}
	return b.String()
}

// Sign sets the three headers of a signed event message on h: id (the event
// id), the time at in unix seconds, and the signature over data.
func (s *Signer) Sign(h HeaderSetter, id string, at time.Time, data []byte) {
	ts := at.Unix()
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, s.Signature(id, ts, data))
}

// signedContent is "{id}.{timestamp}.{data}", the bytes that are signed.
func signedContent(id, ts string, data []byte) []byte {
	msg := make([]byte, 0, len(id)+len(ts)+2+len(data))
	msg = append(msg, id...)
	msg = append(msg, '.')
	msg = append(msg, ts...)
	msg = append(msg, '.')
	return append(msg, data...)
}

// Verify checks that data, with the headers h, was signed by the private key
// of one of keys, and returns the signed webhook-id. It does not look at
// data: a caller acting on the event must also check that the event's id is
// the returned id and that the subject it read the message from is the
// event's (VerifyMessage does all three). There is no timestamp
// tolerance (see the file comment). Errors wrap ErrUnsigned or ErrSignature
// and never contain header values.
func Verify(keys []PublicKey, h HeaderGetter, data []byte) (string, error) {
	id, ts, sigs, err := parseHeaders(h)
	if err != nil {
		return "", err
	}
	var msg []byte
	for _, sig := range sigs {
		for _, k := range keys {
			if len(k.k) != ed25519.PublicKeySize {
				continue
			}
			if msg == nil {
				msg = signedContent(id, ts, data)
			}
			if ed25519.Verify(k.k, msg, sig) {
				return id, nil
			}
		}
	}
	return "", fmt.Errorf("%w: no v1a signature verifies under the %d configured public key(s)", ErrSignature, len(keys))
}

// VerifyMessage is the one call for a Go reader of payhook.events.>: it
// verifies the message (Verify), decodes the CloudEvent (conflict events
// decode too; their extra fields are ignored), checks that its id is the
// signed webhook-id, so a genuine signature cannot be moved onto another
// event, and that subject (the NATS subject the message was read from) is
// the one the event is published on (SubjectOf). The signature covers the
// body, not the subject, so without the last check a genuine event copied
// onto another subject (payhook.events.mpurse.payin.failed for a jpglo
// success) would pass a reader's subject filter; such a message fails with
// an error wrapping ErrSubjectMismatch (and ErrSignature).
func VerifyMessage(keys []PublicKey, subject string, h HeaderGetter, data []byte) (CloudEvent, error) {
	id, err := Verify(keys, h, data)
	if err != nil {
		return CloudEvent{}, err
	}
	ce, err := ParseCloudEvent(data)
	if err != nil {
		return CloudEvent{}, err
	}
	if ce.ID != id {
		return CloudEvent{}, fmt.Errorf("%w: webhook-id does not match the event id", ErrSignature)
	}
	if subject != SubjectOf(ce) {
		return CloudEvent{}, ErrSubjectMismatch
	}
	return ce, nil
}

// ErrSubjectMismatch: a signed event read from a subject other than the one
// its producer publishes it on. It wraps ErrSignature.
var ErrSubjectMismatch = fmt.Errorf("%w: the message subject is not the signed event's subject", ErrSignature)

// SubjectOf is the subject a payhook producer publishes ce on, from the
// event's own signed fields: its type and its data's provider, kind and
// status. A conflict event (type payhook.{kind}.conflict, whose data status
// is the contradicting status) goes on
// payhook.events.{provider}.{kind}.conflict; every other event on
// payhook.events.{provider}.{kind}.{status}.
func SubjectOf(ce CloudEvent) string {
	d := ce.Data
	status := d.Status
	if ce.Type == "payhook."+string(d.Kind)+"."+string(StatusConflict) {
		status = StatusConflict
	}
	return Subject(d.Provider, d.Kind, status)
}

// parseHeaders reads and bounds the three headers. The signatures returned
// are the decoded v1a ones; other versions are skipped.
func parseHeaders(h HeaderGetter) (id, ts string, sigs [][]byte, err error) {
	if h == nil {
		return "", "", nil, fmt.Errorf("%w: no headers", ErrUnsigned)
	}
	id, ts, sigHdr := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	switch {
	case id == "" || ts == "" || sigHdr == "":
		return "", "", nil, fmt.Errorf("%w: want headers %s, %s and %s", ErrUnsigned, HeaderID, HeaderTimestamp, HeaderSignature)
	case len(id) > maxIDLen:
		return "", "", nil, fmt.Errorf("%w: %s longer than %d bytes", ErrUnsigned, HeaderID, maxIDLen)
	case len(ts) > maxTimestampLen || !allDigits(ts):
		return "", "", nil, fmt.Errorf("%w: %s is not unix seconds", ErrUnsigned, HeaderTimestamp)
	case len(sigHdr) > maxSignatureHdr:
		return "", "", nil, fmt.Errorf("%w: %s longer than %d bytes", ErrUnsigned, HeaderSignature, maxSignatureHdr)
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return "", "", nil, fmt.Errorf("%w: %s is not unix seconds", ErrUnsigned, HeaderTimestamp)
	}
	for i, tok := range strings.Fields(sigHdr) {
		if i >= maxSignatures {
			return "", "", nil, fmt.Errorf("%w: more than %d signatures", ErrUnsigned, maxSignatures)
		}
		b64, ok := strings.CutPrefix(tok, signatureVersion)
		if !ok {
			continue // another scheme (v1 HMAC): not ours to check
		}
		if len(b64) != encodedSigLength {
			return "", "", nil, fmt.Errorf("%w: a v1a signature is not base64 of 64 bytes", ErrUnsigned)
		}
		sig, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil || len(sig) != ed25519.SignatureSize {
			return "", "", nil, fmt.Errorf("%w: a v1a signature is not base64 of 64 bytes", ErrUnsigned)
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return "", "", nil, fmt.Errorf("%w: no v1a signature in %s", ErrUnsigned, HeaderSignature)
	}
	return id, ts, sigs, nil
}

// ParsePublicKeys parses each of ss; the error names the index.
func ParsePublicKeys(ss []string) ([]PublicKey, error) {
	out := make([]PublicKey, 0, len(ss))
	for i, s := range ss {
		k, err := ParsePublicKey(s)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// Equal reports whether k and o are the same key.
func (k PublicKey) Equal(o PublicKey) bool { return bytes.Equal(k.k, o.k) }
