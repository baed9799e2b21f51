package security_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
)

// testPKI is a throwaway CA with a server and a client certificate, as PEM files.
type testPKI struct {
	ca                  *x509.CertPool
	caFile              string
	serverCert          tls.Certificate
	clientCrt, clientKy string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "payhook test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := testPKI{ca: x509.NewCertPool(), caFile: write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))}
	p.ca.AddCert(caCert)
	sc, sk := issue(2, "nats", x509.ExtKeyUsageServerAuth)
	if p.serverCert, err = tls.X509KeyPair(sc, sk); err != nil {
		t.Fatal(err)
	}
	cc, ck := issue(3, "payhook-ingress", x509.ExtKeyUsageClientAuth)
	p.clientCrt, p.clientKy = write("tls.crt", cc), write("tls.key", ck)
	return p
}

// TestNATSTLS connects through natsbus.Connect with nats.tls to a server
// that requires TLS and a client certificate from the same CA: the config
// with ca, cert and key connects and round-trips; without the client
// certificate, or without TLS, the server refuses the connection.
func TestNATSTLS(t *testing.T) {
	pki := newTestPKI(t)
	ns := testenv.StartNATSWith(t, server.Options{
		TLS: true, TLSVerify: true, TLSTimeout: 5,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pki.serverCert}, ClientCAs: pki.ca,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
	})
	parse := func(tlsYAML string) config.NATS {
		t.Helper()
		c, err := config.Parse([]byte("nats:\n  url: "+ns.URL+"\n"+tlsYAML), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return c.NATS
	}
	good := parse("  tls: {ca: " + pki.caFile + ", cert: " + pki.clientCrt + ", key: " + pki.clientKy + "}\n")
	nc, err := natsbus.Connect(good, "tls-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	testenv.Eventually(t, 10*time.Second, nc.IsConnected, "connected over TLS")
	if !nc.TLSRequired() {
		t.Error("connection is not TLS")
	}
	if _, err := nc.TLSConnectionState(); err != nil {
		t.Errorf("no TLS state: %v", err)
	}
	sub, err := nc.SubscribeSync("tls.ping")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("tls.ping", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Errorf("round trip over TLS: %v", err)
	}

	// Refused: a CA but no client certificate, and no TLS at all. Connect
	// keeps retrying (a service survives an outage), so "refused" is: never
	// connected in the time the good client needed many times over.
	for name, cfg := range map[string]config.NATS{
		"no client certificate": parse("  tls: {ca: " + pki.caFile + "}\n"),
		"no tls":                parse(""),
	} {
		nc, err := natsbus.Connect(cfg, "tls-test-"+strings.ReplaceAll(name, " ", "-"), nil)
		if err != nil {
			continue
		}
		time.Sleep(time.Second)
		if nc.IsConnected() {
			t.Errorf("%s: connected", name)
		}
		nc.Close()
	}
}
