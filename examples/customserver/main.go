// Command customserver is a distore-server with a tier of one's own compiled
// in: importing the tier's package registers it by name, and
// servercmd.Main is the whole distore-server (flags, config, HTTP API).
//
//	go build -o bin/ ./examples/customserver
//	bin/customserver --levels memory,mytier
//
// Every flag of distore-server works (docs/server-flags.md); the tier's own
// options go in the config file's tiers: section (tiers: mytier: capacity: 64MiB).
package main

import (
	_ "distore/examples/mytier" // registers the tier "mytier"
	"distore/servercmd"
)

func main() { servercmd.Main() }
