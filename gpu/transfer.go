package gpu

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"distore/backend"
)

// lane is a pair of pinned staging chunks, each with its own stream: while the
// DMA of one chunk runs, the host copies the next into the other.
type lane struct {
	buf     [2][]byte
	stream  [2]Stream
	pending [2]bool // a copy is queued on stream[i] since its last Sync
}

// downloadChunk bounds one synchronous device→host copy, so a cancelled
// context stops a large Get between chunks.
const downloadChunk = 64 << 20

// setupStaging pins the staging memory and makes the lanes; t.mu held.
func (t *Tier) setupStaging() error {
	t.chunk = t.cfg.chunk
	n := t.cfg.staging / (2 * t.chunk)
	var err error
	if t.staging, err = t.dev.HostAlloc(n * 2 * t.chunk); err != nil {
		return err
	}
	t.lanes = make(chan *lane, n)
	for i := range n {
		l := &lane{}
		for h := range 2 {
			off := (2*i + int64(h)) * t.chunk
			l.buf[h] = t.staging[off : off+t.chunk : off+t.chunk]
			if l.stream[h], err = t.dev.NewStream(); err != nil {
				t.all = append(t.all, l)
				return err
			}
		}
		t.all = append(t.all, l)
		t.lanes <- l
	}
	return nil
}

// chunkFor picks the chunk size of an n-byte transfer: small enough that
// every lane gets a few chunks (so copies and DMA overlap), large enough
// that per-call costs do not show.
func (t *Tier) chunkFor(n int64) int64 {
	const round = 64 << 10
	c := (n + 4*int64(len(t.all)) - 1) / (4 * int64(len(t.all)))
	c = (c + round - 1) &^ (round - 1)
	return min(max(c, minChunk), t.chunk)
}

// upload copies src to device memory at dst through the staging lanes and
// returns src's CRC-32C. Chunks are checksummed while they are copied into
// staging, by as many lanes as are free, and the checksums combined.
func (t *Tier) upload(ctx context.Context, dst uintptr, src []byte) (uint32, error) {
	n := int64(len(src))
	if n == 0 {
		return 0, nil
	}
	chunk := t.chunkFor(n)
	nchunks := int((n + chunk - 1) / chunk)
	var lanes []*lane
	select {
	case l := <-t.lanes:
		lanes = append(lanes, l)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// Take more lanes only if they are free: concurrent transfers share them.
more:
	for len(lanes) < min((nchunks+1)/2, cap(t.lanes)) {
		select {
		case l := <-t.lanes:
			lanes = append(lanes, l)
		default:
			break more
		}
	}
	crcs := make([]uint32, nchunks)
	var next atomic.Int64
	var failed atomic.Bool
	work := func(l *lane) error {
		var err error
		for k := 0; err == nil && !failed.Load(); k++ {
			i := next.Add(1) - 1
			if i >= int64(nchunks) {
				break
			}
			if err = ctx.Err(); err != nil {
				break
			}
			h := k & 1
			if l.pending[h] {
				l.pending[h] = false
				if err = t.dev.Sync(l.stream[h]); err != nil {
					break
				}
			}
			off := i * chunk
			end := min(off+chunk, n)
			buf := l.buf[h][:end-off]
			_, crcs[i] = backend.CopyChecksum(buf, src[off:end])
			if err = t.dev.CopyHtoDAsync(dst+uintptr(off), buf, l.stream[h]); err == nil {
				l.pending[h] = true
			}
		}
		// Drain before the lane goes back: its buffers are in use until then.
		for h := range 2 {
			if l.pending[h] {
				l.pending[h] = false
				err = errors.Join(err, t.dev.Sync(l.stream[h]))
			}
		}
		if err != nil {
			failed.Store(true)
		}
		return err
	}
	errs := make([]error, len(lanes))
	if len(lanes) == 1 {
		errs[0] = work(lanes[0])
	} else {
		var wg sync.WaitGroup
		for i, l := range lanes {
			wg.Go(func() { errs[i] = work(l) })
		}
		wg.Wait()
	}
	for _, l := range lanes {
		t.lanes <- l
	}
	if err := errors.Join(errs...); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, err
	}
	crc := crcs[0]
	for i := 1; i < nchunks; i++ {
		crc = backend.CombineChecksum(crc, crcs[i], min(chunk, n-int64(i)*chunk))
	}
	return crc, nil
}

// download copies len(dst) bytes of device memory at src into dst (pinned).
func (t *Tier) download(ctx context.Context, dst []byte, src uintptr) error {
	for off := 0; off < len(dst); off += downloadChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(off+downloadChunk, len(dst))
		if err := t.dev.CopyDtoH(dst[off:end], src+uintptr(off)); err != nil {
			return err
		}
	}
	return nil
}

// hostBuf returns n bytes of pinned host memory from the Get cache, or pinned
// for this buffer alone when the cache has no room, and the func that frees it.
func (t *Tier) hostBuf(n int64) ([]byte, func(), error) {
	if n == 0 {
		return []byte{}, func() {}, nil
	}
	t.hostMu.Lock()
	off, ok := t.hostArena.Alloc(n)
	t.hostMu.Unlock()
	if ok {
		return t.host[off : off+n : off+n], func() {
			t.hostMu.Lock()
			t.hostArena.Free(off, n)
			t.hostMu.Unlock()
		}, nil
	}
	b, err := t.dev.HostAlloc(n)
	if err != nil {
		return nil, nil, err
	}
	return b, func() {
		if err := t.dev.HostFree(b); err != nil {
			slog.Warn("gpu tier: freeing a pinned buffer", "size", n, "err", err)
		}
	}, nil
}
