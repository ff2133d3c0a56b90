// Package httpwire holds the HTTP/1.1 wire details that distore's server
// loop and its client transport share.
package httpwire

import (
	"bufio"
	"strings"
)

// crlfSpace turns line breaks into spaces.
var crlfSpace = strings.NewReplacer("\r", " ", "\n", " ")

// WriteField writes one header line per value of name, trimmed, with line
// breaks in a value turned into spaces: a value must not inject another
// header. The caller checks the name.
func WriteField(bw *bufio.Writer, name string, values []string) {
	for _, v := range values {
		if strings.ContainsAny(v, "\r\n") {
			v = crlfSpace.Replace(v)
		}
		bw.WriteString(name)
		bw.WriteString(": ")
		bw.WriteString(strings.TrimSpace(v))
		bw.WriteString("\r\n")
	}
}

// TokenByte reports whether c may be in a header field name (RFC 9110
// tchar). Both parsers run it on every byte of every name: a table.
func TokenByte(c byte) bool { return tokenBytes[c] }

var tokenBytes = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c < 0x7f && strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return t
}()
