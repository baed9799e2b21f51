package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/registry"
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

// parseAll is Parse followed by the check binaries with providers make
// (CheckProviders against every registered provider).
func parseAll(b []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	c, err := Parse(b, lookupEnv)
	if err == nil {
		err = c.CheckProviders(registry.All())
	}
	return c, err
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseGood(t *testing.T) {
	c, err := parseAll([]byte(good), env(map[string]string{"ADMIN": "tok-0123456789abcdef0123456789abcdef", "JPGLO_KEY": "key: with #yaml [chars]"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminToken != "tok-0123456789abcdef0123456789abcdef" {
		t.Errorf("admin_token = %q", c.AdminToken)
	}
	if c.Accounts[0].Key("secret") != "key: with #yaml [chars]" {
		t.Errorf("secret expanded to %q", c.Accounts[0].Key("secret"))
	}
	if c.Accounts[0].MaxAge != 144*time.Hour || c.Accounts[1].MaxAge != 144*time.Hour {
		t.Errorf("max_age default = %s, %s, want 144h (the 168h dedupe window less a seventh)", c.Accounts[0].MaxAge, c.Accounts[1].MaxAge)
	}
	if c2, err := parseAll([]byte(strings.Replace(good, "    currency: INR\n    allow_ips", "    currency: INR\n    max_age: ${AGE}\n    allow_ips", 1)),
		env(map[string]string{"ADMIN": strings.Repeat("t", 32), "JPGLO_KEY": "k", "AGE": "48h"})); err != nil || c2.Accounts[0].MaxAge != 48*time.Hour {
		t.Errorf("max_age from the environment: %v", err)
	}
	if _, err := parseAll([]byte(strings.Replace(good, "    currency: INR\n    allow_ips", "    currency: INR\n    max_age: ${AGE}\n    allow_ips", 1)),
		env(map[string]string{"ADMIN": strings.Repeat("t", 32), "JPGLO_KEY": "k", "AGE": "two days"})); err == nil ||
		err.Error() != "config: accounts[0].max_age: environment variable AGE: the value is not a duration (like 90s or 2h)" {
		t.Errorf("bad max_age from the environment: %v", err)
	}
	if got := c.Reconciler.Schedule[1].D(); got != 3*time.Minute {
		t.Errorf("schedule[1] = %s", got)
	}
	if c.Ingress.BodyLimit != 64<<10 || c.Dedupe.Window.D() != 7*24*time.Hour {
		t.Errorf("defaults not applied: %+v %+v", c.Ingress, c.Dedupe)
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	base := map[string]string{"ADMIN": "t-0123456789abcdef0123456789abcdef", "JPGLO_KEY": "k"}
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"missing env", good, map[string]string{"ADMIN": "t-0123456789abcdef0123456789abcdef"}, "config: accounts[0].secret: environment variable JPGLO_KEY is not set"},
		{"unknown top key", good + "bogus: 1\n", base, "config: bogus: unknown key"},
		{"unknown nested key", strings.Replace(good, "  listen: 127.0.0.1:8080", "  listen: 127.0.0.1:8080\n  lisen: x", 1), base, "config: ingress.lisen: unknown key (line 8)"},
		{"bad provider", strings.Replace(good, "provider: jpglo", "provider: paypal", 1), base, "config: accounts[0].provider: unknown provider"},
		{"bad id", strings.Replace(good, "id: glo-in", "id: Glo_In", 1), base, "config: accounts[0].id: must match"},
		{"bad aes key", strings.Replace(good, "mpurseKey16bytes", "short", 1), base, "config: accounts[1].aes_key: must be 16, 24 or 32 bytes"},
		{"bad duration", strings.Replace(good, "timeout: 10s", "timeout: ten", 1), base, "config: subscribers[0].timeout: not a duration"},
		{"bad cidr", strings.Replace(good, "1.2.3.4", "1.2.3.400", 1), base, "config: accounts[0].allow_ips[1]: not a CIDR or IP"},
		{"bad secret", strings.Replace(good, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "plain", 1), base, "config: subscribers[0].secret: must be whsec_"},
		{"bad kind filter", strings.Replace(good, "kinds: [payin]", "kinds: [refund]", 1), base, "config: subscribers[0].filter.kinds: unknown kind"},
		{"bad start", strings.Replace(good, "timeout: 10s", "timeout: 10s\n    start: yesterday", 1), base, "config: subscribers[0].start: want new, all or an RFC 3339 time"},
		{"start without zone", strings.Replace(good, "timeout: 10s", "timeout: 10s\n    start: 2026-12-01T00:00:00", 1), base, "config: subscribers[0].start: want new, all or an RFC 3339 time"},
		{"bad yaml", "a: [", base, "config: not valid YAML"},
		{"secret not base64", strings.Replace(good, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!!not-base64!!!!", 1), base, "config: subscribers[0].secret: must be whsec_"},
		{"negative duration", strings.Replace(good, "  retrigger_grace: 2m", "  retrigger_grace: -2m", 1), base, "config: reconciler.retrigger_grace: must be positive"},
		{"proxy header without proxies", strings.Replace(good, "  listen: 127.0.0.1:8080", "  listen: 127.0.0.1:8080\n  trusted_proxy_header: X-Forwarded-For", 1), base, "config: ingress.trusted_proxies: required with trusted_proxy_header"},
		{"redis password not echoed", strings.Replace(good, "redis://127.0.0.1:6379/0", "redis//:hunter2@", 1), base, "config: redis.url: not a URL with a host"},
		{"sentinel without master", strings.Replace(good, "  url: redis://127.0.0.1:6379/0", "  sentinel: {addrs: [\"s1:26379\"]}", 1), base, "config: redis.sentinel.master: required with redis.sentinel.addrs"},
		{"sentinel without addrs", strings.Replace(good, "  url: redis://127.0.0.1:6379/0", "  sentinel: {master: payhook}", 1), base, "config: redis.sentinel.addrs: required with redis.sentinel.master"},
		{"sentinel addr without port", strings.Replace(good, "  url: redis://127.0.0.1:6379/0", "  sentinel: {master: payhook, addrs: [\"s1:26379\", \"s2\"]}", 1), base, "config: redis.sentinel.addrs[1]: not host:port"},
		{"sentinel with a url of another scheme", strings.Replace(good, "  url: redis://127.0.0.1:6379/0", "  url: http://x/0\n  sentinel: {master: payhook, addrs: [\"s1:26379\"]}", 1), base, "config: redis.url: with redis.sentinel: want redis://"},
		{"short admin token", good, map[string]string{"ADMIN": "a", "JPGLO_KEY": "k"}, "config: admin_token: must be at least 32 bytes"},
		{"admin token of 31 bytes", good, map[string]string{"ADMIN": strings.Repeat("x", 31), "JPGLO_KEY": "k"}, "config: admin_token: must be at least 32 bytes"},
		{"max_age not a duration", strings.Replace(good, "    currency: INR\n    allow_ips", "    currency: INR\n    max_age: 3600\n    allow_ips", 1), base, "config: accounts[0].max_age: not a duration"},
		{"max_age negative", strings.Replace(good, "    currency: INR\n    allow_ips", "    currency: INR\n    max_age: -1h\n    allow_ips", 1), base, "config: accounts[0].max_age: must be positive"},
		{"max_age as long as the window", strings.Replace(good, "    currency: INR\n    allow_ips", "    currency: INR\n    max_age: 168h\n    allow_ips", 1), base,
			"config: accounts[0].max_age: must be at most dedupe.window (168h0m0s) less the 3h0m0s allowed clock skew, 165h0m0s"},
		{"max_age past a shorter window", strings.Replace(good, "    currency: INR\n    allow_ips", "    currency: INR\n    max_age: 30h\n    allow_ips", 1) + "dedupe: {window: 24h}\n", base,
			"config: accounts[0].max_age: must be at most dedupe.window (24h0m0s)"},
		{"dedupe window under a day", good + "dedupe: {window: 12h}\n", base, "config: dedupe.window: must be at least 24h0m0s"},
		{"jpglo accounts sharing a secret", withAccounts(sameCreds("glo-b", "jpglo", "2", "${JPGLO_KEY}", "")), base,
			`config: accounts[2]: account "glo-b" has the same secret (jpglo callbacks carry no merchant id) as accounts[0] "glo-in"`},
		{"mpurse accounts sharing merchant and key", withAccounts(sameCreds("mp-b", "mpurse", "Mct_1", "", "mpurseKey16bytes")), base,
			`config: accounts[2]: account "mp-b" has the same merchant_id and aes_key as accounts[1] "mp-in"`},
		{"mrnpay accounts sharing merchant and secret", withAccounts(sameCreds("mrn-a", "mrnpay", "app1", "k1", "") + sameCreds("mrn-b", "mrnpay", "app1", "k1", "")), base,
			`config: accounts[3]: account "mrn-b" has the same merchant_id and secret as accounts[2] "mrn-a"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseAll([]byte(c.yaml), env(c.env))
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

// A ${NAME} value decodes into its field's type: numbers and durations as
// such, strings literally whatever they look like.
func TestEnvValuesTakeTheFieldsType(t *testing.T) {
	const doc = `
nats:
  url: nats://127.0.0.1:4222
  replicas: ${REPLICAS}
  raw_max_age: ${RAW_AGE}
ingress:
  body_limit: "${BODY}"
reconciler:
  rate_per_second: ${RATE}
  rate_burst: ${BURST}
  schedule: ["${FIRST}", 3m]
accounts:
  - id: glo-in
    provider: jpglo
    merchant_id: "${MID}"
    secret: ${SECRET}
    currency: INR
  - id: mrn-two
    provider: mrnpay
    merchant_id: ${MID}
    secret: '${SECRET}'
    currency: INR
subscribers:
  - id: ledger
    url: http://127.0.0.1:9100/hooks
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    max_attempts: ${ATTEMPTS}
    concurrency: ${CONC}
    rate_per_second: ${SUB_RATE}
    rate_burst: ${SUB_BURST}
    timeout: ${TIMEOUT}
`
	base := map[string]string{
		"REPLICAS": "3", "RAW_AGE": "48h", "BODY": "2048", "RATE": "2.5", "BURST": "7", "FIRST": "90s",
		"MID": "007", "SECRET": "s", "ATTEMPTS": "4", "CONC": "0x10", "SUB_RATE": "1", "SUB_BURST": "2", "TIMEOUT": "3s",
	}
	c, err := parseAll([]byte(doc), env(base))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Subscribers[0]
	for _, got := range []struct {
		name      string
		got, want any
	}{
		{"nats.replicas", c.NATS.Replicas, 3},
		{"nats.raw_max_age", c.NATS.RawMaxAge.D(), 48 * time.Hour},
		{"ingress.body_limit (quoted)", c.Ingress.BodyLimit, int64(2048)},
		{"reconciler.rate_per_second", c.Reconciler.RatePerSecond, 2.5},
		{"reconciler.rate_burst", c.Reconciler.RateBurst, 7},
		{"reconciler.schedule[0]", c.Reconciler.Schedule[0].D(), 90 * time.Second},
		{"accounts[0].merchant_id (quoted)", c.Accounts[0].Key("merchant_id"), "007"},
		{"accounts[1].merchant_id (plain)", c.Accounts[1].Key("merchant_id"), "007"},
		{"subscribers[0].max_attempts", s.MaxAttempts, 4},
		{"subscribers[0].concurrency (hex, as YAML reads it)", s.Concurrency, 16},
		{"subscribers[0].rate_per_second", s.RatePerSecond, 1.0},
		{"subscribers[0].rate_burst", s.RateBurst, 2},
		{"subscribers[0].timeout", s.Timeout.D(), 3 * time.Second},
	} {
		if got.got != got.want {
			t.Errorf("%s = %#v, want %#v", got.name, got.got, got.want)
		}
	}

	// An empty value in a number field is YAML's null: the default stays.
	empty := map[string]string{}
	for k, v := range base {
		empty[k] = v
	}
	empty["REPLICAS"], empty["BURST"] = "", ""
	if c, err := parseAll([]byte(doc), env(empty)); err != nil {
		t.Errorf("empty number: %v", err)
	} else if c.NATS.Replicas != 1 || c.Reconciler.RateBurst != 10 {
		t.Errorf("empty number: replicas %d rate_burst %d, want the defaults 1 and 10", c.NATS.Replicas, c.Reconciler.RateBurst)
	}

	// Secrets and ids are taken literally, whatever YAML would make of them.
	for _, secret := range []string{
		"007", "true", "null", "~", "1e3", "0x10", ".inf", "3m",
		"key: with #yaml [chars]", "*alias", "&anchor x", "!tag x", "!!int 3", "- item", "? key", "[a, b]", "{a: b}",
		"|", ">", "%YAML", "@at", "`tick", "'single", `"double`, "a\nb", " padded ", "tab\tin", "#comment",
		"${NOT_EXPANDED_TWICE}", "---", "...", "<<", "x: &a [*a]",
	} {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		m["SECRET"], m["MID"] = secret, secret
		c, err := parseAll([]byte(doc), env(m))
		if err != nil {
			t.Errorf("secret %q: %v", secret, err)
			continue
		}
		for i, a := range c.Accounts {
			if a.Key("secret") != secret || a.Key("merchant_id") != secret {
				t.Errorf("secret %q: accounts[%d] secret %q merchant_id %q", secret, i, a.Key("secret"), a.Key("merchant_id"))
			}
		}
	}
}

func TestEnvValueOfTheWrongType(t *testing.T) {
	base := map[string]string{"ADMIN": "t-0123456789abcdef0123456789abcdef", "JPGLO_KEY": "k"}
	const nats, rec = "  url: nats://127.0.0.1:4222", "  retrigger_grace: 2m"
	cases := []struct {
		name, at, line, value, want string
	}{
		{"word for an int", nats, "  replicas: ${N}", "hunter2", "config: nats.replicas: environment variable N: the value is not an integer"},
		{"fraction for an int", nats, "  replicas: ${N}", "1.5", "config: nats.replicas: environment variable N: the value is not an integer"},
		{"out of range", nats, "  replicas: ${N}", "99999999999999999999", "config: nats.replicas: environment variable N: the value is not an integer"},
		{"two variables", nats, "  replicas: ${N}${N}", "x", "config: nats.replicas: environment variable N, N: the value is not an integer"},
		{"word for a float", rec, "  rate_per_second: ${N}", "hunter2", "config: reconciler.rate_per_second: environment variable N: the value is not a number"},
		{"bad duration", nats, "  raw_max_age: ${N}", "hunter2", "config: nats.raw_max_age: environment variable N: the value is not a duration (like 90s or 2h)"},
		{"range still checked", nats, "  replicas: ${N}", "9", "config: nats.replicas: must be 1 to 5, got 9"},
		{"raw stream too small", nats, "  raw_max_bytes: ${N}", "65536", "config: nats.raw_max_bytes: must be at least 1 MiB and 16 times ingress.body_limit"},
		{"rejected stream too small", nats, "  raw_rejected_max_bytes: ${N}", "1048575", "config: nats.raw_rejected_max_bytes: must be at least 1 MiB"},
		{"negative rejection rate", "  listen: 127.0.0.1:8080", "  rejections_per_second: ${N}", "-1", "config: ingress.rejections_per_second: must be positive, got -1"},
		{"negative rejection burst", "  listen: 127.0.0.1:8080", "  rejections_burst: ${N}", "-3", "config: ingress.rejections_burst: must be positive, got -3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := strings.Replace(good, c.at, c.at+"\n"+c.line, 1)
			_, err := parseAll([]byte(doc), env(map[string]string{"N": c.value, "ADMIN": base["ADMIN"], "JPGLO_KEY": base["JPGLO_KEY"]}))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error echoes the value: %q", err)
			}
		})
	}
}

// Unknown keys are named by their dotted path and their line in the file.
func TestUnknownKeyNamesThePath(t *testing.T) {
	base := map[string]string{"ADMIN": "t-0123456789abcdef0123456789abcdef", "JPGLO_KEY": "k"}
	cases := []struct{ name, from, to, key, want string }{
		{"top", "admin_token: ${ADMIN}", "admin_token: ${ADMIN}\nbogus: 1", "bogus: 1", "config: bogus: unknown key"},
		{"nested", "  listen: 127.0.0.1:8080", "  listen: 127.0.0.1:8080\n  lisen: x", "  lisen: x", "config: ingress.lisen: unknown key"},
		{"in a list", "    currency: INR\n    allow_ips", "    currency: INR\n    secrett: x\n    allow_ips", "secrett: x", "config: accounts[0].secrett: unknown key for jpglo (its keys: merchant_id, secret, sign_rule)"},
		{"second element", "    aes_key: mpurseKey16bytes", "    aes_key: mpurseKey16bytes\n    aes_kee: x", "aes_kee: x", "config: accounts[1].aes_kee: unknown key for mpurse (its keys: aes_iv, aes_key, aes_mode, merchant_id, sign_rule)"},
		{"deep", "      kinds: [payin]", "      kinds: [payin]\n      kind: payin", "kind: payin", "config: subscribers[0].filter.kind: unknown key"},
		{"flow style", "  retrigger_grace: 2m", "  retrigger_grace: 2m\n  providers: {jpglo: {schedul: [1m]}}", "providers: {", "config: reconciler.providers.jpglo.schedul: unknown key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(good, c.from) {
				t.Fatalf("%q not in the base document", c.from)
			}
			doc := strings.Replace(good, c.from, c.to, 1)
			line := strings.Count(doc[:strings.Index(doc, c.key)], "\n") + 1
			_, err := parseAll([]byte(doc), env(base))
			var ce *Error
			if err == nil || !errors.As(err, &ce) {
				t.Fatalf("err %v, want a *config.Error", err)
			}
			if want := fmt.Sprintf("%s (line %d)", c.want, line); err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
	// A key the walk does not see (through an alias) is still refused by
	// the decoder, named by its leaf.
	alias := strings.Replace(good, "  listen: 127.0.0.1:8080", "  listen: 127.0.0.1:8080\nlog: &l {level: info}\ndedupe: *l", 1)
	if _, err := parseAll([]byte(alias), env(base)); err == nil || err.Error() != "config: level: unknown key (in Dedupe)" {
		t.Errorf("through an alias: %v", err)
	}
	// The merge key is YAML, not an unknown key.
	merged := strings.Replace(good, "  listen: 127.0.0.1:8080", "  listen: 127.0.0.1:8080\ndispatcher:\n  <<: {listen: 127.0.0.1:9999}", 1)
	if c, err := parseAll([]byte(merged), env(base)); err != nil || c.Dispatcher.Listen != "127.0.0.1:9999" {
		t.Errorf("merge key: %v", err)
	}
}

// sign_rule is checked against the account's provider: every cashypro and
// fantian rule is accepted where it belongs, anything else names the key.
func TestSignRule(t *testing.T) {
	base := map[string]string{"ADMIN": "t-0123456789abcdef0123456789abcdef", "JPGLO_KEY": "k"}
	account := func(provider, rule string) string {
		return strings.Replace(good, "subscribers:", "  - id: extra\n    provider: "+provider+"\n    merchant_id: \"1\"\n    secret: s\n    currency: IDR\n    sign_rule: "+rule+"\nsubscribers:", 1)
	}
	for _, c := range []struct{ provider, rule string }{
		{"cashypro", "default"}, {"cashypro", "sorted-upper"}, {"cashypro", "sorted-lower"},
		{"cashypro", "sorted-empty-upper"}, {"cashypro", "sorted-empty-lower"}, {"cashypro", "body-upper"}, {"cashypro", "body-lower"},
		{"fantian", "default"}, {"fantian", "sorted-lower"}, {"fantian", "sorted-upper"},
		{"jpglo", "default"}, {"mrnpay", `""`},
	} {
		c2, err := parseAll([]byte(account(c.provider, c.rule)), env(base))
		if err != nil {
			t.Errorf("%s %s: %v", c.provider, c.rule, err)
			continue
		}
		if got := c2.Accounts[2].Key("sign_rule"); got != strings.Trim(c.rule, `"`) {
			t.Errorf("%s %s: sign_rule %q", c.provider, c.rule, got)
		}
	}
	for _, c := range []struct{ provider, rule, want string }{
		{"cashypro", "sha256", `config: accounts[2].sign_rule: want one of default, sorted-upper, sorted-lower, sorted-empty-upper, sorted-empty-lower, body-upper, body-lower for cashypro, got "sha256"`},
		{"cashypro", "SORTED-UPPER", `config: accounts[2].sign_rule: want one of`},
		{"fantian", "body-upper", `config: accounts[2].sign_rule: want default, sorted-lower or sorted-upper for fantian, got "body-upper"`},
		{"jpglo", "sorted-lower", `config: accounts[2].sign_rule: the jpglo signing rule is fixed by its documentation: only default, got "sorted-lower"`},
	} {
		_, err := parseAll([]byte(account(c.provider, c.rule)), env(base))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s %s: err %v, want %q", c.provider, c.rule, err, c.want)
		}
	}
}

// nats.* auth and TLS: one method at most, files readable at validation,
// errors naming the key and never the secret.
func TestNATSAuthAndTLS(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "svc.creds")
	if err := os.WriteFile(creds, []byte("-----BEGIN NATS USER JWT-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hunter2"), 0o600); err != nil {
		t.Fatal(err)
	}
	const seed = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU"
	base := map[string]string{"ADMIN": "t-0123456789abcdef0123456789abcdef", "JPGLO_KEY": "k", "SEED": seed, "PW": "hunter2"}
	nats := func(extra string) string {
		return strings.Replace(good, "  url: nats://127.0.0.1:4222\n", "  url: nats://n1:4222, nats://n2:4222,nats://n3:4222\n"+extra, 1)
	}
	for _, ok := range []string{"", "  creds: " + creds + "\n", "  nkey_seed: ${SEED}\n", "  user: ingress\n  password: ${PW}\n", "  token: ${PW}\n"} {
		c, err := parseAll([]byte(nats(ok)), env(base))
		if err != nil {
			t.Fatalf("%q: %v", ok, err)
		}
		if got := c.NATS.URLs(); len(got) != 3 || got[1] != "nats://n2:4222" {
			t.Errorf("URLs() = %q", got)
		}
	}
	cases := []struct{ name, extra, want string }{
		{"two methods", "  creds: " + creds + "\n  token: ${PW}\n", "config: nats.token: only one of creds, nkey_seed, user and password, token may be set (also set: creds)"},
		{"user without password", "  user: ingress\n", "config: nats.password: required with nats.user"},
		{"password without user", "  password: ${PW}\n", "config: nats.user: required with nats.password"},
		{"creds missing", "  creds: " + filepath.Join(dir, "nope.creds") + "\n", "config: nats.creds: open "},
		{"creds is a directory", "  creds: " + dir + "\n", "config: nats.creds: " + dir + " is a directory"},
		{"bad seed", "  nkey_seed: ${PW}\n", "config: nats.nkey_seed: not an nkey seed"},
		{"account seed", "  nkey_seed: SAAOG6YRGBWFTMNSUKYNEBLJA3AJS4DB7TOYRJU3PXF3EZ6SVXCX3KSLY4\n", "config: nats.nkey_seed:"},
		{"ca not PEM", "  tls: {ca: " + notPEM + "}\n", "config: nats.tls.ca: no PEM certificate"},
		{"ca missing", "  tls: {ca: " + filepath.Join(dir, "none.pem") + "}\n", "config: nats.tls.ca: open "},
		{"cert without key", "  tls: {cert: " + notPEM + "}\n", "config: nats.tls.key: required with nats.tls.cert"},
		{"key without cert", "  tls: {key: " + notPEM + "}\n", "config: nats.tls.cert: required with nats.tls.key"},
		{"cert and key not a pair", "  tls: {cert: " + notPEM + ", key: " + notPEM + "}\n", "config: nats.tls.cert: with nats.tls.key: "},
		{"empty seed url", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := nats(c.extra)
			if c.want == "" {
				doc = strings.Replace(good, "  url: nats://127.0.0.1:4222\n", "  url: nats://n1:4222,,nats//bad\n", 1)
				c.want = "config: nats.url: not a URL with a host"
			}
			_, err := parseAll([]byte(doc), env(base))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not contain %q", msg, c.want)
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "hunter2") || strings.Contains(msg, seed) {
				t.Errorf("error is not one line or leaks a secret: %q", msg)
			}
		})
	}
}

// withAccounts is good with more accounts after its own.
func withAccounts(extra string) string {
	return strings.Replace(good, "subscribers:\n", extra+"subscribers:\n", 1)
}

// sameCreds renders one account list item.
func sameCreds(id, provider, merchant, secret, aesKey string) string {
	out := "  - id: " + id + "\n    provider: " + provider + "\n    merchant_id: \"" + merchant + "\"\n    currency: INR\n"
	if secret != "" {
		out += "    secret: " + secret + "\n"
	}
	if aesKey != "" {
		out += "    aes_key: " + aesKey + "\n"
	}
	return out
}

// TestRedisSentinel: redis.sentinel with a URL that carries only the
// password and database (no host) is a valid config, and makes Redis the
// dedupe store.
func TestRedisSentinel(t *testing.T) {
	text := strings.Replace(good, "  url: redis://127.0.0.1:6379/0",
		"  url: redis://:pw@/2\n  sentinel: {master: payhook, addrs: [\"s1:26379\", \"s2:26379\", \"s3:26379\"], password: sp}", 1)
	env := map[string]string{"ADMIN": "t-0123456789abcdef0123456789abcdef", "JPGLO_KEY": "k"}
	cfg, err := Parse([]byte(text), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if sn := cfg.Redis.Sentinel; sn.Master != "payhook" || len(sn.Addrs) != 3 || sn.Password != "sp" || !cfg.Redis.UsesRedis() {
		t.Errorf("sentinel = %+v, uses redis %v", sn, cfg.Redis.UsesRedis())
	}
}
