package gpu

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"

	"distore/backend"
)

// simDevice implements the tier's device interface in host memory, so the
// tier's own logic (placement, refcounts, pins, lists, stats, the staging
// pipeline) is tested where there is no GPU. It is strict where the driver
// is: async copies happen only at Sync (a buffer reused before its stream is
// synchronised corrupts the object, as on a GPU), copies must stay inside a
// live allocation, and every allocation, stream and the handle must be freed.
// Pinned host memory is mapped outside the Go heap, as the driver's is, and
// HostFree makes it inaccessible (see hostMap), so a read of freed pinned
// memory faults here as it would crash on a GPU machine.
type simDevice struct {
	mu      sync.Mutex
	total   int64
	used    int64
	next    uintptr
	mem     map[uintptr][]byte // device allocations by address
	host    map[*byte]int      // pinned host allocations
	streams map[Stream][]func()
	nstream Stream
	closed  bool

	// Fault injection: fail the nth call (counting from 1) of a kind.
	failHtoD   atomic.Int64
	failDtoH   atomic.Int64
	htodN      atomic.Int64
	dtohN      atomic.Int64
	hostAllocs atomic.Int64 // HostAlloc calls
}

var errSim = errors.New("simulated driver failure")

// simJunk fills new device allocations: the driver does not clear them.
const simJunk = 0xa5

func newSimDevice(total int64) *simDevice {
	return &simDevice{total: total, next: 0x7f0000000000, mem: map[uintptr][]byte{},
		host: map[*byte]int{}, streams: map[Stream][]func(){}}
}

func (d *simDevice) check() error {
	if d.closed {
		return fmt.Errorf("sim: device used after Close")
	}
	return nil
}

func (d *simDevice) Name() string { return "Simulated GPU" }

// simUUID is the simulated device's UUID.
const simUUID = "GPU-5157c0de-0000-4000-8000-000000000001"

func (d *simDevice) UUID() string { return simUUID }

func (d *simDevice) MemInfo() (int64, int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total - d.used, d.total, d.check()
}

func (d *simDevice) MemAlloc(size int64) (uintptr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(); err != nil {
		return 0, err
	}
	if size <= 0 || d.used+size > d.total {
		return 0, fmt.Errorf("sim: cuMemAlloc %d: out of memory", size)
	}
	p := d.next
	d.next += uintptr(size+(1<<20)) &^ (1<<20 - 1)
	m := make([]byte, size)
	for i := range m {
		m[i] = simJunk // cuMemAlloc does not clear memory
	}
	d.mem[p] = m
	d.used += size
	return p, nil
}

func (d *simDevice) MemFree(p uintptr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(); err != nil {
		return err
	}
	m, ok := d.mem[p]
	if !ok {
		return fmt.Errorf("sim: cuMemFree of %#x: not allocated", p)
	}
	d.used -= int64(len(m))
	delete(d.mem, p)
	return nil
}

func (d *simDevice) HostAlloc(size int64) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hostAllocs.Add(1)
	if err := d.check(); err != nil {
		return nil, err
	}
	b, err := hostMap(int(size))
	if err != nil {
		return nil, fmt.Errorf("sim: cuMemHostAlloc %d: %v", size, err)
	}
	d.host[&b[0]] = len(b)
	return b, nil
}

func (d *simDevice) HostFree(b []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(); err != nil {
		return err
	}
	p := unsafe.SliceData(b)
	if _, ok := d.host[p]; !ok {
		return fmt.Errorf("sim: cuMemFreeHost of a buffer not from HostAlloc")
	}
	delete(d.host, p)
	return hostUnmap(b)
}

// devRange returns the device bytes [p, p+n), which must lie in one allocation.
func (d *simDevice) devRange(p uintptr, n int) ([]byte, error) {
	for base, m := range d.mem {
		if p >= base && p+uintptr(n) <= base+uintptr(len(m)) {
			off := int(p - base)
			return m[off : off+n], nil
		}
	}
	return nil, fmt.Errorf("sim: device range %#x+%d is not allocated", p, n)
}

func (d *simDevice) CopyDtoH(dst []byte, src uintptr) error {
	if n := d.failDtoH.Load(); n > 0 && d.dtohN.Add(1) == n {
		return errSim
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(); err != nil {
		return err
	}
	m, err := d.devRange(src, len(dst))
	if err != nil {
		return err
	}
	copy(dst, m)
	return nil
}

func (d *simDevice) CopyDtoD(dst, src uintptr, n int64) error {
	if n == 0 {
		return nil // as Driver.CopyDtoD
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(); err != nil {
		return err
	}
	to, err := d.devRange(dst, int(n))
	if err != nil {
		return err
	}
	from, err := d.devRange(src, int(n))
	if err != nil {
		return err
	}
	copy(to, from)
	return nil
}

func (d *simDevice) MemsetD8(p uintptr, v byte, n int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(); err != nil {
		return err
	}
	m, err := d.devRange(p, int(n))
	if err != nil {
		return err
	}
	for i := range m {
		m[i] = v
	}
	return nil
}

func (d *simDevice) CopyHtoDAsync(dst uintptr, src []byte, s Stream) error {
	if n := d.failHtoD.Load(); n > 0 && d.htodN.Add(1) == n {
		return errSim
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(); err != nil {
		return err
	}
	if _, ok := d.streams[s]; !ok {
		return fmt.Errorf("sim: stream %d does not exist", s)
	}
	m, err := d.devRange(dst, len(src))
	if err != nil {
		return err
	}
	// The copy happens at Sync, reading src then: like DMA from pinned memory.
	d.streams[s] = append(d.streams[s], func() { copy(m, src) })
	return nil
}

func (d *simDevice) NewStream() (Stream, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(); err != nil {
		return 0, err
	}
	d.nstream++
	d.streams[d.nstream] = nil
	return d.nstream, nil
}

func (d *simDevice) Sync(s Stream) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(); err != nil {
		return err
	}
	ops, ok := d.streams[s]
	if !ok {
		return fmt.Errorf("sim: stream %d does not exist", s)
	}
	for _, f := range ops {
		f()
	}
	d.streams[s] = ops[:0]
	return nil
}

func (d *simDevice) DestroyStream(s Stream) error {
	if err := d.Sync(s); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.streams, s)
	return nil
}

func (d *simDevice) IPCHandle(p uintptr) ([IPCHandleSize]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var h [IPCHandleSize]byte
	if _, ok := d.mem[p]; !ok {
		return h, fmt.Errorf("sim: IPC handle of %#x: not the start of an allocation", p)
	}
	copy(h[:], fmt.Sprintf("sim:%x", p))
	return h, nil
}

func (d *simDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(); err != nil {
		return err
	}
	d.closed = true
	return nil
}

// leaks describes what is still held: empty once the tier released everything.
func (d *simDevice) leaks() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var s []string
	if len(d.mem) > 0 {
		s = append(s, fmt.Sprintf("%d device allocations", len(d.mem)))
	}
	if len(d.host) > 0 {
		s = append(s, fmt.Sprintf("%d pinned host buffers", len(d.host)))
	}
	if len(d.streams) > 0 {
		s = append(s, fmt.Sprintf("%d streams", len(d.streams)))
	}
	if !d.closed {
		s = append(s, "the context (Close not called)")
	}
	sort.Strings(s)
	return fmt.Sprint(s)
}

// newSimTier returns a tier over a fresh simDevice, not yet set up.
func newSimTier(cfg backend.Config, deviceMem int64) (*Tier, *simDevice, error) {
	t, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	d := newSimDevice(deviceMem)
	t.openDev = func(ordinal int) (device, error) {
		if ordinal != 0 {
			return nil, fmt.Errorf("%w: device ordinal %d out of range (1 devices)", backend.ErrUnavailable, ordinal)
		}
		return d, nil
	}
	return t, d, nil
}

func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }
