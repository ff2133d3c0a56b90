//go:build linux

package gpu

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"distore/backend"
)

// simLib is a CUDA driver library written in Go, to test the Driver's own
// logic (context push and pop, calls in flight at Close) with hooks a C stub
// lacks: a copy can be held in flight. As in the driver, each OS thread has
// a stack of current contexts, and calls that need one fail unless the
// primary context is on top. Entry points these tests do not reach are nil.
type simLib struct {
	mu       sync.Mutex
	stacks   map[int][]uintptr // by OS thread id
	retained int
	mem      map[uint64][]byte
	next     uint64
	// hold, when set, makes cuMemcpyDtoH say so on inFlight and wait until
	// hold is closed: a call the test keeps in flight.
	hold     chan struct{}
	inFlight chan struct{}
}

const (
	simPrimaryCtx uintptr = 0x1000
	simOtherCtx   uintptr = 0x2000 // another library's context
	simCtxResult          = 201    // CUDA_ERROR_INVALID_CONTEXT
)

func newSimLib() *simLib {
	return &simLib{stacks: map[int][]uintptr{}, mem: map[uint64][]byte{}, next: 0x10000}
}

// current is the calling thread's current context (0 for none).
func (s *simLib) current() uintptr {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stacks[syscall.Gettid()]
	if len(st) == 0 {
		return 0
	}
	return st[len(st)-1]
}

// needCtx is the driver's check that the primary context is current.
func (s *simLib) needCtx() cuResult {
	if s.current() != simPrimaryCtx || s.retainedCount() == 0 {
		return simCtxResult
	}
	return cudaSuccess
}

// pushed counts the contexts on every thread's stack.
func (s *simLib) pushed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.stacks {
		n += len(st)
	}
	return n
}

func (s *simLib) retainedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retained
}

func (s *simLib) lib() *cudaLib {
	return &cudaLib{
		name:             "simlib",
		cuGetErrorName:   func(cuResult, *unsafe.Pointer) cuResult { return 1 },
		cuGetErrorString: func(cuResult, *unsafe.Pointer) cuResult { return 1 },
		cuDeviceGetCount: func(n *int32) cuResult { *n = 1; return cudaSuccess },
		cuDeviceGet: func(d *int32, ordinal int32) cuResult {
			if ordinal != 0 {
				return 101
			}
			*d = 0
			return cudaSuccess
		},
		cuDeviceGetName: func(name *byte, n int32, _ int32) cuResult {
			copy(unsafe.Slice(name, n), "Sim library\x00")
			return cudaSuccess
		},
		cuDeviceGetUuid: func(u *[16]byte, _ int32) cuResult { u[15] = 1; return cudaSuccess },
		cuDevicePrimaryCtxRetain: func(c *uintptr, _ int32) cuResult {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.retained++
			*c = simPrimaryCtx
			return cudaSuccess
		},
		cuDevicePrimaryCtxRelease: func(int32) cuResult {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.retained == 0 {
				return 101
			}
			s.retained--
			return cudaSuccess
		},
		cuCtxPushCurrent: func(c uintptr) cuResult {
			if c != simPrimaryCtx && c != simOtherCtx {
				return simCtxResult
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			tid := syscall.Gettid()
			s.stacks[tid] = append(s.stacks[tid], c)
			return cudaSuccess
		},
		cuCtxPopCurrent: func(c *uintptr) cuResult {
			s.mu.Lock()
			defer s.mu.Unlock()
			tid := syscall.Gettid()
			st := s.stacks[tid]
			if len(st) == 0 {
				return simCtxResult
			}
			*c = st[len(st)-1]
			s.stacks[tid] = st[:len(st)-1]
			return cudaSuccess
		},
		cuMemGetInfo: func(free, total *uintptr) cuResult {
			if r := s.needCtx(); r != cudaSuccess {
				return r
			}
			*free, *total = 1<<30, 1<<30
			return cudaSuccess
		},
		cuMemAlloc: func(p *uint64, n uintptr) cuResult {
			if r := s.needCtx(); r != cudaSuccess {
				return r
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			*p = s.next
			s.mem[s.next] = make([]byte, n)
			s.next += uint64(n) + 4096
			return cudaSuccess
		},
		cuMemFree: func(p uint64) cuResult {
			if r := s.needCtx(); r != cudaSuccess {
				return r
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.mem, p)
			return cudaSuccess
		},
		cuMemcpyDtoH: func(dst unsafe.Pointer, src uint64, n uintptr) cuResult {
			if r := s.needCtx(); r != cudaSuccess {
				return r
			}
			s.mu.Lock()
			m, hold := s.mem[src], s.hold
			s.mu.Unlock()
			if hold != nil {
				s.inFlight <- struct{}{}
				<-hold
			}
			copy(unsafe.Slice((*byte)(dst), n), m)
			return cudaSuccess
		},
	}
}

// TestDriverKeepsCallersContext: whatever context a thread had current before
// a Driver call is current after it, and the Driver leaves nothing pushed.
func TestDriverKeepsCallersContext(t *testing.T) {
	s := newSimLib()
	d, err := newDriver(s.lib(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.UUID() != "GPU-00000000-0000-0000-0000-000000000001" {
		t.Fatalf("UUID %q", d.UUID())
	}
	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		s.lib().cuCtxPushCurrent(simOtherCtx) // another library's context
		if _, _, err := d.MemInfo(); err != nil {
			t.Fatal(err)
		}
		p, err := d.MemAlloc(100)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.MemFree(p); err != nil {
			t.Fatal(err)
		}
		if c := s.current(); c != simOtherCtx {
			t.Fatalf("after Driver calls the thread's current context is %#x, not the caller's %#x", c, simOtherCtx)
		}
		var c uintptr
		s.lib().cuCtxPopCurrent(&c)
	}()
	// From many goroutines, hence threads: every push is popped.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				if _, _, err := d.MemInfo(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := s.pushed(); n != 0 {
		t.Fatalf("%d contexts left pushed on threads after the calls returned", n)
	}
}

// holdCopy starts a CopyDtoH that the simulated library keeps in flight
// until release is called; it returns when the copy is inside the driver.
func holdCopy(t *testing.T, s *simLib, d *Driver) (done <-chan error, release func()) {
	t.Helper()
	p, err := d.MemAlloc(4096)
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	s.mu.Lock()
	s.hold, s.inFlight = hold, make(chan struct{}, 1)
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- d.CopyDtoH(make([]byte, 4096), p) }()
	select {
	case <-s.inFlight:
	case <-time.After(10 * time.Second):
		t.Fatal("the held copy never reached the driver")
	}
	return errc, func() { close(hold) }
}

// waitClosed waits until new calls fail with ErrClosed: Close has begun.
func waitClosed(t *testing.T, d *Driver) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, _, err := d.MemInfo()
		if errors.Is(err, backend.ErrClosed) {
			return
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("MemInfo while closing = %v, want ErrClosed", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDriverCloseWaitsForCalls: Close does not release the context under a
// call in flight; calls made once it began fail with ErrClosed.
func TestDriverCloseWaitsForCalls(t *testing.T) {
	s := newSimLib()
	d, err := newDriver(s.lib(), 0)
	if err != nil {
		t.Fatal(err)
	}
	copied, release := holdCopy(t, s, d)
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	waitClosed(t, d)
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a copy was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	if s.retainedCount() != 1 {
		t.Fatal("the context was released under a call in flight")
	}
	release()
	if err := <-copied; err != nil {
		t.Fatalf("the copy in flight: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s.retainedCount() != 0 || s.pushed() != 0 {
		t.Fatalf("after Close: %d retains, %d contexts pushed", s.retainedCount(), s.pushed())
	}
	if _, err := d.MemAlloc(1); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("MemAlloc after Close = %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestDriverCloseContext: a Close whose context ends first says so, and the
// last call in flight releases the context when it returns.
func TestDriverCloseContext(t *testing.T) {
	s := newSimLib()
	d, err := newDriver(s.lib(), 0)
	if err != nil {
		t.Fatal(err)
	}
	copied, release := holdCopy(t, s, d)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = d.CloseContext(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || s.retainedCount() != 1 {
		t.Fatalf("CloseContext with a call in flight = %v (%d retains)", err, s.retainedCount())
	}
	t.Log(err)
	if _, _, err := d.MemInfo(); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("MemInfo after CloseContext gave up = %v", err)
	}
	release()
	if err := <-copied; err != nil {
		t.Fatal(err)
	}
	if s.retainedCount() != 0 {
		t.Fatal("the last call in flight did not release the context")
	}
}
