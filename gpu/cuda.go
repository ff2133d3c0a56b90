package gpu

import (
	"fmt"
	"sync"
	"unsafe"
)

// cuResult is the driver API's CUresult (a C enum: 32 bits).
type cuResult int32

// Driver API result codes the package tells apart.
const (
	cudaSuccess       cuResult = 0
	cudaErrorNoDevice cuResult = 100
)

// Flags of the driver API.
const (
	cuMemHostAllocPortable = 0x01 // CU_MEMHOSTALLOC_PORTABLE: pinned for every context
	cuStreamNonBlocking    = 0x01 // CU_STREAM_NON_BLOCKING: no implicit sync with stream 0
)

// cudaLib holds the bound driver entry points. The Go signatures follow the C
// prototypes of cuda.h: CUresult and int are 32 bits, CUdevice is an int,
// CUdeviceptr is 64 bits, size_t is uintptr, CUcontext and CUstream are
// pointers (uintptr), and out-parameters are pointers.
type cudaLib struct {
	name string

	cuInit                    func(flags uint32) cuResult
	cuDriverGetVersion        func(version *int32) cuResult
	cuDeviceGetCount          func(count *int32) cuResult
	cuDeviceGet               func(dev *int32, ordinal int32) cuResult
	cuDeviceGetName           func(name *byte, length int32, dev int32) cuResult
	cuDeviceTotalMem          func(bytes *uintptr, dev int32) cuResult
	cuDevicePrimaryCtxRetain  func(pctx *uintptr, dev int32) cuResult
	cuDevicePrimaryCtxRelease func(dev int32) cuResult
	cuDeviceGetUuid           func(uuid *[16]byte, dev int32) cuResult
	cuCtxPushCurrent          func(ctx uintptr) cuResult
	cuCtxPopCurrent           func(pctx *uintptr) cuResult
	cuMemAlloc                func(dptr *uint64, size uintptr) cuResult
	cuMemFree                 func(dptr uint64) cuResult
	cuMemHostAlloc            func(pp *unsafe.Pointer, size uintptr, flags uint32) cuResult
	cuMemFreeHost             func(p unsafe.Pointer) cuResult
	cuMemcpyHtoD              func(dst uint64, src unsafe.Pointer, n uintptr) cuResult
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uint64, n uintptr) cuResult
	cuMemcpyDtoD              func(dst, src uint64, n uintptr) cuResult
	cuMemsetD8                func(dst uint64, value uint8, n uintptr) cuResult
	cuMemcpyHtoDAsync         func(dst uint64, src unsafe.Pointer, n uintptr, stream uintptr) cuResult
	cuMemcpyDtoHAsync         func(dst unsafe.Pointer, src uint64, n uintptr, stream uintptr) cuResult
	cuMemGetInfo              func(free, total *uintptr) cuResult
	cuStreamCreate            func(stream *uintptr, flags uint32) cuResult
	cuStreamSynchronize       func(stream uintptr) cuResult
	cuStreamDestroy           func(stream uintptr) cuResult
	cuGetErrorName            func(r cuResult, str *unsafe.Pointer) cuResult
	cuGetErrorString          func(r cuResult, str *unsafe.Pointer) cuResult
	cuIpcGetMemHandle         func(handle *[IPCHandleSize]byte, dptr uint64) cuResult
}

// binding is one entry point: where to store it and the symbols to try.
type binding struct {
	fptr  any
	names []string
}

// CUDAError is a failed driver API call.
type CUDAError struct {
	Func string // the entry point, e.g. "cuMemAlloc_v2"
	Code int    // the CUresult
	Name string // e.g. "CUDA_ERROR_OUT_OF_MEMORY"
	Text string // the driver's description
}

// Error formats as "cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory".
func (e *CUDAError) Error() string {
	name := e.Name
	if name == "" {
		name = "CUDA error"
	}
	s := fmt.Sprintf("%s: %s (%d)", e.Func, name, e.Code)
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// check turns a CUresult into nil or a *CUDAError.
func (l *cudaLib) check(fn string, r cuResult) error {
	if r == cudaSuccess {
		return nil
	}
	e := &CUDAError{Func: fn, Code: int(r)}
	var p unsafe.Pointer
	if l.cuGetErrorName(r, &p) == cudaSuccess {
		e.Name = cString(p)
	}
	p = nil
	if l.cuGetErrorString(r, &p) == cudaSuccess {
		e.Text = cString(p)
	}
	return e
}

var (
	libOnce sync.Once
	libVal  *cudaLib
	libErr  error
)

// loadLib loads and initialises the driver once per process; a failure is
// remembered, as the driver cannot be initialised twice.
func loadLib() (*cudaLib, error) {
	libOnce.Do(func() {
		l, err := openLib()
		if err != nil {
			libErr = err
			return
		}
		if r := l.cuInit(0); r != cudaSuccess {
			err := l.check("cuInit", r)
			if r == cudaErrorNoDevice {
				libErr = fmt.Errorf("no CUDA device: %w", err)
			} else {
				libErr = fmt.Errorf("CUDA driver %s cannot start: %w", l.name, err)
			}
			return
		}
		libVal = l
	})
	return libVal, libErr
}
