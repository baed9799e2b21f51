package config

import (
	"strings"
	"testing"
)

// Known-answer keys of pkg/events (seed 00 01 .. 1f): test values only.
const (
	testPriv = "whsk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	testPub  = "whpk_A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
)

func TestEventSigningKeys(t *testing.T) {
	c, err := Parse([]byte("event_signing:\n  private_key: ${K}\n  public_keys: [\""+testPub+"\", \""+testPub+"\"]\n"),
		env(map[string]string{"K": testPriv}))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := c.EventSigning.Signer("ingress"); err != nil || s == nil {
		t.Fatalf("Signer = %v, %v", s, err)
	}
	if keys, err := c.EventSigning.PublicKeyList("dispatcher"); err != nil || len(keys) != 2 {
		t.Fatalf("PublicKeyList = %v, %v", keys, err)
	}
}

func TestEventSigningErrors(t *testing.T) {
	for name, c := range map[string]struct{ yaml, key string }{
		"private key not base64":  {"event_signing:\n  private_key: whsk_" + strings.Repeat("*", 44) + "\n", "event_signing.private_key: "},
		"private key short":       {"event_signing:\n  private_key: whsk_AAEC\n", "event_signing.private_key: "},
		"public key as private":   {"event_signing:\n  private_key: " + testPub + "\n", "event_signing.private_key: "},
		"second public key bad":   {"event_signing:\n  public_keys: [\"" + testPub + "\", whpk_AAAA]\n", "event_signing.public_keys[1]: "},
		"webhook secret as key":   {"event_signing:\n  public_keys: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]\n", "event_signing.public_keys[0]: "},
		"disabled is not boolean": {"event_signing:\n  disabled: maybe\n", ""},
	} {
		_, err := Parse([]byte(c.yaml), env(nil))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "event_signing") && c.key != "" || !strings.Contains(msg, c.key) {
			t.Errorf("%s: %q, want one line with %q", name, msg, c.key)
		}
		if strings.Contains(msg, "AAEC") || strings.Contains(msg, "MfKQ") {
			t.Errorf("%s: error repeats the key: %q", name, msg)
		}
	}
}

func TestEventSigningRoles(t *testing.T) {
	var none EventSigning
	if _, err := none.Signer("ingress"); err == nil || !strings.Contains(err.Error(), "event_signing.private_key: required by the ingress") {
		t.Errorf("Signer without a key: %v", err)
	}
	if _, err := none.PublicKeyList("dispatcher"); err == nil || !strings.Contains(err.Error(), "event_signing.public_keys: required by the dispatcher") {
		t.Errorf("PublicKeyList without keys: %v", err)
	}
	off := EventSigning{Disabled: true}
	if s, err := off.Signer("reconciler"); s != nil || err != nil {
		t.Errorf("disabled Signer = %v, %v", s, err)
	}
	if k, err := off.PublicKeyList("dispatcher"); k != nil || err != nil {
		t.Errorf("disabled PublicKeyList = %v, %v", k, err)
	}
}

func TestEventSigningPlaceholders(t *testing.T) {
	const published = "UkVQTEFDRS1NRS13aXRoLXBheWhvb2sta2V5Z2VuISE=" // base64 of the 32-byte placeholder
	for name, c := range map[string]struct{ yaml, key string }{
		"shipped private placeholder":     {"event_signing:\n  private_key: whsk_REPLACE-ME-run-payhook-keygen\n", "event_signing.private_key: "},
		"shipped public placeholder":      {"event_signing:\n  public_keys: [\"" + testPub + "\", whpk_REPLACE-ME-run-payhook-keygen]\n", "event_signing.public_keys[1]: "},
		"other REPLACE private":           {"event_signing:\n  private_key: whsk_REPLACEME\n", "event_signing.private_key: "},
		"well-formed placeholder seed":    {"event_signing:\n  private_key: whsk_" + published + "\n", "event_signing.private_key: "},
		"well-formed placeholder pub key": {"event_signing:\n  public_keys: [whpk_" + published + "]\n", "event_signing.public_keys[0]: "},
		"placeholder after env expansion": {"event_signing:\n  private_key: ${K}\n", "event_signing.private_key: "},
		"placeholder with a real pub key": {"event_signing:\n  private_key: whsk_" + published + "\n  public_keys: [\"" + testPub + "\"]\n", "event_signing.private_key: "},
	} {
		_, err := Parse([]byte(c.yaml), env(map[string]string{"K": "whsk_" + published}))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "config: "+c.key) || !strings.Contains(msg, "replace the placeholder: generate a pair with payhook-keygen") {
			t.Errorf("%s: %q, want one line %q... naming payhook-keygen", name, msg, c.key)
		}
	}
	// Signer and PublicKeyList refuse them too (an EventSigning built in code).
	if _, err := (EventSigning{PrivateKey: "whsk_" + published}).Signer("ingress"); err == nil || !strings.Contains(err.Error(), "payhook-keygen") {
		t.Errorf("Signer with the placeholder seed: %v", err)
	}
	if _, err := (EventSigning{PublicKeys: []string{"whpk_" + published}}).PublicKeyList("dispatcher"); err == nil || !strings.Contains(err.Error(), "payhook-keygen") {
		t.Errorf("PublicKeyList with the placeholder key: %v", err)
	}

	// Published real pairs stay usable: devstack and tests run on them.
	for name, pair := range map[string][2]string{
		"compose dev pair (deploy/compose/.env.example)": {"whsk_UeyNn3PoOKuXB2PE0WsbQbSdkP8kpoMBaIGi9vFtK1s=", "whpk_Ajz2z7h9nX6iNm2Po9OkGNVf1sZxMAfYewj8ST7BFdU="},
		"test pair (internal/testenv)":                   {"whsk_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=", "whpk_ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="},
		"known-answer pair":                              {testPriv, testPub},
	} {
		if _, err := Parse([]byte("event_signing:\n  private_key: "+pair[0]+"\n  public_keys: [\""+pair[1]+"\"]\n"), env(nil)); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
}
