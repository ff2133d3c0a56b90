package client

import (
	"crypto/tls"
	"net/http"
)

// WithToken makes the client send "Authorization: Bearer token" on every
// request (an empty token sends nothing). The server's tokens carry read,
// write or admin rights (DISTORE_TOKEN is the CLI's variable for it).
func WithToken(token string) Option {
	return func(c *Client) {
		if token == "" {
			return
		}
		hc := ownHTTPClient(c)
		hc.Transport = &bearerTransport{token: token, base: hc.Transport}
	}
}

// WithTLSConfig makes the client use cfg for https servers (a private CA in
// RootCAs, a client certificate).
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) {
		rt := ownHTTPClient(c).Transport
		if bt, ok := rt.(*bearerTransport); ok {
			rt = bt.base
		}
		if t, ok := rt.(*http.Transport); ok {
			t.TLSClientConfig = cfg.Clone()
		}
	}
}

// ownHTTPClient gives c an http.Client on a transport of its own, unless
// WithHTTPClient gave it one, and returns it.
func ownHTTPClient(c *Client) *http.Client {
	if c.hc == nil {
		c.hc = &http.Client{Transport: NewTransport()}
	}
	return c.hc
}

// bearerTransport adds the bearer token to each request.
type bearerTransport struct {
	token string
	base  http.RoundTripper
}

func (t *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not change its request
	r.Header.Set("Authorization", "Bearer "+t.token)
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}
