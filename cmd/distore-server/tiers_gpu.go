//go:build !nogpu

package main

// The GPU tier loads the CUDA driver at run time (purego), which makes even a
// CGO_ENABLED=0 binary dynamically linked; -tags nogpu leaves it out for a
// static binary (the FROM scratch image of deploy/).
import _ "distore/gpu"
