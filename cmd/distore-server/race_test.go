//go:build race

package main

// raceBuild makes TestMain build the binaries with -race too, so that the
// end-to-end load runs the server under the race detector.
func init() { raceBuild = true }
