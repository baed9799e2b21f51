package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const good = `
nats:
  url: nats://127.0.0.1:4222
redis:
  url: redis://127.0.0.1:6379/0
ingress:
  listen: 127.0.0.1:8080
reconciler:
  schedule: [1m, 3m]
  retrigger_grace: 2m
admin_token: ${ADMIN}
accounts:
  - id: glo-in
    provider: jpglo
    merchant_id: "1"
    secret: ${JPGLO_KEY}
    base_url: https://api.example
    currency: INR
    allow_ips: [10.0.0.0/8, 1.2.3.4]
  - id: mp-in
    provider: mpurse
    merchant_id: Mct_1
    aes_key: mpurseKey16bytes
    currency: INR
subscribers:
  - id: ledger
    url: http://127.0.0.1:9100/hooks
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    filter:
      providers: [jpglo]
      kinds: [payin]
      statuses: [succeeded, failed]
    max_attempts: 15
    timeout: 10s
    backoff_initial: 5s
    backoff_max: 10h
`

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(good), env(map[string]string{"ADMIN": "tok", "JPGLO_KEY": "key: with #yaml [chars]"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminToken != "tok" {
		t.Errorf("admin_token = %q", c.AdminToken)
	}
	if c.Accounts[0].Secret != "key: with #yaml [chars]" {
		t.Errorf("secret expanded to %q", c.Accounts[0].Secret)
	}
	if c.Accounts[1].AESMode != "ecb" {
		t.Errorf("aes_mode default = %q", c.Accounts[1].AESMode)
	}
	if got := c.Reconciler.Schedule[1].D(); got != 3*time.Minute {
		t.Errorf("schedule[1] = %s", got)
	}
	if c.Ingress.BodyLimit != 64<<10 || c.Dedupe.Window.D() != 7*24*time.Hour {
		t.Errorf("defaults not applied: %+v %+v", c.Ingress, c.Dedupe)
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	base := map[string]string{"ADMIN": "t", "JPGLO_KEY": "k"}
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"missing env", good, map[string]string{"ADMIN": "t"}, "config: accounts[0].secret: environment variable JPGLO_KEY is not set"},
		{"unknown top key", good + "bogus: 1\n", base, "config: bogus: unknown key"},
		{"unknown nested key", strings.Replace(good, "  listen: 127.0.0.1:8080", "  listen: 127.0.0.1:8080\n  lisen: x", 1), base, "config: lisen: unknown key"},
		{"bad provider", strings.Replace(good, "provider: jpglo", "provider: paypal", 1), base, "config: accounts[0].provider: unknown provider"},
		{"bad id", strings.Replace(good, "id: glo-in", "id: Glo_In", 1), base, "config: accounts[0].id: must match"},
		{"bad aes key", strings.Replace(good, "mpurseKey16bytes", "short", 1), base, "config: accounts[1].aes_key: must be 16, 24 or 32 bytes"},
		{"bad duration", strings.Replace(good, "timeout: 10s", "timeout: ten", 1), base, "not a duration"},
		{"bad cidr", strings.Replace(good, "1.2.3.4", "1.2.3.400", 1), base, "config: accounts[0].allow_ips[1]: not a CIDR or IP"},
		{"bad secret", strings.Replace(good, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "plain", 1), base, "config: subscribers[0].secret: must be whsec_"},
		{"bad kind filter", strings.Replace(good, "kinds: [payin]", "kinds: [refund]", 1), base, "config: subscribers[0].filter.kinds: unknown kind"},
		{"bad yaml", "a: [", base, "config: not valid YAML"},
		{"secret not base64", strings.Replace(good, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!!not-base64!!!!", 1), base, "config: subscribers[0].secret: must be whsec_"},
		{"negative duration", strings.Replace(good, "  retrigger_grace: 2m", "  retrigger_grace: -2m", 1), base, "config: reconciler.retrigger_grace: must be positive"},
		{"proxy header without proxies", strings.Replace(good, "  listen: 127.0.0.1:8080", "  listen: 127.0.0.1:8080\n  trusted_proxy_header: X-Forwarded-For", 1), base, "config: ingress.trusted_proxies: required with trusted_proxy_header"},
		{"redis password not echoed", strings.Replace(good, "redis://127.0.0.1:6379/0", "redis//:hunter2@", 1), base, "config: redis.url: not a URL with a host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), env(c.env))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not contain %q", msg, c.want)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error leaks a secret: %q", msg)
			}
		})
	}
}

// Every key the code accepts is in docs/config.md, so the reference can't
// silently fall behind the code.
func TestEveryKeyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || ty == reflect.TypeOf(time.Time{}) {
			return
		}
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			if tag := strings.Split(f.Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				keys = append(keys, tag)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(Config{}))
	for _, k := range keys {
		if !strings.Contains(string(doc), "`"+k+"`") && !strings.Contains(string(doc), "## "+k) {
			t.Errorf("config key %q is not documented in docs/config.md", k)
		}
	}
	if len(keys) < 40 {
		t.Errorf("found only %d keys: the walk is broken", len(keys))
	}
}
