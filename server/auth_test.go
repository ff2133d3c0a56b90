package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"distore/backend"
	"distore/client"
	"distore/internal/testutil"
	"distore/wire"
)

var testTokens = []Token{
	{Name: "reader", Right: RightRead, Secret: "read-secret-0123456789"},
	{Name: "writer", Right: RightWrite, Secret: "write-secret-0123456789"},
	{Name: "admin", Right: RightAdmin, Secret: "admin-secret-0123456789"},
}

// serveWith runs a Server with opts over b on a loopback port until the test
// ends, and returns its address.
func serveWith(t *testing.T, b backend.Backend, opts Options) string {
	t.Helper()
	opts.Logger = quietLogger()
	s, err := New(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// TestAuth sends every route with no token, an unknown one, and tokens of
// each right: 401 without a valid token, 403 without the right, and the
// route's own answer with it.
func TestAuth(t *testing.T) {
	ctx := context.Background()
	mem := newMemory(t, 1<<20)
	if _, err := mem.Put(ctx, "obj", []byte("hello"), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	u := "http://" + serveWith(t, mem, Options{Tokens: testTokens})
	routes := []struct {
		method, path string
		body         string
		need         Right
	}{
		{"GET", "/v1/objects/obj", "", RightRead},
		{"HEAD", "/v1/objects/obj", "", RightRead},
		{"GET", "/v1/objects", "", RightRead},
		{"GET", "/v1/stats", "", RightRead},
		{"PUT", "/v1/objects/new", "x", RightWrite},
		{"POST", "/v1/objects", "x", RightWrite},
		{"POST", "/v1/objects/obj/pin", "", RightWrite},
		{"POST", "/v1/objects/obj/unpin", "", RightWrite},
		{"POST", "/v1/objects/obj/prefetch", "", RightWrite},
		{"DELETE", "/v1/objects/gone", "", RightWrite},
		{"GET", "/v1/nothing-here", "", RightRead}, // unknown routes need a token too
		{"POST", "/v1/groups/g", "", RightAdmin},
		{"GET", "/healthz", "", RightNone},
		{"GET", "/metrics", "", RightNone},
	}
	send := func(method, path, body, secret string) *http.Response {
		var hdr []string
		if secret != "" {
			hdr = []string{"Authorization", "Bearer " + secret}
		}
		resp, data := testutil.Do(t, method, u+path, strings.NewReader(body), hdr...)
		if resp.StatusCode == 401 || resp.StatusCode == 403 {
			want := wire.CodeUnauthorized
			if resp.StatusCode == 403 {
				want = wire.CodeForbidden
			}
			var eb wire.ErrorBody
			if resp.Header.Get(wire.HeaderErrorCode) != want || (method != "HEAD" && (json.Unmarshal(data, &eb) != nil || eb.Code != want)) {
				t.Errorf("%s %s: %d with body %q, want a JSON %s error", method, path, resp.StatusCode, data, want)
			}
			if resp.StatusCode == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: 401 without WWW-Authenticate: Bearer", method, path)
			}
		}
		return resp
	}
	for _, r := range routes {
		for _, tc := range []struct {
			name, secret string
			right        Right // the token's; RightNone: no valid token
		}{
			{"no token", "", RightNone},
			{"unknown token", "not-a-token-0123456789", RightNone},
			{"read token", testTokens[0].Secret, RightRead},
			{"write token", testTokens[1].Secret, RightWrite},
			{"admin token", testTokens[2].Secret, RightAdmin},
		} {
			if r.path == "/v1/objects/new" || r.method == "DELETE" {
				_ = mem.Delete(ctx, "new")
				_, _ = mem.Put(ctx, "gone", []byte("x"), backend.PutOptions{})
			}
			got := send(r.method, r.path, r.body, tc.secret).StatusCode
			switch {
			case r.need == RightNone:
				if got == 401 || got == 403 {
					t.Errorf("%s %s with %s: %d, want it open", r.method, r.path, tc.name, got)
				}
			case tc.right == RightNone:
				if got != 401 {
					t.Errorf("%s %s with %s: %d, want 401", r.method, r.path, tc.name, got)
				}
			case tc.right < r.need:
				if got != 403 {
					t.Errorf("%s %s with %s: %d, want 403", r.method, r.path, tc.name, got)
				}
			default:
				if got == 401 || got == 403 {
					t.Errorf("%s %s with %s: %d, want the route's answer", r.method, r.path, tc.name, got)
				}
			}
		}
	}
	// A read token did not write: nothing was put by it.
	if _, err := mem.ObjectInfo(ctx, "obj"); err != nil {
		t.Fatal(err)
	}

	// Metrics behind a token.
	u2 := "http://" + serveWith(t, newMemory(t, 1<<20), Options{Tokens: testTokens, MetricsAuth: true})
	if resp, _ := testutil.Do(t, "GET", u2+"/metrics", nil); resp.StatusCode != 401 {
		t.Errorf("/metrics with MetricsAuth and no token: %d", resp.StatusCode)
	}
	if resp, _ := testutil.Do(t, "GET", u2+"/metrics", nil, "Authorization", "Bearer "+testTokens[0].Secret); resp.StatusCode != 200 {
		t.Errorf("/metrics with a read token: %d", resp.StatusCode)
	}
	if resp, _ := testutil.Do(t, "GET", u2+"/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("/healthz with MetricsAuth: %d", resp.StatusCode)
	}

	// The Go client: its errors wrap wire.ErrUnauthorized and ErrForbidden.
	for _, tc := range []struct {
		token string
		want  error
	}{{"", wire.ErrUnauthorized}, {"wrong-token-0123456789", wire.ErrUnauthorized}, {testTokens[0].Secret, wire.ErrForbidden}, {testTokens[1].Secret, nil}} {
		c, err := client.New(u, client.WithToken(tc.token))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Put(ctx, []byte("x"), client.PutOptions{})
		if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("client with token %q: put: %v, want %v", tc.token, err, tc.want)
		}
		c.Close()
	}
	// DISTORE_TOKEN is the default token.
	t.Setenv(client.TokenEnv, testTokens[0].Secret)
	c, err := client.New(u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.Get(ctx, "obj"); err != nil || string(got) != "hello" {
		t.Errorf("client with $%s: get: %q, %v", client.TokenEnv, got, err)
	}
}

func TestLoadTokens(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "tokens")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	toks, err := LoadTokens(write("# comment\n\nalice read 0123456789abcdef\n  bob admin fedcba9876543210xyz  \n"))
	if err != nil || len(toks) != 2 || toks[0] != (Token{"alice", RightRead, "0123456789abcdef"}) || toks[1].Right != RightAdmin {
		t.Fatalf("LoadTokens = %+v, %v", toks, err)
	}
	for name, text := range map[string]string{
		"short secret":   "alice read short\n",
		"bad right":      "alice root 0123456789abcdef\n",
		"two fields":     "alice 0123456789abcdef\n",
		"same name":      "alice read 0123456789abcdef\nalice write 0123456789abcdeg\n",
		"same secret":    "alice read 0123456789abcdef\nbob write 0123456789abcdef\n",
		"no tokens":      "# nothing\n",
		"four fields":    "alice read 0123456789abcdef extra\n",
		"space in token": "alice read 01234567 89abcdef\n",
	} {
		if _, err := LoadTokens(write(text)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// selfSigned makes a certificate for 127.0.0.1 and returns the server's
// config and a pool that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "distore test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}, pool
}

// TestTLS: the Go client round-trips over HTTPS with a token; a client that
// does not trust the certificate, and plain HTTP, fail.
func TestTLS(t *testing.T) {
	ctx := context.Background()
	cfg, pool := selfSigned(t)
	addr := serveWith(t, newMemory(t, 8<<20), Options{TLS: cfg, Tokens: testTokens})
	c, err := client.New("https://"+addr, client.WithTLSConfig(&tls.Config{RootCAs: pool}), client.WithToken(testTokens[1].Secret))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, size := range []int{5, 3 << 20} {
		data := randBytes(size)
		info, err := c.Put(ctx, data, client.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Get(ctx, info.ID)
		if err != nil || string(got) != string(data) {
			t.Fatalf("TLS round trip of %d bytes: %d bytes, %v", size, len(got), err)
		}
	}
	untrusting, _ := client.New("https://"+addr, client.WithToken(testTokens[1].Secret))
	if err := untrusting.Health(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client that does not trust the certificate: %v", err)
	}
	plain, _ := client.New("http://"+addr, client.WithToken(testTokens[1].Secret))
	if err := plain.Health(ctx); err == nil {
		t.Error("plain HTTP to a TLS server succeeded")
	}
}
