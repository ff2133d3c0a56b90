package servercmd

import (
	"crypto/tls"
	"flag"
	"fmt"

	"distore/server"
)

// Security is the part of Config that says who may call the API and how
// (docs/http-api.md, "Authentication and TLS").
type Security struct {
	// TokenFile holds the bearer tokens ("name right secret" per line).
	TokenFile string `yaml:"token_file"`
	// TLSCert and TLSKey are PEM files; with both set the API is HTTPS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// MetricsAuth makes /metrics need a read token.
	MetricsAuth bool `yaml:"metrics_auth"`
	// Insecure allows listening beyond loopback without a token file.
	Insecure bool `yaml:"insecure"`
}

// addSecurityFlags declares the flags of Security on fs, into f.
func addSecurityFlags(fs *flag.FlagSet, f *Security) {
	fs.StringVar(&f.TokenFile, "token-file", "", `bearer tokens, one "name right secret" a line (right: read, write, admin)`)
	fs.StringVar(&f.TLSCert, "tls-cert", "", "TLS certificate (PEM); with --tls-key the API is HTTPS")
	fs.StringVar(&f.TLSKey, "tls-key", "", "TLS private key (PEM)")
	fs.BoolVar(&f.MetricsAuth, "metrics-auth", false, "/metrics needs a read token (default: open)")
	fs.BoolVar(&f.Insecure, "insecure", false, "allow listening beyond loopback without --token-file")
}

// applySecurityFlags copies the flags that were given from f to cfg.
func applySecurityFlags(set map[string]bool, f Security, cfg *Security) {
	if set["token-file"] {
		cfg.TokenFile = f.TokenFile
	}
	if set["tls-cert"] {
		cfg.TLSCert = f.TLSCert
	}
	if set["tls-key"] {
		cfg.TLSKey = f.TLSKey
	}
	if set["metrics-auth"] {
		cfg.MetricsAuth = f.MetricsAuth
	}
	if set["insecure"] {
		cfg.Insecure = f.Insecure
	}
}

// serverOptions loads the tokens and the certificate into o. Listening on
// addr beyond loopback without tokens is refused unless Insecure (as
// Redis's protected mode): a storage API open to the network by default is
// how data leaks.
func (s Security) serverOptions(addr string, o *server.Options) error {
	if (s.TLSCert == "") != (s.TLSKey == "") {
		return usageError{fmt.Errorf("--tls-cert and --tls-key go together")}
	}
	if s.TokenFile != "" {
		toks, err := server.LoadTokens(s.TokenFile)
		if err != nil {
			return err
		}
		o.Tokens = toks
	} else if !server.Loopback(addr) && !s.Insecure {
		return usageError{fmt.Errorf("listening on %s, beyond loopback, needs --token-file (or --insecure to serve anyone who can connect)", addr)}
	}
	if s.MetricsAuth && o.Tokens == nil {
		return usageError{fmt.Errorf("--metrics-auth needs --token-file")}
	}
	o.MetricsAuth = s.MetricsAuth
	if s.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return nil
}
