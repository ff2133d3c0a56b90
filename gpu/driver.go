package gpu

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"distore/backend"
)

// IPCHandleSize is the size of a CUipcMemHandle.
const IPCHandleSize = 64

// Stream is a CUDA stream (CUstream) made by Driver.NewStream.
type Stream uintptr

// Driver is a handle on one CUDA device through the driver API, loaded at run
// time from libcuda.so.1 (no cgo, no CUDA headers). It holds the device's
// primary context and pushes it on the calling OS thread's context stack
// around every call (and pops it after), so its methods may be called from
// any goroutine and leave whatever context the caller had current as it was.
// The tier uses it; it is exported for GPU consumers and for baselines (raw
// copies, pinned memory).
//
// Device pointers are uintptr (a CUdeviceptr; 64 bits on every platform the
// driver supports). Host buffers passed to the copy functions are used only
// for the duration of the call, except by the Async copies, whose buffers must
// be pinned (HostAlloc) and untouched until the stream is synchronised.
type Driver struct {
	lib     *cudaLib
	ordinal int
	dev     int32
	ctx     uintptr
	name    string
	uuid    string

	mu         sync.Mutex
	calls      int           // driver calls in flight
	closed     bool          // Close began: new calls fail
	idle       chan struct{} // closed once the context is released after Close
	releaseErr error         // of cuDevicePrimaryCtxRelease, read after idle
}

// OpenDriver loads the CUDA driver and opens device ordinal (0 is the first
// GPU). Where there is no driver or no such device it returns an error
// wrapping backend.ErrUnavailable that says which.
func OpenDriver(ordinal int) (*Driver, error) {
	lib, err := loadLib()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", backend.ErrUnavailable, err)
	}
	return newDriver(lib, ordinal)
}

// newDriver opens device ordinal through lib.
func newDriver(lib *cudaLib, ordinal int) (*Driver, error) {
	var count int32
	if err := lib.check("cuDeviceGetCount", lib.cuDeviceGetCount(&count)); err != nil {
		return nil, fmt.Errorf("%w: no CUDA device: %v", backend.ErrUnavailable, err)
	}
	if count == 0 {
		return nil, fmt.Errorf("%w: no CUDA device: cuDeviceGetCount returned 0", backend.ErrUnavailable)
	}
	if ordinal < 0 || ordinal >= int(count) {
		return nil, fmt.Errorf("%w: device ordinal %d out of range (%d devices)", backend.ErrUnavailable, ordinal, count)
	}
	d := &Driver{lib: lib, ordinal: ordinal, idle: make(chan struct{})}
	if err := lib.check("cuDeviceGet", lib.cuDeviceGet(&d.dev, int32(ordinal))); err != nil {
		return nil, fmt.Errorf("%w: device %d: %v", backend.ErrUnavailable, ordinal, err)
	}
	var name [256]byte
	if lib.cuDeviceGetName(&name[0], int32(len(name)), d.dev) == cudaSuccess {
		d.name = cString(unsafe.Pointer(&name[0]))
	}
	if d.name == "" {
		d.name = fmt.Sprintf("CUDA device %d", ordinal)
	}
	var uuid [16]byte
	if err := lib.check("cuDeviceGetUuid_v2", lib.cuDeviceGetUuid(&uuid, d.dev)); err != nil {
		return nil, fmt.Errorf("%w: device %d (%s): %v", backend.ErrUnavailable, ordinal, d.name, err)
	}
	d.uuid = formatUUID(uuid)
	if err := lib.check("cuDevicePrimaryCtxRetain", lib.cuDevicePrimaryCtxRetain(&d.ctx, d.dev)); err != nil {
		return nil, fmt.Errorf("%w: device %d (%s): %v", backend.ErrUnavailable, ordinal, d.name, err)
	}
	return d, nil
}

// formatUUID writes a CUuuid as nvidia-smi and CUDA_VISIBLE_DEVICES do:
// "GPU-8e7b5c2a-1d3f-4e6a-9b0c-2d4e6f8a0b1c".
func formatUUID(u [16]byte) string {
	return fmt.Sprintf("GPU-%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Name is the device's model name ("NVIDIA H100 80GB HBM3").
func (d *Driver) Name() string { return d.name }

// Ordinal is the device's ordinal, in this process's numbering (which
// CUDA_VISIBLE_DEVICES changes).
func (d *Driver) Ordinal() int { return d.ordinal }

// UUID names the device the same in every process, whatever its
// CUDA_VISIBLE_DEVICES: "GPU-" and the UUID, as nvidia-smi -L prints it.
func (d *Driver) UUID() string { return d.uuid }

// DriverVersion is the CUDA version the driver supports, as 1000*major+10*minor.
func (d *Driver) DriverVersion() int {
	var v int32
	if d.lib.cuDriverGetVersion(&v) != cudaSuccess {
		return 0
	}
	return int(v)
}

// enter counts a call in flight (Close waits for it), locks the goroutine to
// its OS thread and pushes the device's context on that thread's context
// stack: a CUDA context is current per OS thread, and the Go scheduler would
// otherwise move the goroutine between the two calls. Pushing, rather than
// cuCtxSetCurrent, keeps the context another user of the thread had current:
// exit pops ours and theirs is current again.
func (d *Driver) enter(fn string) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("%s: %w: driver handle closed", fn, backend.ErrClosed)
	}
	d.calls++
	d.mu.Unlock()
	runtime.LockOSThread()
	if err := d.lib.check("cuCtxPushCurrent_v2", d.lib.cuCtxPushCurrent(d.ctx)); err != nil {
		runtime.UnlockOSThread()
		d.done()
		return err
	}
	return nil
}

// exit pops the context enter pushed and ends the call.
func (d *Driver) exit() error {
	var popped uintptr
	err := d.lib.check("cuCtxPopCurrent_v2", d.lib.cuCtxPopCurrent(&popped))
	if err == nil && popped != d.ctx {
		// Someone pushed a context during the call and left it there: the
		// thread's stack is not ours to repair, but say so.
		err = fmt.Errorf("cuCtxPopCurrent_v2: popped context %#x, not device %d's primary context %#x", popped, d.ordinal, d.ctx)
	}
	runtime.UnlockOSThread()
	d.done()
	return err
}

// done ends a counted call; the last one after Close releases the context.
func (d *Driver) done() {
	d.mu.Lock()
	d.calls--
	last := d.closed && d.calls == 0
	d.mu.Unlock()
	if last {
		d.release()
	}
}

// release gives back the primary context, once, when no call is in flight.
func (d *Driver) release() {
	d.releaseErr = d.lib.check("cuDevicePrimaryCtxRelease", d.lib.cuDevicePrimaryCtxRelease(d.dev))
	close(d.idle)
}

// call runs one driver call with the context current.
func (d *Driver) call(fn string, f func() cuResult) error {
	if err := d.enter(fn); err != nil {
		return err
	}
	err := d.lib.check(fn, f())
	return errors.Join(err, d.exit())
}

// MemInfo returns the device's free and total memory in bytes.
func (d *Driver) MemInfo() (free, total int64, err error) {
	var f, t uintptr
	err = d.call("cuMemGetInfo_v2", func() cuResult { return d.lib.cuMemGetInfo(&f, &t) })
	return int64(f), int64(t), err
}

// MemAlloc allocates size bytes of device memory.
func (d *Driver) MemAlloc(size int64) (uintptr, error) {
	if size <= 0 {
		return 0, fmt.Errorf("cuMemAlloc_v2: %w: size %d", backend.ErrInvalidArgument, size)
	}
	var p uint64
	err := d.call("cuMemAlloc_v2", func() cuResult { return d.lib.cuMemAlloc(&p, uintptr(size)) })
	return uintptr(p), err
}

// MemFree frees device memory from MemAlloc.
func (d *Driver) MemFree(p uintptr) error {
	return d.call("cuMemFree_v2", func() cuResult { return d.lib.cuMemFree(uint64(p)) })
}

// HostAlloc allocates size bytes of pinned (page-locked) host memory, which
// the GPU reads and writes by DMA at full bus speed. Free it with HostFree.
// Pinning is slow (it locks every page): allocate once and reuse.
func (d *Driver) HostAlloc(size int64) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("cuMemHostAlloc: %w: size %d", backend.ErrInvalidArgument, size)
	}
	var p unsafe.Pointer
	err := d.call("cuMemHostAlloc", func() cuResult {
		return d.lib.cuMemHostAlloc(&p, uintptr(size), cuMemHostAllocPortable)
	})
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(p), size), nil
}

// HostFree frees memory from HostAlloc (the whole allocation: pass the slice
// HostAlloc returned).
func (d *Driver) HostFree(b []byte) error {
	if cap(b) == 0 {
		return nil
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	return d.call("cuMemFreeHost", func() cuResult { return d.lib.cuMemFreeHost(p) })
}

// CopyHtoD copies src to device memory at dst and returns when done.
func (d *Driver) CopyHtoD(dst uintptr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	err := d.call("cuMemcpyHtoD_v2", func() cuResult {
		return d.lib.cuMemcpyHtoD(uint64(dst), unsafe.Pointer(&src[0]), uintptr(len(src)))
	})
	runtime.KeepAlive(src)
	return err
}

// CopyDtoH copies len(dst) bytes of device memory at src to dst and returns
// when done.
func (d *Driver) CopyDtoH(dst []byte, src uintptr) error {
	if len(dst) == 0 {
		return nil
	}
	err := d.call("cuMemcpyDtoH_v2", func() cuResult {
		return d.lib.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), uint64(src), uintptr(len(dst)))
	})
	runtime.KeepAlive(dst)
	return err
}

// CopyHtoDAsync queues a copy of src (pinned memory from HostAlloc) to dst on
// stream s; src must not change until s is synchronised.
func (d *Driver) CopyHtoDAsync(dst uintptr, src []byte, s Stream) error {
	if len(src) == 0 {
		return nil
	}
	return d.call("cuMemcpyHtoDAsync_v2", func() cuResult {
		return d.lib.cuMemcpyHtoDAsync(uint64(dst), unsafe.Pointer(&src[0]), uintptr(len(src)), uintptr(s))
	})
}

// CopyDtoHAsync queues a copy of len(dst) bytes at src into dst (pinned memory
// from HostAlloc) on stream s; dst is filled once s is synchronised.
func (d *Driver) CopyDtoHAsync(dst []byte, src uintptr, s Stream) error {
	if len(dst) == 0 {
		return nil
	}
	return d.call("cuMemcpyDtoHAsync_v2", func() cuResult {
		return d.lib.cuMemcpyDtoHAsync(unsafe.Pointer(&dst[0]), uint64(src), uintptr(len(dst)), uintptr(s))
	})
}

// NewStream creates a non-blocking stream.
func (d *Driver) NewStream() (Stream, error) {
	var s uintptr
	err := d.call("cuStreamCreate", func() cuResult { return d.lib.cuStreamCreate(&s, cuStreamNonBlocking) })
	return Stream(s), err
}

// Sync waits until every operation queued on s is done.
func (d *Driver) Sync(s Stream) error {
	return d.call("cuStreamSynchronize", func() cuResult { return d.lib.cuStreamSynchronize(uintptr(s)) })
}

// DestroyStream destroys s (after the work queued on it completes).
func (d *Driver) DestroyStream(s Stream) error {
	return d.call("cuStreamDestroy_v2", func() cuResult { return d.lib.cuStreamDestroy(uintptr(s)) })
}

// CopyDtoD copies n bytes of device memory from src to dst and returns when
// the copy is done (it synchronises the legacy default stream, which
// cuMemcpyDtoD runs on without waiting for it).
func (d *Driver) CopyDtoD(dst, src uintptr, n int64) error {
	if n <= 0 {
		return nil
	}
	return d.call("cuMemcpyDtoD_v2", func() cuResult {
		if r := d.lib.cuMemcpyDtoD(uint64(dst), uint64(src), uintptr(n)); r != cudaSuccess {
			return r
		}
		return d.lib.cuStreamSynchronize(0)
	})
}

// MemsetD8 sets n bytes of device memory at p to v and returns when done.
func (d *Driver) MemsetD8(p uintptr, v byte, n int64) error {
	if n <= 0 {
		return nil
	}
	return d.call("cuMemsetD8_v2", func() cuResult {
		if r := d.lib.cuMemsetD8(uint64(p), v, uintptr(n)); r != cudaSuccess {
			return r
		}
		return d.lib.cuStreamSynchronize(0)
	})
}

// IPCHandle returns the CUDA IPC handle (CUipcMemHandle) of the allocation
// that starts at p, which another process opens with cuIpcOpenMemHandle to
// map the same device memory without a copy. The handle maps the whole
// allocation (for an allocation under 2 MiB, possibly the driver's whole
// 2 MiB block, other allocations included), and the allocation must not be
// freed while another process has it open.
func (d *Driver) IPCHandle(p uintptr) ([IPCHandleSize]byte, error) {
	var h [IPCHandleSize]byte
	err := d.call("cuIpcGetMemHandle", func() cuResult { return d.lib.cuIpcGetMemHandle(&h, uint64(p)) })
	return h, err
}

// Close releases the primary context. Memory allocated through the Driver
// must be freed first. Calls made after Close begins fail with
// backend.ErrClosed; Close waits for the calls already in flight to return
// (each is one driver call: a copy, a stream synchronisation), so the
// context is never released under one of them. Use CloseContext to bound
// that wait. Close is idempotent.
func (d *Driver) Close() error { return d.CloseContext(context.Background()) }

// CloseContext is Close with its wait for calls in flight bounded by ctx.
// If ctx ends first it returns an error wrapping ctx.Err(), new calls still
// fail, and the last call in flight releases the context when it returns.
func (d *Driver) CloseContext(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	n := d.calls
	d.mu.Unlock()
	if n == 0 {
		d.release()
		return d.releaseErr
	}
	select {
	case <-d.idle:
		return d.releaseErr
	case <-ctx.Done():
		d.mu.Lock()
		n = d.calls
		d.mu.Unlock()
		return fmt.Errorf("closing CUDA device %d (%s): %w with driver calls in flight (%d); the last to return releases the context",
			d.ordinal, d.name, ctx.Err(), n)
	}
}
