package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"distore/backend"
	"distore/client"
	"distore/servercmd"
	"distore/wire"
)

// TestProtectedMode: listening beyond loopback without a token file is
// refused before anything listens, and before it takes anything (no arena).
func TestProtectedMode(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command(serverBin, "--levels", "memory", "--memory-capacity", "8MiB",
		"--listen", "0.0.0.0:0", "--data-dir", dir).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 64 || !strings.Contains(string(out), "--token-file") {
		t.Fatalf("--listen 0.0.0.0:0 without tokens: %v\n%s", err, out)
	}
	if _, err := os.Stat(servercmd.ArenaPath(dir)); err == nil {
		os.Remove(servercmd.ArenaPath(dir))
		t.Error("a refused start left its arena in /dev/shm")
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files in dir; it returns their paths and a pool that trusts it.
func writeCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "distore e2e"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTokensAndTLS runs the binary with --token-file, --tls-cert and
// --tls-key: the Go client round-trips with a write token, gets 401 without
// one and 403 with a read token.
func TestTokensAndTLS(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("ci write write-secret-0123456789\nviewer read read-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, _ := writeCert(t, dir)
	p := startServer(t, "", "--levels", "memory", "--memory-capacity", "16MiB",
		"--token-file", tokens, "--tls-cert", certFile, "--tls-key", keyFile)
	url := "https://" + p.addr
	tlsCfg, err := client.LoadCA(certFile) // as a CLI's --ca-file would
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.LoadCA(tokens); err == nil {
		t.Fatal("LoadCA of a file without a certificate: no error")
	}
	for _, tc := range []struct {
		token string
		want  error
	}{{"write-secret-0123456789", nil}, {"", wire.ErrUnauthorized}, {"read-secret-0123456789", wire.ErrForbidden}} {
		c, err := client.New(url, client.WithTLSConfig(tlsCfg), client.WithToken(tc.token))
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Put(ctx, []byte("over TLS"), client.PutOptions{})
		if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Fatalf("put with token %q: %v, want %v", tc.token, err, tc.want)
		}
		if err == nil {
			if got, err := c.Get(ctx, info.ID); err != nil || string(got) != "over TLS" {
				t.Fatalf("get over TLS: %q, %v", got, err)
			}
		}
		c.Close()
	}
}

// TestStalledReaderShutdown: a client that stopped reading a large get is
// cut off after --io-timeout; SIGTERM then stops the server at once and
// cleanly, not after the whole shutdown timeout.
func TestStalledReaderShutdown(t *testing.T) {
	ctx := context.Background()
	p := startServer(t, "", "--levels", "memory", "--memory-capacity", "96MiB", "--io-timeout", "500ms", "--shutdown-timeout", "20s")
	c := p.client(t)
	if _, err := c.PutReader(ctx, &patternReader{n: 64 << 20}, 64<<20, client.PutOptions{ID: "big"}); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/objects/big HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(2 * time.Second) // past the IO timeout, reading nothing
	if err := c.Delete(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := c.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Used == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalled reader still holds %s after the delete", backend.FormatBytes(st.Used))
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	p.stop(t) // fails the test on a non-zero exit
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("SIGTERM took %v", d)
	}
}
