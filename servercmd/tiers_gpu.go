//go:build !nogpu

package servercmd

// The GPU tier loads the CUDA driver at run time through purego, which links
// the binary dynamically (for dlopen) even with CGO_ENABLED=0. A static
// binary, for a FROM scratch image, is built with -tags nogpu.
import _ "distore/gpu"
