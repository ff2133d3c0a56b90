package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"distore/backend"
)

// WithToken makes the client send token as its bearer token
// (Authorization: Bearer token) on every request, instead of $DISTORE_TOKEN.
// An empty token sends none.
func WithToken(token string) Option {
	return func(c *Client) { c.token, c.tokenSet = token, true }
}

// WithTLSConfig sets the TLS configuration of an https:// server: its CA
// (RootCAs, see LoadCA), a client certificate, the server name. Nil means
// the system's roots.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) { c.tlsConfig = cfg }
}

// LoadCA returns a TLS configuration that trusts the PEM certificates in
// the file at path (a private CA, or a server's self-signed certificate),
// for WithTLSConfig.
func LoadCA(path string) (*tls.Config, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("client: CA file %s: %w: no PEM certificate in it", path, backend.ErrInvalidArgument)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
