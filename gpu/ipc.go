package gpu

import (
	"context"
	"sync"

	"distore/backend"
)

// ipcGranule is what CUDA IPC shares at the least: the driver may
// sub-allocate small cuMemAlloc allocations from one 2 MiB block, and a
// handle then maps the whole block, its neighbours included (CUDA C++
// Programming Guide, "Interprocess Communication"). Exports are allocated in
// whole granules, so a handle shows one object and zeros.
const ipcGranule = 2 << 20

// IPCHandle is what another process on the same machine needs to map one
// object's device memory: it finds its own ordinal of the device named
// DeviceUUID (cuDeviceGetUuid), opens Handle there with cuIpcOpenMemHandle,
// and reads Size bytes at the start of the mapping.
type IPCHandle struct {
	// Handle is the CUipcMemHandle of a device allocation that holds the
	// object alone: its Size bytes, then zeros to the end of the allocation.
	Handle [IPCHandleSize]byte `json:"handle"`
	// Size is the object's size.
	Size int64 `json:"size"`
	// Checksum is the object's CRC-32C, for a consumer that verifies.
	Checksum uint32 `json:"checksum"`
	// DeviceUUID names the device as nvidia-smi does ("GPU-..."): ordinals
	// differ between processes whose CUDA_VISIBLE_DEVICES differ.
	DeviceUUID string `json:"device_uuid"`
}

// IPCExport is an object exported by Tier.ExportIPC. Its device memory is
// freed only by Release, so a consumer's mapping never outlives it unawares.
type IPCExport struct {
	t      *Tier
	id     backend.ID
	handle IPCHandle
	dptr   uintptr
	bytes  int64 // allocated: Size rounded up to ipcGranule

	once sync.Once
	err  error
}

// Handle is what to send to the consumer process.
func (x *IPCExport) Handle() IPCHandle { return x.handle }

// Release frees the export's device memory. Call it only once every process
// that opened the handle has closed it (cuIpcCloseMemHandle): the driver does
// not say whether another process still maps the memory, and freeing it
// under a mapping is undefined behaviour. Release is idempotent.
func (x *IPCExport) Release() error {
	x.once.Do(func() {
		t := x.t
		t.mu.Lock()
		dev := t.dev
		t.mu.Unlock()
		if err := dev.MemFree(x.dptr); err != nil {
			x.err = backend.Errorf("ipc-release", Name, x.id, unavailable(err), "freeing the export's %s", backend.FormatBytes(x.bytes))
		}
		t.mu.Lock()
		t.exports--
		t.exported -= x.bytes
		t.mu.Unlock()
		t.release()
	})
	return x.err
}

// ExportIPC exports one object's device memory to other processes on this
// machine, without giving them the rest of the tier's memory: it copies the
// object (device to device, at the device's speed) into an allocation of its
// own, zero-padded to whole 2 MiB granules, and returns that allocation's
// IPC handle.
//
// The export lives until Release, independent of the object: Delete, spill
// or eviction of the object leave it intact, and Teardown frees the tier's
// device memory and context only after every export is released (as it
// waits for open Gets). Exports use device memory beyond the tier's capacity;
// DeviceInfo reports how much.
func (t *Tier) ExportIPC(ctx context.Context, id backend.ID) (*IPCExport, error) {
	const op = "ipc-export"
	e, err := t.lookup(ctx, op, id, true)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	info, src, dev := e.info, t.devPtr(e), t.dev
	t.mu.Unlock()
	x := &IPCExport{t: t, id: id, handle: IPCHandle{Size: info.Size, Checksum: info.Checksum, DeviceUUID: t.uuid}}
	x.bytes = (max(info.Size, 1) + ipcGranule - 1) &^ (ipcGranule - 1)
	err = func() error {
		if x.dptr, err = dev.MemAlloc(x.bytes); err != nil {
			return err
		}
		err := ctx.Err()
		if err == nil {
			err = dev.CopyDtoD(x.dptr, src, info.Size)
		}
		if err == nil {
			// The rest of the allocation held whatever this process freed
			// there last, perhaps other objects: zero it.
			err = dev.MemsetD8(x.dptr+uintptr(info.Size), 0, x.bytes-info.Size)
		}
		if err == nil {
			x.handle.Handle, err = dev.IPCHandle(x.dptr)
		}
		if err != nil {
			dev.MemFree(x.dptr)
		}
		return err
	}()
	t.mu.Lock()
	t.unrefLocked(e)
	if err == nil {
		// The export keeps the operation's count on the tier until Release.
		t.exports++
		t.exported += x.bytes
	}
	t.mu.Unlock()
	if err != nil {
		t.release()
		return nil, wrap(op, id, err)
	}
	return x, nil
}
