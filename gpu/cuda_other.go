//go:build !linux

package gpu

import (
	"fmt"
	"runtime"
	"unsafe"
)

// LibraryEnv names an environment variable that, when set, is the path of the
// CUDA driver library to load. The driver is only loaded on Linux.
const LibraryEnv = "DISTORE_LIBCUDA"

func openLib() (*cudaLib, error) {
	return nil, fmt.Errorf("libcuda.so.1 not found: the CUDA driver is only loaded on linux, not %s", runtime.GOOS)
}

func (l *cudaLib) bind(func(string) uintptr) error {
	return fmt.Errorf("not supported on %s", runtime.GOOS)
}

func cString(unsafe.Pointer) string { return "" }
