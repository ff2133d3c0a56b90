//go:build linux

package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"

	"distore/backend"
	"distore/backend/backendtest"
)

const stubChildEnv = "DISTORE_GPU_STUB_CHILD"

// TestStubDriver checks the purego bindings end to end where there is no GPU:
// it builds testdata/stubcuda.c (the cuda.h prototypes over host memory, with
// the real driver's rule that a context must be current on the calling
// thread) as a libcuda.so.1, and runs the Driver and the conformance suite
// on it in a child process (the driver is loaded once per process).
func TestStubDriver(t *testing.T) {
	if os.Getenv(stubChildEnv) != "" {
		stubChild(t)
		return
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skipf("no C compiler to build the stub driver: %v", err)
	}
	lib := filepath.Join(t.TempDir(), "libcuda.so.1")
	if out, err := exec.Command(cc, "-Wall", "-Werror", "-shared", "-fPIC", "-o", lib, "testdata/stubcuda.c").CombinedOutput(); err != nil {
		t.Fatalf("building the stub driver: %v\n%s", err, out)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStubDriver$", "-test.v")
	cmd.Env = append(os.Environ(), stubChildEnv+"=1", LibraryEnv+"="+lib)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestStubDriver")) {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func stubChild(t *testing.T) {
	d, err := OpenDriver(0)
	if err != nil {
		t.Fatalf("OpenDriver on the stub: %v", err)
	}
	if d.Name() != "Stub GPU" || d.DriverVersion() != 12040 || d.Ordinal() != 0 {
		t.Fatalf("Name %q, DriverVersion %d", d.Name(), d.DriverVersion())
	}
	if want := "GPU-10111213-1415-1617-1819-1a1b1c1d1e1f"; d.UUID() != want {
		t.Fatalf("UUID %q, want %q", d.UUID(), want)
	}
	stubKeepsCallersContext(t, d)
	if _, err := OpenDriver(1); !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), "device ordinal 1 out of range (1 devices)") {
		t.Fatalf("OpenDriver(1) = %v", err)
	}
	free, total, err := d.MemInfo()
	if err != nil || total != 1<<30 || free != total {
		t.Fatalf("MemInfo = %d, %d, %v", free, total, err)
	}
	// Out-parameters, 64-bit pointers and sizes, and error names and texts.
	_, err = d.MemAlloc(2 << 30)
	var ce *CUDAError
	if !errors.As(err, &ce) || ce.Func != "cuMemAlloc_v2" || ce.Code != 2 || ce.Name != "CUDA_ERROR_OUT_OF_MEMORY" || ce.Text != "out of memory" {
		t.Fatalf("MemAlloc(2 GiB) = %v", err)
	}
	// Copies from many goroutines, hence many OS threads: each call must make
	// the context current on its own thread.
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if err := stubRoundTrip(d, 1<<20+i); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	p, err := d.MemAlloc(4096)
	if err != nil {
		t.Fatal(err)
	}
	h, err := d.IPCHandle(p)
	if err != nil || string(h[:4]) != "stub" || *(*uintptr)(unsafePointer(h[8:16])) != p {
		t.Fatalf("IPCHandle = %q, %v", h[:16], err)
	}
	if err := d.MemFree(p); err != nil {
		t.Fatal(err)
	}
	stubExport(t)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.MemAlloc(1); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("MemAlloc after Close = %v", err)
	}
	if n := stubOutstanding(t); n != 0 {
		t.Fatalf("stub holds %d allocations, streams or contexts after Close", n)
	}

	backendtest.Run(t, backendtest.Factory{Make: func(t testing.TB, capacity int64) backend.Backend {
		tier, err := New(simConfig(capacity))
		if err != nil {
			t.Fatal(err)
		}
		return backend.Wrap(Name, tier) // the ID, context and lifecycle checks are the wrapper's
	}})
	if n := stubOutstanding(t); n != 0 {
		t.Fatalf("stub holds %d allocations, streams or contexts after the suite", n)
	}
}

// stubRoundTrip copies n bytes host→device→host, synchronously and through a
// stream, and compares.
func stubRoundTrip(d *Driver, n int) error {
	src, err := d.HostAlloc(int64(n))
	if err != nil {
		return err
	}
	defer d.HostFree(src)
	for i := range src {
		src[i] = byte(i ^ n)
	}
	p, err := d.MemAlloc(int64(n))
	if err != nil {
		return err
	}
	defer d.MemFree(p)
	dst := make([]byte, n)
	if err := d.CopyHtoD(p, src); err != nil {
		return err
	}
	if err := d.CopyDtoH(dst, p); err != nil {
		return err
	}
	if !bytes.Equal(dst, src) {
		return fmt.Errorf("sync round trip of %d bytes differs", n)
	}
	s, err := d.NewStream()
	if err != nil {
		return err
	}
	defer d.DestroyStream(s)
	back, err := d.HostAlloc(int64(n))
	if err != nil {
		return err
	}
	defer d.HostFree(back)
	if err := d.CopyHtoDAsync(p+1, src[:n-1], s); err != nil {
		return err
	}
	if err := d.CopyDtoHAsync(back[:n-1], p+1, s); err != nil {
		return err
	}
	if err := d.Sync(s); err != nil {
		return err
	}
	if !bytes.Equal(back[:n-1], src[:n-1]) {
		return fmt.Errorf("async round trip of %d bytes differs", n)
	}
	// Device to device, and a memset over the copy's first 100 bytes.
	q, err := d.MemAlloc(int64(n))
	if err != nil {
		return err
	}
	defer d.MemFree(q)
	if err := d.CopyDtoD(q, p, int64(n)); err != nil {
		return err
	}
	if err := d.MemsetD8(q, 0xab, 100); err != nil {
		return err
	}
	if err := d.CopyDtoH(dst, q); err != nil {
		return err
	}
	want := bytes.Clone(src)
	want[0] = src[0]
	copy(want[1:], src[:n-1]) // the async copy wrote src[:n-1] at p+1
	for i := range 100 {
		want[i] = 0xab
	}
	if !bytes.Equal(dst, want) {
		return fmt.Errorf("device to device copy of %d bytes differs", n)
	}
	return nil
}

// stubContexts binds the stub's context calls for the tests: the stub's
// second context (another library's), cuCtxSetCurrent, and the calling
// thread's current context.
func stubContexts(t *testing.T) (other uintptr, set func(uintptr) int32, current func() uintptr) {
	h, err := purego.Dlopen(os.Getenv(LibraryEnv), purego.RTLD_NOW)
	if err != nil {
		t.Fatal(err)
	}
	var otherCtx func() uintptr
	var get func(*uintptr) int32
	purego.RegisterLibFunc(&otherCtx, h, "stub_other_context")
	purego.RegisterLibFunc(&set, h, "cuCtxSetCurrent")
	purego.RegisterLibFunc(&get, h, "cuCtxGetCurrent")
	return otherCtx(), set, func() uintptr {
		var c uintptr
		if r := get(&c); r != 0 {
			t.Fatalf("cuCtxGetCurrent = %d", r)
		}
		return c
	}
}

// stubKeepsCallersContext: a context another library made current on a
// thread (the stub's second context) is current there again after each
// Driver call, and a thread with none current has none after.
func stubKeepsCallersContext(t *testing.T, d *Driver) {
	theirs, set, current := stubContexts(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if r := set(theirs); r != 0 || current() != theirs {
		t.Fatalf("cuCtxSetCurrent(other) = %d", r)
	}
	p, err := d.MemAlloc(4096)
	if err != nil {
		t.Fatal(err)
	}
	if c := current(); c != theirs {
		t.Fatalf("after MemAlloc the thread's current context is %#x, not the caller's %#x", c, theirs)
	}
	if err := d.MemsetD8(p, 1, 4096); err != nil {
		t.Fatal(err)
	}
	if err := d.MemFree(p); err != nil {
		t.Fatal(err)
	}
	if c := current(); c != theirs {
		t.Fatalf("after MemsetD8 and MemFree the current context is %#x, not the caller's %#x", c, theirs)
	}
	set(0) // pops theirs: none current
	if _, _, err := d.MemInfo(); err != nil {
		t.Fatal(err)
	}
	if c := current(); c != 0 {
		t.Fatalf("after MemInfo on a thread with no context, %#x is current", c)
	}
}

// stubExport exports an object of a tier on the stub and reads the export
// through the handle (the stub's handle holds the device address, which is
// host memory there). It runs on a thread where another library's context is
// current, and checks that the tier's calls leave it current.
func stubExport(t *testing.T) {
	theirs, set, current := stubContexts(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	set(theirs)
	defer set(0)
	ctx := context.Background()
	tier, err := New(simConfig(8 << 20))
	if err != nil {
		t.Fatal(err)
	}
	if err := tier.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("export "), 1000)
	if _, err := tier.Put(ctx, "x", data, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	x, err := tier.ExportIPC(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	h := x.Handle()
	p := *(*unsafe.Pointer)(unsafePointer(h.Handle[8:16]))
	if string(h.Handle[:4]) != "stub" || uintptr(p) == tier.base || h.DeviceUUID != "GPU-10111213-1415-1617-1819-1a1b1c1d1e1f" {
		t.Fatalf("handle %q at %#x (tier at %#x), device %q", h.Handle[:4], p, tier.base, h.DeviceUUID)
	}
	m := unsafe.Slice((*byte)(p), ipcGranule)
	if !bytes.Equal(m[:len(data)], data) || bytes.ContainsFunc(m[len(data):], func(r rune) bool { return r != 0 }) {
		t.Fatal("the export is not the object followed by zeros")
	}
	obj, err := tier.Get(ctx, "x")
	if err != nil || !bytes.Equal(obj.Bytes(), data) {
		t.Fatalf("Get: %v", err)
	}
	obj.Close()
	if c := current(); c != theirs {
		t.Fatalf("after tier Setup, Put, ExportIPC and Get the thread's current context is %#x, not the caller's %#x", c, theirs)
	}
	if err := tier.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := x.Release(); err != nil {
		t.Fatal(err)
	}
}

func stubOutstanding(t *testing.T) int {
	h, err := purego.Dlopen(os.Getenv(LibraryEnv), purego.RTLD_NOW)
	if err != nil {
		t.Fatal(err)
	}
	var f func() int32
	purego.RegisterLibFunc(&f, h, "stub_outstanding")
	return int(f())
}
