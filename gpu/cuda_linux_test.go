//go:build linux

package gpu

import (
	"slices"
	"strings"
	"testing"

	"github.com/ebitengine/purego"
)

// TestBindSignatures registers every driver entry point's Go signature (with
// a libc function standing in for each symbol; none is called), so a
// signature purego cannot map fails here rather than on a GPU machine.
func TestBindSignatures(t *testing.T) {
	h, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW)
	if err != nil {
		t.Skipf("no libc.so.6 to bind against: %v", err)
	}
	abs, err := purego.Dlsym(h, "abs")
	if err != nil {
		t.Fatal(err)
	}
	l := &cudaLib{name: "test"}
	var asked []string
	if err := l.bind(func(name string) uintptr { asked = append(asked, name); return abs }); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if l.cuMemAlloc == nil || l.cuIpcGetMemHandle == nil || l.cuMemcpyDtoHAsync == nil {
		t.Fatal("entry points not bound")
	}
	for _, want := range []string{"cuMemAlloc_v2", "cuMemFree_v2", "cuMemcpyHtoD_v2", "cuMemcpyDtoH_v2", "cuMemGetInfo_v2",
		"cuMemcpyHtoDAsync_v2", "cuMemcpyDtoD_v2", "cuMemsetD8_v2", "cuCtxPushCurrent_v2", "cuCtxPopCurrent_v2", "cuDeviceGetUuid_v2"} {
		if !slices.Contains(asked, want) {
			t.Errorf("%s (the current entry point) was not looked up; asked %v", want, asked)
		}
	}
	// cuCtxSetCurrent replaces the caller's current context: never bound.
	if slices.Contains(asked, "cuCtxSetCurrent") {
		t.Error("cuCtxSetCurrent is bound; the Driver pushes and pops its context")
	}
	// A missing symbol is an error naming it, not a panic; an older name is
	// tried where the driver has one.
	l = &cudaLib{name: "libcuda.so.1"}
	err = l.bind(func(name string) uintptr {
		if name == "cuIpcGetMemHandle" || name == "cuStreamDestroy_v2" {
			return 0
		}
		return abs
	})
	if err == nil || !strings.Contains(err.Error(), "lacks cuIpcGetMemHandle") {
		t.Fatalf("bind without cuIpcGetMemHandle = %v", err)
	}
}

func TestCString(t *testing.T) {
	b := []byte("CUDA_ERROR_NO_DEVICE\x00junk")
	if s := cString(unsafePointer(b)); s != "CUDA_ERROR_NO_DEVICE" {
		t.Fatalf("cString = %q", s)
	}
	if cString(nil) != "" {
		t.Fatal("cString(nil)")
	}
}
