package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"distore/backend"
)

// chunkSize is the unit a transfer reads, spools, stores and forwards.
const chunkSize = 1 << 20

// stallTimeout aborts a transfer whose holder sends nothing for this long.
const stallTimeout = 30 * time.Second

// transfer is one peer fetch of one object into this node. Every get of the
// ID while it runs joins it (one transfer however many readers). The bytes go
// to a local writer (the copy this node keeps) and to an unlinked spool file
// that readers read as the bytes arrive, so the first bytes reach a client
// before the last arrive, in constant memory.
type transfer struct {
	id backend.ID

	mu       sync.Mutex
	cond     *sync.Cond
	info     backend.ObjectInfo
	haveInfo bool
	n        int64 // bytes spooled
	finished bool
	err      error
	spool    *os.File
	refs     int // the transfer itself and each open reader

	done chan struct{}
}

func newTransfer(id backend.ID) *transfer {
	t := &transfer{id: id, refs: 1, done: make(chan struct{})}
	t.cond = sync.NewCond(&t.mu)
	return t
}

// wait returns when the transfer has ended (nil: the local copy is stored).
func (t *transfer) wait(ctx context.Context) error {
	select {
	case <-t.done:
		return t.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitInfo returns the object's info once the first holder answered.
func (t *transfer) waitInfo(ctx context.Context) (backend.ObjectInfo, error) {
	stop := context.AfterFunc(ctx, func() { t.mu.Lock(); t.cond.Broadcast(); t.mu.Unlock() })
	defer stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	for !t.haveInfo && !t.finished && ctx.Err() == nil {
		t.cond.Wait()
	}
	switch {
	case t.haveInfo:
		return t.info, nil
	case t.finished:
		return t.info, t.err
	}
	return t.info, ctx.Err()
}

func (t *transfer) unref() {
	t.mu.Lock()
	t.refs--
	f := t.spool
	last := t.refs == 0
	t.mu.Unlock()
	if last && f != nil {
		f.Close()
	}
}

// reader returns a reader of [off, off+length) that reads spooled bytes as
// they arrive; it fails with the transfer's error if the transfer fails.
func (t *transfer) reader(ctx context.Context, off, length int64) (*spoolReader, error) {
	info, err := t.waitInfo(ctx)
	if err != nil {
		return nil, err
	}
	if length < 0 {
		length = info.Size - off
	}
	if off < 0 || length < 0 || off+length > info.Size {
		return nil, backend.Errorf("read", "cluster", t.id, backend.ErrInvalidArgument, "range %d+%d outside the object's %d bytes", off, length, info.Size)
	}
	t.mu.Lock()
	t.refs++
	t.mu.Unlock()
	return &spoolReader{t: t, ctx: ctx, off: off, end: off + length, info: info}, nil
}

// spoolReader reads a transfer's spool as it grows.
type spoolReader struct {
	t        *transfer
	ctx      context.Context
	off, end int64
	info     backend.ObjectInfo
	closed   bool
}

func (r *spoolReader) Info() backend.ObjectInfo { return r.info }

func (r *spoolReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, backend.Errorf("read", "cluster", r.t.id, backend.ErrClosed, "reader closed")
	}
	if r.off >= r.end {
		return 0, io.EOF
	}
	t := r.t
	stop := context.AfterFunc(r.ctx, func() { t.mu.Lock(); t.cond.Broadcast(); t.mu.Unlock() })
	defer stop()
	t.mu.Lock()
	for t.n <= r.off && !t.finished && r.ctx.Err() == nil {
		t.cond.Wait()
	}
	avail, err, f := t.n, t.err, t.spool
	t.mu.Unlock()
	if avail <= r.off {
		if err == nil {
			err = r.ctx.Err()
		}
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	p = p[:min(int64(len(p)), avail-r.off, r.end-r.off)]
	n, rerr := f.ReadAt(p, r.off)
	r.off += int64(n)
	if rerr == io.EOF && n == len(p) {
		rerr = nil
	}
	if rerr == nil && r.off >= r.end {
		// The last bytes: hand them out only if the whole object verified,
		// so a reader never takes a corrupt object as whole.
		if werr := t.wait(r.ctx); werr != nil && !errors.Is(werr, backend.ErrExists) {
			return n, werr
		}
	}
	return n, rerr
}

func (r *spoolReader) Close() error {
	if !r.closed {
		r.closed = true
		r.t.unref()
	}
	return nil
}

// run fetches the object from holders in turn (resuming at the byte reached
// when one fails, since every copy is the same bytes), and stores it locally.
func (n *Node) runTransfer(t *transfer, holders []string) {
	start := time.Now()
	ctx := context.Background()
	err := n.fetchInto(ctx, t, holders)
	t.mu.Lock()
	t.finished, t.err = true, err
	t.cond.Broadcast()
	t.mu.Unlock()
	n.mu.Lock()
	delete(n.transfers, t.id)
	n.mu.Unlock()
	close(t.done)
	t.unref()
	n.met.fetchSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		n.met.fetches.WithLabelValues("error").Inc()
		n.log.Warn("cluster: peer fetch failed", "id", t.id, "holders", holders, "err", err)
		return
	}
	n.met.fetches.WithLabelValues("ok").Inc()
}

func (n *Node) fetchInto(ctx context.Context, t *transfer, holders []string) error {
	f, err := os.CreateTemp(n.spoolDir, "fetch-*")
	if err != nil {
		return backend.Errorf("fetch", "cluster", t.id, backend.ErrUnavailable, "spool: %v", err)
	}
	os.Remove(f.Name()) // unlinked: gone when the last reader closes
	t.mu.Lock()
	t.spool = f
	t.mu.Unlock()

	var w backend.Writer
	var crc uint32
	var lastErr error
	buf := make([]byte, chunkSize)
	tried := 0
	for _, h := range holders {
		if h == n.self {
			continue
		}
		m, ok := n.tr.Member(h)
		if !ok {
			continue
		}
		if tried == n.maxHolders {
			break
		}
		tried++
		t.mu.Lock()
		off := t.n
		t.mu.Unlock()
		sctx, cancel := context.WithCancel(ctx)
		resp, info, err := n.peers.open(sctx, h, m.Addr, t.id, off)
		if err != nil {
			cancel()
			lastErr = err
			continue
		}
		t.mu.Lock()
		if t.haveInfo && (info.Size != t.info.Size || info.Checksum != t.info.Checksum) {
			t.mu.Unlock()
			resp.Body.Close()
			cancel()
			lastErr = backend.Errorf("fetch", "cluster", t.id, backend.ErrCorrupt, "node %s holds a different object (%d bytes, crc %08x) than %d bytes, crc %08x", h, info.Size, info.Checksum, t.info.Size, t.info.Checksum)
			continue
		}
		if !t.haveInfo {
			t.info, t.haveInfo = info, true
			t.cond.Broadcast()
		}
		t.mu.Unlock()
		if w == nil {
			w, err = n.local.OpenWriter(ctx, t.id, info.Size, backend.PutOptions{Importance: info.Importance, Checksum: info.Checksum, Created: info.Created})
			if errors.Is(err, backend.ErrExists) {
				w, err = discardWriter{}, nil // put here meanwhile: serve the readers anyway
			}
			if err != nil {
				resp.Body.Close()
				cancel()
				return err
			}
			defer func() { w.Abort() }()
		}
		// The tier verifies a non-zero checksum as it stores
		// (backend.PutOptions): a second pass here only where it does not.
		pcrc := &crc
		if _, discard := w.(discardWriter); !discard && t.info.Checksum != 0 {
			pcrc = nil
		}
		err = n.copyChunks(sctx, cancel, t, resp.Body, w, buf, pcrc)
		resp.Body.Close()
		cancel()
		if err != nil {
			lastErr = backend.Errorf("fetch", "cluster", t.id, backend.ErrUnavailable, "from node %s: %v", h, err)
			continue
		}
		if pcrc != nil && crc != t.info.Checksum {
			return backend.Errorf("fetch", "cluster", t.id, backend.ErrCorrupt, "received crc %08x, holder %s said %08x", crc, h, t.info.Checksum)
		}
		if err := w.Close(); err != nil && !errors.Is(err, backend.ErrExists) {
			if errors.Is(err, backend.ErrCorrupt) { // the tier's check: say whose bytes
				return backend.Errorf("fetch", "cluster", t.id, err, "from holder %s", h)
			}
			return err
		}
		n.afterCopy(t.id, t.info)
		return nil
	}
	if lastErr == nil {
		lastErr = backend.Errorf("fetch", "cluster", t.id, backend.ErrNotFound, "no live holder (holders: %v)", holders)
	}
	return lastErr
}

// copyChunks copies the body to the writer and the spool until the object's
// end (extending *crc, if crc is not nil), cancelling if no byte arrives for
// stallTimeout.
func (n *Node) copyChunks(ctx context.Context, cancel context.CancelFunc, t *transfer, body io.Reader, w io.Writer, buf []byte, crc *uint32) error {
	watchdog := time.AfterFunc(stallTimeout, cancel)
	defer watchdog.Stop()
	for {
		t.mu.Lock()
		off, size, f := t.n, t.info.Size, t.spool
		t.mu.Unlock()
		if off == size {
			return nil
		}
		k, err := io.ReadFull(body, buf[:min(int64(len(buf)), size-off)])
		if k > 0 {
			watchdog.Reset(stallTimeout)
			if _, werr := f.WriteAt(buf[:k], off); werr != nil {
				return fmt.Errorf("spool: %w", werr)
			}
			if _, werr := w.Write(buf[:k]); werr != nil {
				return werr
			}
			if crc != nil {
				*crc = backend.UpdateChecksum(*crc, buf[:k])
			}
			n.met.peerBytes.WithLabelValues("in").Add(float64(k))
			t.mu.Lock()
			t.n += int64(k)
			t.cond.Broadcast()
			t.mu.Unlock()
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("stalled for %v", stallTimeout)
			}
			return err
		}
	}
}

// discardWriter stands in for the local copy when one exists already.
type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) Close() error                { return nil }
func (discardWriter) Abort() error                { return nil }
