package server

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"

	"distore/wire"
)

// Right is what a token allows. Each right includes the ones below it.
type Right int

// Rights, from least to most.
const (
	RightNone  Right = iota // open routes: /healthz (and /metrics unless tokened)
	RightRead               // GET and HEAD of objects, list, stats
	RightWrite              // put, delete, pin, unpin, prefetch
	RightAdmin              // groups and anything that changes the server itself
)

func (r Right) String() string {
	switch r {
	case RightNone:
		return "none"
	case RightRead:
		return "read"
	case RightWrite:
		return "write"
	case RightAdmin:
		return "admin"
	}
	return fmt.Sprintf("Right(%d)", int(r))
}

// ParseRight parses "read", "write" or "admin".
func ParseRight(s string) (Right, error) {
	for r := RightRead; r <= RightAdmin; r++ {
		if s == r.String() {
			return r, nil
		}
	}
	return RightNone, fmt.Errorf("right %q: want read, write or admin", s)
}

// Token is a bearer token the server accepts.
type Token struct {
	Name   string // who holds it: logged with each request, never the secret
	Right  Right
	Secret string
}

// minSecret is the shortest secret a token file may hold.
const minSecret = 16

// LoadTokens reads a token file: one token per line, "name right secret"
// separated by spaces, right one of read, write, admin; blank lines and
// lines starting with # are skipped. A secret shorter than 16 bytes, a name
// or secret given twice, or a malformed line is an error naming the line.
func LoadTokens(path string) ([]Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	var toks []Token
	names, secrets := map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			return nil, fmt.Errorf("token file %s:%d: want \"name right secret\", got %d fields", path, n, len(fields))
		}
		r, err := ParseRight(fields[1])
		if err != nil {
			return nil, fmt.Errorf("token file %s:%d: %w", path, n, err)
		}
		t := Token{Name: fields[0], Right: r, Secret: fields[2]}
		switch {
		case len(t.Secret) < minSecret:
			return nil, fmt.Errorf("token file %s:%d: token %q: secret shorter than %d bytes", path, n, t.Name, minSecret)
		case names[t.Name]:
			return nil, fmt.Errorf("token file %s:%d: token name %q given twice", path, n, t.Name)
		case secrets[t.Secret]:
			return nil, fmt.Errorf("token file %s:%d: token %q: secret already used by another token", path, n, t.Name)
		}
		names[t.Name], secrets[t.Secret] = true, true
		toks = append(toks, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("token file %s: no tokens", path)
	}
	return toks, nil
}

// authToken is a Token with its secret hashed: comparing hashes of equal
// length in constant time tells nothing about a secret's length or prefix.
type authToken struct {
	name  string
	right Right
	sum   [sha256.Size]byte
}

func hashTokens(toks []Token) []authToken {
	out := make([]authToken, len(toks))
	for i, t := range toks {
		out[i] = authToken{name: t.Name, right: t.Right, sum: sha256.Sum256([]byte(t.Secret))}
	}
	return out
}

// needs returns the right a request needs, from its method and path alone,
// before routing: a request to a path that does not exist needs a token all
// the same, so nobody learns the routes without one.
func (s *Server) needs(r *http.Request) Right {
	p := r.URL.Path
	switch {
	case p == wire.HealthPath:
		return RightNone
	case p == wire.MetricsPath && !s.metricsAuth:
		return RightNone
	case strings.HasPrefix(p, "/v1/admin") || strings.HasPrefix(p, "/v1/groups"):
		return RightAdmin
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return RightRead
	}
	return RightWrite
}

// authorize checks r's bearer token against the right it needs; it returns
// the token's name ("" when the server has no tokens) or a 401/403 error.
func (s *Server) authorize(r *http.Request) (string, error) {
	if s.tokens == nil {
		return "", nil
	}
	need := s.needs(r)
	if need == RightNone {
		return "", nil
	}
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || secret == "" {
		return "", errorf(http.StatusUnauthorized, wire.CodeUnauthorized,
			fmt.Sprintf("%s %s needs a bearer token (Authorization: Bearer ...)", r.Method, truncate(r.URL.Path)))
	}
	sum := sha256.Sum256([]byte(secret))
	var found *authToken
	for i := range s.tokens { // every token, found or not: constant time in the token
		if subtle.ConstantTimeCompare(sum[:], s.tokens[i].sum[:]) == 1 {
			found = &s.tokens[i]
		}
	}
	if found == nil {
		return "", errorf(http.StatusUnauthorized, wire.CodeUnauthorized, "unknown bearer token")
	}
	if found.right < need {
		return found.name, errorf(http.StatusForbidden, wire.CodeForbidden,
			fmt.Sprintf("token %q has the %s right; %s %s needs %s", found.name, found.right, r.Method, truncate(r.URL.Path), need))
	}
	return found.name, nil
}
