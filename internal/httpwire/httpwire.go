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
