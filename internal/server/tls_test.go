package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/config"
)

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files
// and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "switchboard test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// wss: the certificate is loaded from the configured files, TLS 1.2 is the
// minimum, and ALPN offers only http/1.1, so a browser-like client that
// offers h2 first still gets HTTP/1.1, the 101 and a Pusher connection.
func TestTLSServesPusherOverHTTP11(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	addr, _ := startServer(t, `
tls: {cert: "`+certFile+`", key: "`+keyFile+`"}
damon: {enabled: false}
pusher: {apps: [{id: app-id, key: app-key, secret: app-secret}]}
`)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	st := conn.ConnectionState()
	if st.NegotiatedProtocol != "http/1.1" || st.Version < tls.VersionTLS12 {
		t.Fatalf("ALPN %q, version %x", st.NegotiatedProtocol, st.Version)
	}
	u, _ := url.Parse("wss://" + addr + "/app/app-key?protocol=7")
	br, _, err := ws.Dialer{}.Upgrade(conn, u) // an error unless the answer is 101
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := wsutil.ReadServerText(struct {
		io.Reader
		io.Writer
	}{r, conn})
	mustEstablished(t, p, err)

	// Below TLS 1.2 the handshake fails.
	old, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11})
	if err == nil {
		_ = old.Close()
		t.Fatal("a TLS 1.1 client was accepted")
	}
}

// A certificate that cannot be loaded stops the server before it listens,
// with an error that says TLS.
func TestTLSBadCertificate(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, files := range [][2]string{{bad, bad}, {filepath.Join(dir, "missing.pem"), bad}} {
		cfg, err := config.Parse([]byte(`{listen: "127.0.0.1:0", damon: {enabled: false}, tls: {cert: "` + files[0] + `", key: "` + files[1] + `"}}`))
		if err != nil {
			t.Fatal(err)
		}
		srv, err := newServer(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Listen(); err == nil || !strings.HasPrefix(err.Error(), "tls: ") {
			t.Errorf("%s: Listen: %v", files[0], err)
		}
	}
}
