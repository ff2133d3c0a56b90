// Command distore-server runs distore's storage server: a stack of tiers
// (package spill) served over the HTTP API of package server
// (docs/http-api.md). The command itself is package servercmd, so that a
// program with its own tiers compiled in is a distore-server too
// (examples/customserver); docs/server-flags.md lists its flags.
package main

import "distore/servercmd"

func main() { servercmd.Main() }
