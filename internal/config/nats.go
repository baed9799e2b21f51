package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nkeys"
)

// URLs returns the seed URLs of nats.url, trimmed, without empties.
func (n NATS) URLs() []string {
	var out []string
	for _, u := range strings.Split(n.URL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// AuthMethod names the configured way to authenticate ("creds",
// "nkey_seed", "user", "token"), or "" for none.
func (n NATS) AuthMethod() string {
	switch {
	case n.Creds != "":
		return "creds"
	case n.NkeySeed != "":
		return "nkey_seed"
	case n.User != "" || n.Password != "":
		return "user"
	case n.Token != "":
		return "token"
	}
	return ""
}

// validate checks nats.*: every seed URL, at most one way to authenticate,
// and that every file named can be read now rather than at the first
// reconnect. No message echoes a secret's value.
func (n NATS) validate() error {
	if n.URL != "" {
		urls := n.URLs()
		if len(urls) == 0 {
			return errf("nats.url", "no URL between the commas")
		}
		for _, u := range urls {
			if err := checkURL("nats.url", u, "nats", "tls", "ws", "wss"); err != nil {
				return err
			}
		}
	}
	var set []string
	if n.Creds != "" {
		set = append(set, "creds")
	}
	if n.NkeySeed != "" {
		set = append(set, "nkey_seed")
	}
	if n.User != "" || n.Password != "" {
		set = append(set, "user")
	}
	if n.Token != "" {
		set = append(set, "token")
	}
	if len(set) > 1 {
		return errf("nats."+set[1], "only one of creds, nkey_seed, user and password, token may be set (also set: %s)", set[0])
	}
	if n.User != "" && n.Password == "" {
		return errf("nats.password", "required with nats.user")
	}
	if n.Password != "" && n.User == "" {
		return errf("nats.user", "required with nats.password")
	}
	if n.Creds != "" {
		if err := readable("nats.creds", n.Creds); err != nil {
			return err
		}
	}
	if n.NkeySeed != "" {
		kp, err := nkeys.FromSeed([]byte(n.NkeySeed))
		if err != nil {
			return errf("nats.nkey_seed", "not an nkey seed (want the SU... text of a user seed)")
		}
		pub, err := kp.PublicKey()
		kp.Wipe()
		if err != nil || !nkeys.IsValidPublicUserKey(pub) {
			return errf("nats.nkey_seed", "not a user nkey seed (want SU...)")
		}
	}
	return n.TLS.validate()
}

func (t NATSTLS) validate() error {
	if t.CA != "" {
		b, err := os.ReadFile(t.CA)
		if err != nil {
			return errf("nats.tls.ca", "%s", oneLine(err.Error()))
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return errf("nats.tls.ca", "no PEM certificate in %s", t.CA)
		}
	}
	switch {
	case t.Cert != "" && t.Key == "":
		return errf("nats.tls.key", "required with nats.tls.cert")
	case t.Key != "" && t.Cert == "":
		return errf("nats.tls.cert", "required with nats.tls.key")
	case t.Cert != "":
		if err := readable("nats.tls.cert", t.Cert); err != nil {
			return err
		}
		if err := readable("nats.tls.key", t.Key); err != nil {
			return err
		}
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			// crypto/tls names the problem, never the key's bytes.
			return errf("nats.tls.cert", "with nats.tls.key: %s", oneLine(err.Error()))
		}
	}
	return nil
}

// readable reports a file that cannot be opened for reading.
func readable(key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errf(key, "%s", oneLine(err.Error()))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return errf(key, "%s", oneLine(err.Error()))
	}
	if st.IsDir() {
		return errf(key, "%s is a directory", path)
	}
	if _, err := f.Read(make([]byte, 1)); err != nil {
		return errf(key, "cannot read %s: %s", path, oneLine(fmt.Sprint(err)))
	}
	return nil
}
