package gpu

import (
	"context"

	"distore/backend"
)

// IPCHandle lets another process on the same machine map an object's device
// memory without a copy: it opens Handle with cuIpcOpenMemHandle (which maps
// the tier's whole device allocation) and reads Size bytes at Offset.
type IPCHandle struct {
	// Handle is the CUipcMemHandle of the tier's device allocation.
	Handle [IPCHandleSize]byte `json:"handle"`
	// Offset and Size place the object in that allocation.
	Offset int64 `json:"offset"`
	Size   int64 `json:"size"`
	// Device is the ordinal of the device, in this process's numbering.
	Device int `json:"device"`
}

// IPCHandle exports the object's device memory to other processes. The
// mapping shows the object's bytes only while the object exists in this tier:
// Pin it for as long as other processes use the handle, so it is neither
// deleted nor spilled and its memory not reused.
func (t *Tier) IPCHandle(ctx context.Context, id backend.ID) (IPCHandle, error) {
	const op = "ipc-handle"
	var h IPCHandle
	e, err := t.lookup(ctx, op, id, true)
	if err != nil {
		return h, err
	}
	defer func() {
		t.mu.Lock()
		t.unrefLocked(e)
		t.mu.Unlock()
		t.release()
	}()
	t.mu.Lock()
	h.Offset, h.Size, h.Device = max(e.off, 0), e.info.Size, t.cfg.device
	cached, dev, base := t.ipc, t.dev, t.base
	t.mu.Unlock()
	if cached == nil {
		// The handle names the allocation, not a range: get it once.
		hd, err := dev.IPCHandle(base)
		if err != nil {
			return IPCHandle{}, wrap(op, id, err)
		}
		t.mu.Lock()
		t.ipc = &hd
		t.mu.Unlock()
		cached = &hd
	}
	h.Handle = *cached
	return h, nil
}
