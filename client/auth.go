package client

import "crypto/tls"

// WithToken makes the client send token as its bearer token
// (Authorization: Bearer token) on every request, instead of $DISTORE_TOKEN.
// An empty token sends none.
func WithToken(token string) Option {
	return func(c *Client) { c.token, c.tokenSet = token, true }
}

// WithTLSConfig sets the TLS configuration of an https:// server: its CA
// (RootCAs), a client certificate, the server name. Nil means the system's
// roots.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) { c.tlsConfig = cfg }
}
