//go:build linux

package gpu

import (
	"fmt"
	"os"
	"unsafe"

	"github.com/ebitengine/purego"
)

// LibraryEnv names an environment variable that, when set, is the path of the
// CUDA driver library to load instead of libcuda.so.1 (a driver installed
// outside the loader's search path).
const LibraryEnv = "DISTORE_LIBCUDA"

const defaultLibrary = "libcuda.so.1"

// bindings lists every driver entry point the package uses, with the symbol
// names to try in order (the _v2 entry points are the 64-bit ones the CUDA
// headers map the plain names to since CUDA 3.2 / 11.0).
func (l *cudaLib) bindings() []binding {
	return []binding{
		{&l.cuInit, []string{"cuInit"}},
		{&l.cuDriverGetVersion, []string{"cuDriverGetVersion"}},
		{&l.cuDeviceGetCount, []string{"cuDeviceGetCount"}},
		{&l.cuDeviceGet, []string{"cuDeviceGet"}},
		{&l.cuDeviceGetName, []string{"cuDeviceGetName"}},
		{&l.cuDeviceTotalMem, []string{"cuDeviceTotalMem_v2"}},
		{&l.cuDevicePrimaryCtxRetain, []string{"cuDevicePrimaryCtxRetain"}},
		{&l.cuDevicePrimaryCtxRelease, []string{"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"}},
		{&l.cuDeviceGetUuid, []string{"cuDeviceGetUuid_v2", "cuDeviceGetUuid"}},
		{&l.cuCtxPushCurrent, []string{"cuCtxPushCurrent_v2"}},
		{&l.cuCtxPopCurrent, []string{"cuCtxPopCurrent_v2"}},
		{&l.cuMemAlloc, []string{"cuMemAlloc_v2"}},
		{&l.cuMemFree, []string{"cuMemFree_v2"}},
		{&l.cuMemHostAlloc, []string{"cuMemHostAlloc"}},
		{&l.cuMemFreeHost, []string{"cuMemFreeHost"}},
		{&l.cuMemcpyHtoD, []string{"cuMemcpyHtoD_v2"}},
		{&l.cuMemcpyDtoH, []string{"cuMemcpyDtoH_v2"}},
		{&l.cuMemcpyDtoD, []string{"cuMemcpyDtoD_v2"}},
		{&l.cuMemsetD8, []string{"cuMemsetD8_v2"}},
		{&l.cuMemcpyHtoDAsync, []string{"cuMemcpyHtoDAsync_v2"}},
		{&l.cuMemcpyDtoHAsync, []string{"cuMemcpyDtoHAsync_v2"}},
		{&l.cuMemGetInfo, []string{"cuMemGetInfo_v2"}},
		{&l.cuStreamCreate, []string{"cuStreamCreate"}},
		{&l.cuStreamSynchronize, []string{"cuStreamSynchronize"}},
		{&l.cuStreamDestroy, []string{"cuStreamDestroy_v2", "cuStreamDestroy"}},
		{&l.cuGetErrorName, []string{"cuGetErrorName"}},
		{&l.cuGetErrorString, []string{"cuGetErrorString"}},
		{&l.cuIpcGetMemHandle, []string{"cuIpcGetMemHandle"}},
	}
}

// openLib loads the driver library and binds its entry points. It never
// panics: a missing library or symbol is an error saying which.
func openLib() (*cudaLib, error) {
	name := defaultLibrary
	if p := os.Getenv(LibraryEnv); p != "" {
		name = p
	}
	h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("%s not found: %v (is the NVIDIA driver installed?)", name, err)
	}
	l := &cudaLib{name: name}
	if err := l.bind(func(sym string) uintptr {
		p, err := purego.Dlsym(h, sym)
		if err != nil {
			return 0
		}
		return p
	}); err != nil {
		return nil, err
	}
	return l, nil
}

// bind registers every entry point from lookup (which returns 0 for a missing
// symbol).
func (l *cudaLib) bind(lookup func(string) uintptr) (err error) {
	defer func() {
		// RegisterFunc panics only on a Go signature it cannot map; turn that
		// into an error rather than crash a program that merely lacks a GPU.
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: cannot bind the driver API: %v", l.name, r)
		}
	}()
	for _, b := range l.bindings() {
		var sym uintptr
		for _, n := range b.names {
			if sym = lookup(n); sym != 0 {
				break
			}
		}
		if sym == 0 {
			return fmt.Errorf("%s lacks %s (driver too old?)", l.name, b.names[0])
		}
		purego.RegisterFunc(b.fptr, sym)
	}
	return nil
}

// cString converts a NUL-terminated C string owned by the driver.
func cString(p unsafe.Pointer) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(p, n)) != 0 && n < 4096 {
		n++
	}
	return string(unsafe.Slice((*byte)(p), n))
}
