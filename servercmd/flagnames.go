package servercmd

import (
	"bytes"
	"regexp"
)

// flagLine matches a flag's line in package flag's usage text.
var flagLine = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)

// FlagNames returns the names of distore-server's flags, without dashes, in
// the order --help lists them. Tests check the docs and the deploy files
// against it.
func FlagNames() []string {
	var help bytes.Buffer
	_, _ = parseConfig([]string{"--help"}, &help)
	var names []string
	for _, m := range flagLine.FindAllStringSubmatch(help.String(), -1) {
		names = append(names, m[1])
	}
	return names
}
