package events_test

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
)

// hdr is a minimal header map (nats.Header and http.Header behave alike for
// these three lower-case names).
type hdr map[string]string

func (h hdr) Get(k string) string { return h[k] }
func (h hdr) Set(k, v string)     { h[k] = v }

func mustKey(tb testing.TB) events.PrivateKey {
	tb.Helper()
	k, err := events.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustSigner(tb testing.TB, keys ...events.PrivateKey) *events.Signer {
	tb.Helper()
	s, err := events.NewSigner(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// signedSample is a typical event, its CloudEvent bytes and signed headers.
func signedSample(tb testing.TB, k events.PrivateKey) (events.Event, []byte, hdr) {
	tb.Helper()
	e := benchEvent()
	data, err := e.MarshalCloudEvent()
	if err != nil {
		tb.Fatal(err)
	}
	h := hdr{}
	mustSigner(tb, k).Sign(h, e.ID(), time.Unix(1765000000, 0), data)
	return e, data, h
}

func TestSignVerifyRoundTrip(t *testing.T) {
	k := mustKey(t)
	e, data, h := signedSample(t, k)
	ce, err := events.VerifyMessage([]events.PublicKey{k.Public()}, e.Subject(), h, data)
	if err != nil {
		t.Fatal(err)
	}
	if ce.ID != e.ID() || ce.Data.MerchantOrderID != e.MerchantOrderID || !ce.Data.Amount.Equal(e.Amount) {
		t.Fatalf("decoded %+v", ce)
	}
	if h[events.HeaderID] != e.ID() || h[events.HeaderTimestamp] != "1765000000" || !strings.HasPrefix(h[events.HeaderSignature], "v1a,") {
		t.Fatalf("headers %v", h)
	}
}

// sampleSubject is the subject benchEvent is published on.
const sampleSubject = "payhook.events.jpglo.payin.succeeded"

// TestVerifyMessageSubject: the signature covers the body, not the NATS
// subject, so VerifyMessage checks the subject against the signed event: a
// genuine event copied onto another subject is refused, so it cannot pass a
// reader's subject filter; a conflict event verifies on its conflict subject
// only.
func TestVerifyMessageSubject(t *testing.T) {
	k := mustKey(t)
	keys := []events.PublicKey{k.Public()}
	e, data, h := signedSample(t, k)
	if got := e.Subject(); got != sampleSubject {
		t.Fatalf("sample subject %s", got)
	}
	if _, err := events.VerifyMessage(keys, sampleSubject, h, data); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{
		"payhook.events.mpurse.payin.failed",    // relabelled provider and status
		"payhook.events.jpglo.payin.failed",     // relabelled status
		"payhook.events.jpglo.payout.succeeded", // relabelled kind
		"payhook.events.jpglo.payin.conflict",   // not a conflict event
		"payhook.events.jpglo.payin.succeeded.x",
		"",
	} {
		_, err := events.VerifyMessage(keys, subj, h, data)
		if !errors.Is(err, events.ErrSubjectMismatch) || !errors.Is(err, events.ErrSignature) {
			t.Errorf("on %q: err = %v, want ErrSubjectMismatch wrapping ErrSignature", subj, err)
		}
	}
	conflict, err := e.MarshalConflict(events.StatusFailed, "evt_prev")
	if err != nil {
		t.Fatal(err)
	}
	ch := hdr{}
	mustSigner(t, k).Sign(ch, e.ID(), time.Unix(1765000000, 0), conflict)
	ce, err := events.VerifyMessage(keys, e.ConflictSubject(), ch, conflict)
	if err != nil {
		t.Fatalf("conflict on its subject: %v", err)
	}
	if got := events.SubjectOf(ce); got != "payhook.events.jpglo.payin.conflict" {
		t.Fatalf("SubjectOf(conflict) = %s", got)
	}
	if _, err := events.VerifyMessage(keys, sampleSubject, ch, conflict); !errors.Is(err, events.ErrSubjectMismatch) {
		t.Fatalf("conflict on the succeeded subject: %v", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	k := mustKey(t)
	keys := []events.PublicKey{k.Public()}
	e, data, good := signedSample(t, k)
	other := benchEvent()
	other.MerchantOrderID = "999"
	otherData, _ := other.MarshalCloudEvent()
	otherSig := hdr{}
	mustSigner(t, k).Sign(otherSig, other.ID(), time.Unix(1765000000, 0), otherData)

	with := func(k, v string) hdr {
		h := hdr{}
		for a, b := range good {
			h[a] = b
		}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	tampered := []byte(strings.Replace(string(data), `"100000.00"`, `"900000.00"`, 1))
	if string(tampered) == string(data) {
		t.Fatal("tampering did not change the data")
	}
	cases := []struct {
		name string
		keys []events.PublicKey
		h    events.HeaderGetter
		data []byte
		want error
	}{
		{"tampered data", keys, good, tampered, events.ErrSignature},
		{"tampered id", keys, with(events.HeaderID, other.ID()), data, events.ErrSignature},
		{"tampered timestamp", keys, with(events.HeaderTimestamp, "1765000001"), data, events.ErrSignature},
		{"wrong key", []events.PublicKey{mustKey(t).Public()}, good, data, events.ErrSignature},
		{"no keys", nil, good, data, events.ErrSignature},
		{"zero key", []events.PublicKey{{}}, good, data, events.ErrSignature},
		{"signature of another event moved here", keys, otherSig, data, events.ErrSignature},
		{"no headers", keys, hdr{}, data, events.ErrUnsigned},
		{"nil headers", keys, nil, data, events.ErrUnsigned},
		{"missing id", keys, with(events.HeaderID, ""), data, events.ErrUnsigned},
		{"missing timestamp", keys, with(events.HeaderTimestamp, ""), data, events.ErrUnsigned},
		{"missing signature", keys, with(events.HeaderSignature, ""), data, events.ErrUnsigned},
		{"timestamp not digits", keys, with(events.HeaderTimestamp, "-1765000000"), data, events.ErrUnsigned},
		{"timestamp overflows", keys, with(events.HeaderTimestamp, "9999999999999999999"), data, events.ErrUnsigned},
		{"only an hmac signature", keys, with(events.HeaderSignature, "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="), data, events.ErrUnsigned},
		{"signature not base64", keys, with(events.HeaderSignature, "v1a,"+strings.Repeat("!", 88)), data, events.ErrUnsigned},
		{"signature too short", keys, with(events.HeaderSignature, "v1a,AAAA"), data, events.ErrUnsigned},
		{"id too long", keys, with(events.HeaderID, strings.Repeat("a", 300)), data, events.ErrUnsigned},
		{"too many signatures", keys, with(events.HeaderSignature, strings.Repeat(good[events.HeaderSignature]+" ", 17)), data, events.ErrUnsigned},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := events.VerifyMessage(c.keys, e.Subject(), c.h, c.data)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if h, ok := c.h.(hdr); ok && h[events.HeaderSignature] != "" && strings.Contains(err.Error(), h[events.HeaderSignature]) {
				t.Fatal("error repeats the signature")
			}
		})
	}
	// The event itself verifies, and the id check is what refuses a genuine
	// signature of one id on the body of another.
	if _, err := events.Verify(keys, with(events.HeaderID, e.ID()), data); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyIDMustMatchEvent(t *testing.T) {
	k := mustKey(t)
	e := benchEvent()
	data, _ := e.MarshalCloudEvent()
	h := hdr{}
	mustSigner(t, k).Sign(h, "not-the-event-id", time.Unix(1, 0), data)
	if _, err := events.Verify([]events.PublicKey{k.Public()}, h, data); err != nil {
		t.Fatalf("signature itself: %v", err)
	}
	if _, err := events.VerifyMessage([]events.PublicKey{k.Public()}, e.Subject(), h, data); !errors.Is(err, events.ErrSignature) {
		t.Fatalf("VerifyMessage = %v, want ErrSignature", err)
	}
}

// TestRotation: while the key is rotated, readers hold both public keys and
// accept either signer; a producer may also sign with both keys at once.
func TestRotation(t *testing.T) {
	old, next := mustKey(t), mustKey(t)
	both := []events.PublicKey{old.Public(), next.Public()}
	for name, signer := range map[string]events.PrivateKey{"old": old, "new": next} {
		_, data, h := signedSample(t, signer)
		if _, err := events.VerifyMessage(both, sampleSubject, h, data); err != nil {
			t.Errorf("%s key with both public keys: %v", name, err)
		}
	}
	_, data, h := signedSample(t, old)
	if _, err := events.VerifyMessage([]events.PublicKey{next.Public()}, sampleSubject, h, data); !errors.Is(err, events.ErrSignature) {
		t.Errorf("old key after it was dropped: %v", err)
	}
	// Signed by both: two space-separated signatures, either key verifies;
	// an HMAC signature among them is skipped.
	e := benchEvent()
	data, _ = e.MarshalCloudEvent()
	h = hdr{}
	mustSigner(t, old, next).Sign(h, e.ID(), time.Unix(1765000000, 0), data)
	if n := len(strings.Fields(h[events.HeaderSignature])); n != 2 {
		t.Fatalf("%d signatures", n)
	}
	h[events.HeaderSignature] = "v1,bm90IGFuIGhtYWM= " + h[events.HeaderSignature]
	for _, k := range both {
		if _, err := events.VerifyMessage([]events.PublicKey{k}, e.Subject(), h, data); err != nil {
			t.Errorf("dual-signed, one key: %v", err)
		}
	}
}

// TestKnownAnswer pins the wire format: ed25519 is deterministic, so a fixed
// seed and message give exactly this header. The expected values were
// computed with crypto/ed25519 directly, not through this package.
func TestKnownAnswer(t *testing.T) {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	k, err := events.PrivateKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	const (
		wantPriv = "whsk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
		wantPub  = "whpk_A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
		wantSig  = "v1a,yoUrgEkc12aGqm0n4Sydmdz55xJfTz4AsAgieHFjmkR7LJtqVCZOQYzvvHjI5kAey+r4iaBGxTFRrl2iBQxtDQ=="
	)
	if got := k.Encode(); got != wantPriv {
		t.Errorf("private key %s", got)
	}
	if got := k.Public().Encode(); got != wantPub {
		t.Errorf("public key %s", got)
	}
	h := hdr{}
	mustSigner(t, k).Sign(h, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if got := h[events.HeaderSignature]; got != wantSig {
		t.Errorf("signature %s", got)
	}
	pub, err := events.ParsePublicKey(wantPub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.Verify([]events.PublicKey{pub}, h, []byte(`{"test": 2432232314}`)); err != nil {
		t.Fatal(err)
	}
	if k.String() == wantPriv || strings.Contains(k.String(), wantPriv[5:]) {
		t.Error("String shows the private key")
	}
}

func TestParseKeys(t *testing.T) {
	k := mustKey(t)
	if got, err := events.ParsePrivateKey(k.Encode()); err != nil || got.Encode() != k.Encode() {
		t.Fatalf("private round trip: %v", err)
	}
	if got, err := events.ParsePublicKey(k.Public().Encode()); err != nil || !got.Equal(k.Public()) {
		t.Fatalf("public round trip: %v", err)
	}
	pub := k.Public().Encode()
	for name, s := range map[string]string{
		"empty":           "",
		"no prefix":       pub[5:],
		"private prefix":  "whsk_" + pub[5:],
		"webhook secret":  "whsec_" + pub[5:],
		"short":           pub[:40],
		"long":            pub + "AAAA",
		"not base64":      "whpk_" + strings.Repeat("*", 44),
		"unpadded":        "whpk_" + strings.TrimRight(pub[5:], "=") + "A",
		"non-zero bits":   "whpk_" + pub[5:47] + "B=",
		"url alphabet -_": "whpk_" + strings.Repeat("-", 43) + "=",
	} {
		if _, err := events.ParsePublicKey(s); !errors.Is(err, events.ErrKey) {
			t.Errorf("%s: ParsePublicKey = %v", name, err)
		}
		if _, err := events.ParsePrivateKey(strings.Replace(s, "whpk_", "whsk_", 1)); name != "private prefix" && !errors.Is(err, events.ErrKey) {
			t.Errorf("%s: ParsePrivateKey = %v", name, err)
		}
		if err := func() error { _, err := events.ParsePrivateKey(s); return err }(); err != nil && strings.Contains(err.Error(), pub[5:20]) {
			t.Errorf("%s: error repeats the key", name)
		}
	}
	if _, err := events.NewSigner(); !errors.Is(err, events.ErrKey) {
		t.Errorf("NewSigner() = %v", err)
	}
	if _, err := events.NewSigner(events.PrivateKey{}); !errors.Is(err, events.ErrKey) {
		t.Errorf("NewSigner(zero) = %v", err)
	}
	if _, err := events.ParsePublicKeys([]string{pub, "whpk_x"}); err == nil || !strings.HasPrefix(err.Error(), "[1]: ") {
		t.Errorf("ParsePublicKeys = %v", err)
	}
}

// FuzzVerify feeds arbitrary headers and keys to the parsers: never a panic,
// and nothing verifies under a key that did not sign.
func FuzzVerify(f *testing.F) {
	k, _ := events.PrivateKeyFromSeed(make([]byte, 32))
	e := benchEvent()
	data, _ := e.MarshalCloudEvent()
	h := hdr{}
	s, _ := events.NewSigner(k)
	s.Sign(h, e.ID(), time.Unix(1765000000, 0), data)
	f.Add(h[events.HeaderID], h[events.HeaderTimestamp], h[events.HeaderSignature], k.Public().Encode(), data)
	f.Add("id", "1", "v1a,"+strings.Repeat("A", 88), "whpk_"+strings.Repeat("A", 44), []byte("{}"))
	f.Add("", "", "v1,abc v1a, v1a,=", "whpk_", []byte(nil))
	f.Fuzz(func(t *testing.T, id, ts, sig, pub string, data []byte) {
		_, _ = events.ParsePrivateKey(pub)
		key, err := events.ParsePublicKey(pub)
		if err == nil && key.Encode() != pub {
			t.Fatalf("public key %q re-encodes as %q", pub, key.Encode())
		}
		h := hdr{events.HeaderID: id, events.HeaderTimestamp: ts, events.HeaderSignature: sig}
		got, err := events.Verify([]events.PublicKey{key}, h, data)
		if err == nil {
			if got != id {
				t.Fatalf("verified id %q, header %q", got, id)
			}
			// Only the seeds' signers can have made a signature that
			// verifies: the all-zero seed and the known-answer seed.
			if !key.Equal(k.Public()) && key.Encode() != "whpk_A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=" {
				t.Fatalf("verified under a key that signed nothing")
			}
		} else if !errors.Is(err, events.ErrUnsigned) && !errors.Is(err, events.ErrSignature) {
			t.Fatalf("error %v wraps neither sentinel", err)
		}
		_, _ = events.VerifyMessage([]events.PublicKey{key}, sampleSubject, h, data)
	})
}
