package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"distore/backend"
	"distore/wire/localproto"
)

// Local is a client of a distore server's local socket (docs/local.md), for
// programs on the server's machine. It maps the server's memory arena once:
// GetObject returns an Object whose Bytes alias the mapping (no copy, no
// system call beyond one round trip), and Put writes straight into the
// mapping. Everything the Local holds — open Objects, pins it did not make
// durable — is released by the server when the Local is closed or its
// process dies.
//
// A Local is safe for concurrent use; its requests take turns on one
// connection.
type Local struct {
	path string

	mu    sync.Mutex // one request at a time on conn
	conn  *net.UnixConn
	rd    *localproto.Reader // conn's reader, polling briefly for replies
	wr    *localproto.Writer // conn's writer (the deadline from the call's context bounds it)
	br    *bufio.Reader
	enc   localproto.Encoder
	buf   []byte
	ro    *localMapping // read-only mapping, for gets
	rw    *localMapping // writable mapping, for puts; made on the first put
	pins  map[backend.ID]int
	cache localCache // references kept after release (localcache.go)
	// releases are OpRelease frames not sent yet: they go out with the next
	// request (one writev), or by the idle timer (localcache.go).
	releases []byte
	dead     error // set when the connection broke: every later call fails with it
	kind     byte  // the reply kind roundTrip read last
	dl       bool  // a deadline is set on conn
}

// begin applies ctx to the call about to start: its error if it is done,
// its deadline on the connection (a call past it breaks the connection, whose
// replies would come out of turn). The caller holds l.mu.
func (l *Local) begin(ctx context.Context, op string, id backend.ID) error {
	if err := ctx.Err(); err != nil {
		return backend.Errorf(op, "local", id, err, "")
	}
	if l.dead != nil {
		return l.dead
	}
	if dl, ok := ctx.Deadline(); ok {
		l.dl = true
		return l.conn.SetDeadline(dl)
	}
	if l.dl {
		l.dl = false
		return l.conn.SetDeadline(time.Time{})
	}
	return nil
}

// localMapping is a mapping of the arena, unmapped when the Local and every
// Object over it are closed.
type localMapping struct {
	mem  []byte
	refs atomic.Int64
}

func (m *localMapping) release() {
	if m != nil && m.refs.Add(-1) == 0 {
		_ = unix.Munmap(m.mem)
	}
}

// DialLocal connects to the local socket at path (or "unix:///path") and
// maps the server's arena.
func DialLocal(ctx context.Context, path string) (*Local, error) {
	path = strings.TrimPrefix(path, "unix://")
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("distore local socket: %w: %w", backend.ErrUnavailable, err)
	}
	l := &Local{path: path, conn: c.(*net.UnixConn), pins: map[backend.ID]int{}}
	if l.rd, err = localproto.NewReader(l.conn); err == nil {
		l.wr, err = localproto.NewWriter(l.conn)
	}
	if err != nil {
		l.conn.Close()
		return nil, fmt.Errorf("distore local socket: %w: %w", backend.ErrUnavailable, err)
	}
	l.br = bufio.NewReaderSize(l.rd, 64<<10)
	if dl, ok := ctx.Deadline(); ok {
		_ = l.conn.SetDeadline(dl)
	}
	d2, fd, err := l.roundTrip("hello", "", true, l.enc.Begin(localproto.OpHello).U32(localproto.Version))
	if err == nil {
		_, size := d2.U32(), d2.U64()
		if err = d2.Done(); err == nil {
			l.ro, err = mapArena(fd, size, false)
		}
	}
	if fd >= 0 {
		unix.Close(fd)
	}
	if err == nil {
		l.mapEpochs()
		err = l.dead
	}
	_ = l.conn.SetDeadline(time.Time{})
	if err != nil {
		l.conn.Close()
		return nil, err
	}
	return l, nil
}

func mapArena(fd int, size uint64, writable bool) (*localMapping, error) {
	if fd < 0 {
		return nil, fmt.Errorf("distore local socket: %w: the server sent no arena descriptor", localproto.ErrProtocol)
	}
	if size == 0 || size > 1<<48 {
		return nil, fmt.Errorf("distore local socket: %w: arena size %d", localproto.ErrProtocol, size)
	}
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	flags := unix.MAP_SHARED
	if writable {
		// Puts write into fresh places of the arena: fill the page tables
		// once here rather than take a fault per page of every put (a 64 MiB
		// put took 16384 faults).
		flags |= unix.MAP_POPULATE
	}
	mem, err := unix.Mmap(fd, 0, int(size), prot, flags)
	if err != nil {
		return nil, fmt.Errorf("distore local socket: map the arena (%d bytes): %w", size, err)
	}
	m := &localMapping{mem: mem}
	m.refs.Store(1)
	return m, nil
}

// Path returns the socket's path.
func (l *Local) Path() string { return l.path }

// Close closes the connection: the server releases what it held. Objects
// still open keep their bytes readable until closed (the mapping stays).
func (l *Local) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead == nil {
		l.dead = fmt.Errorf("distore local socket: %w", backend.ErrClosed)
	}
	l.dropCached()
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
		l.ro.release()
		l.rw.release()
	}
}

// roundTrip sends the frame built in l.enc (op named for errors) and reads
// the reply: its payload decoder, and the descriptor it carried if wantFD
// (-1 if none). A ReplyError comes back as an error wrapping its sentinel.
// The caller holds l.mu, except in DialLocal.
func (l *Local) roundTrip(op string, id backend.ID, wantFD bool, e *localproto.Encoder) (*localproto.Decoder, int, error) {
	if l.dead != nil {
		return nil, -1, l.dead
	}
	f, err := e.Frame()
	if err != nil {
		return nil, -1, err
	}
	if err := l.send(f); err != nil {
		return nil, -1, l.broken(op, err)
	}
	fd := -1
	var kind byte
	var payload []byte
	if wantFD {
		kind, payload, fd, err = l.readWithFD()
	} else {
		kind, payload, l.buf, err = localproto.ReadFrame(l.br, l.buf)
	}
	if err != nil {
		return nil, -1, l.broken(op, err)
	}
	l.kind = kind
	d := localproto.NewDecoder(payload)
	if kind == localproto.ReplyError {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, -1, d.Error(op, id)
	}
	return d, fd, nil
}

// send writes frame f after the releases waiting to go out, in one writev.
// The caller holds l.mu.
func (l *Local) send(f []byte) error {
	_, err := l.wr.Write(l.releases, f)
	l.releases = l.releases[:0]
	return err
}

// broken marks the connection unusable after a transport error.
func (l *Local) broken(op string, err error) error {
	l.dead = fmt.Errorf("distore local socket: %s: connection lost: %w: %w", op, backend.ErrUnavailable, err)
	return l.dead
}

// readWithFD reads one reply frame with recvmsg, so that a descriptor sent
// with it is received. Nothing is buffered in l.br then: requests are
// answered in order and this reply is the next.
func (l *Local) readWithFD() (byte, []byte, int, error) {
	buf := make([]byte, localproto.HeaderSize+localproto.MaxPayload)
	oob := make([]byte, unix.CmsgSpace(4))
	n, fd := 0, -1
	for {
		if n >= localproto.HeaderSize {
			h, err := localproto.ParseHeader(buf[:n])
			if err != nil {
				return 0, nil, fd, err
			}
			if end := localproto.HeaderSize + int(h.Len); n >= end {
				if n > end {
					return 0, nil, fd, fmt.Errorf("%w: %d bytes after a reply", localproto.ErrProtocol, n-end)
				}
				return h.Op, buf[localproto.HeaderSize:end], fd, nil
			}
		}
		k, oobn, err := l.rd.ReadMsg(buf[n:], oob)
		if oobn > 0 {
			if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
				for _, m := range msgs {
					if fds, perr := unix.ParseUnixRights(&m); perr == nil {
						for _, x := range fds {
							if fd < 0 {
								fd = x
							} else {
								unix.Close(x)
							}
						}
					}
				}
			}
		}
		n += k
		if err != nil {
			return 0, nil, fd, err
		}
		if k == 0 {
			return 0, nil, fd, io.ErrUnexpectedEOF
		}
	}
}

// GetObject returns the object, read in place: its Bytes alias the shared
// mapping (do not write to them) and stay valid until Close — the server
// neither frees nor moves the object meanwhile, even if it is deleted. An
// object in a lower tier is promoted into memory first. A get of an object
// this Local holds, or released less than half a second ago, is answered
// from the reference it kept, with no round trip, unless the ID was deleted
// since (see docs/local.md); its Info is then that of the first get.
func (l *Local) GetObject(ctx context.Context, id backend.ID) (backend.Object, error) {
	if err := checkID("get", id); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.begin(ctx, "get", id); err != nil {
		return nil, err
	}
	var slot int
	var epoch uint64
	if l.cache.epochs != nil {
		if e := l.cached(id); e != nil {
			return l.object(e), nil
		}
		// Read before the request: a delete after it shows as a change.
		slot = l.cache.slotOf(id)
		epoch = l.cache.epochAt(slot)
	}
	d, _, err := l.roundTrip("get", id, false, l.enc.Begin(localproto.OpGet).Str(string(id)))
	if err != nil {
		return nil, err
	}
	ref, off := d.U64(), d.U64()
	info := d.Info()
	if err := d.Done(); err != nil {
		return nil, l.broken("get", err)
	}
	m := l.ro
	if info.Size < 0 || off > uint64(len(m.mem)) || uint64(info.Size) > uint64(len(m.mem))-off {
		return nil, l.broken("get", fmt.Errorf("%w: object at %d+%d outside the %d-byte arena", localproto.ErrProtocol, off, info.Size, len(m.mem)))
	}
	e := &cref{id: id, ref: ref, info: info, data: m.mem[off : off+uint64(info.Size) : off+uint64(info.Size)],
		slot: slot, epoch: epoch, users: 1}
	l.keep(e)
	return l.object(e), nil
}

// object returns a new Object over e, which the caller took a use of.
func (l *Local) object(e *cref) *localObject {
	l.ro.refs.Add(1)
	return &localObject{l: l, e: e, m: l.ro}
}

// Get returns a copy of the object's bytes.
func (l *Local) Get(ctx context.Context, id backend.ID) ([]byte, error) {
	o, err := l.GetObject(ctx, id)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return append([]byte(nil), o.Bytes()...), nil
}

// localObject is an object read in place; Close releases it on the server
// (or keeps the reference for a get of it again, see localcache.go).
type localObject struct {
	l      *Local
	e      *cref
	m      *localMapping
	closed atomic.Bool
}

func (o *localObject) Info() backend.ObjectInfo { return o.e.info }
func (o *localObject) Bytes() []byte            { return o.e.data }

func (o *localObject) ReadAt(p []byte, off int64) (int, error) {
	if o.closed.Load() {
		return 0, backend.Errorf("read", "local", o.e.id, backend.ErrClosed, "object closed")
	}
	return backend.ReadAtBytes("local", o.e.id, o.e.data, p, off)
}

// Close ends this use of the object (OpRelease has no reply: no round trip).
func (o *localObject) Close() error {
	if !o.closed.CompareAndSwap(false, true) {
		return nil
	}
	l := o.l
	l.mu.Lock()
	l.done(o.e)
	l.mu.Unlock()
	o.m.release()
	return nil
}

// Put stores data: small objects travel in the request, larger ones are
// written straight into the shared mapping and sealed; the server verifies
// their CRC-32C at the seal.
func (l *Local) Put(ctx context.Context, data []byte, opts PutOptions) (backend.ObjectInfo, error) {
	if opts.ID != "" {
		if err := checkID("put", opts.ID); err != nil {
			return backend.ObjectInfo{}, err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.begin(ctx, "put", opts.ID); err != nil {
		return backend.ObjectInfo{}, err
	}
	if len(data) <= localproto.MaxInline {
		crc := opts.Checksum
		if crc == 0 {
			crc = backend.Checksum(data)
		}
		if l.cache.epochs != nil {
			return l.putRef(opts, crc, data)
		}
		d, _, err := l.roundTrip("put", opts.ID, false, l.enc.Begin(localproto.OpPutInline).Str(string(opts.ID)).
			I64(int64(opts.Importance)).U32(crc).Bytes(data))
		return l.info("put", d, err)
	}
	if l.rw == nil {
		_, fd, err := l.roundTrip("map_write", "", true, l.enc.Begin(localproto.OpMapWrite))
		if err != nil {
			return backend.ObjectInfo{}, err
		}
		m, err := mapArena(fd, uint64(len(l.ro.mem)), true)
		unix.Close(fd)
		if err != nil {
			return backend.ObjectInfo{}, err
		}
		l.rw = m
	}
	d, _, err := l.roundTrip("put", opts.ID, false, l.enc.Begin(localproto.OpCreate).Str(string(opts.ID)).
		U64(uint64(len(data))).I64(int64(opts.Importance)))
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	h, off, id := d.U64(), d.U64(), backend.ID(d.Str())
	if err := d.Done(); err != nil {
		return backend.ObjectInfo{}, l.broken("put", err)
	}
	var crc uint32
	if off == localproto.NoOffset { // it landed below memory: send the bytes
		for p := data; len(p) > 0; {
			n := min(len(p), localproto.MaxInline)
			if _, _, err := l.roundTrip("put", id, false, l.enc.Begin(localproto.OpWrite).U64(h).Bytes(p[:n])); err != nil {
				return backend.ObjectInfo{}, err
			}
			p = p[n:]
		}
		crc = backend.Checksum(data)
	} else {
		mem := l.rw.mem
		if off > uint64(len(mem)) || uint64(len(data)) > uint64(len(mem))-off {
			return backend.ObjectInfo{}, l.broken("put", fmt.Errorf("%w: room at %d+%d outside the arena", localproto.ErrProtocol, off, len(data)))
		}
		if err := ctx.Err(); err != nil {
			_, _, _ = l.roundTrip("abort", id, false, l.enc.Begin(localproto.OpAbort).U64(h))
			return backend.ObjectInfo{}, err
		}
		// Copied in chunks, each announced (OpWritten, no reply) so the
		// server checksums it while the next is copied: the seal then has
		// one chunk left to check. The server's checksum is the one recorded
		// (and compared with opts.Checksum, if given).
		room := mem[off : off+uint64(len(data))]
		for done := 0; done < len(data); {
			n := min(putChunk, len(data)-done)
			copy(room[done:done+n], data[done:done+n])
			if done += n; done < len(data) {
				f, _ := l.enc.Begin(localproto.OpWritten).U64(h).U64(uint64(done)).Frame()
				if err := l.send(f); err != nil {
					return backend.ObjectInfo{}, l.broken("put", err)
				}
			}
		}
		d, _, err = l.roundTrip("seal", id, false, l.enc.Begin(localproto.OpSeal).U64(h).U32(opts.Checksum))
		return l.info("put", d, err)
	}
	if opts.Checksum != 0 && opts.Checksum != crc {
		_, _, _ = l.roundTrip("abort", id, false, l.enc.Begin(localproto.OpAbort).U64(h))
		return backend.ObjectInfo{}, backend.Errorf("put", "local", id, backend.ErrCorrupt, "checksum %08x, expected %08x", crc, opts.Checksum)
	}
	d, _, err = l.roundTrip("seal", id, false, l.enc.Begin(localproto.OpSeal).U64(h).U32(crc))
	return l.info("put", d, err)
}

// info reads a ReplyInfo.
func (l *Local) info(op string, d *localproto.Decoder, err error) (backend.ObjectInfo, error) {
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	info := d.Info()
	if err := d.Done(); err != nil {
		return backend.ObjectInfo{}, l.broken(op, err)
	}
	return info, nil
}

// Info returns the object's metadata.
func (l *Local) Info(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.begin(ctx, "info", id); err != nil {
		return backend.ObjectInfo{}, err
	}
	d, _, err := l.roundTrip("info", id, false, l.enc.Begin(localproto.OpInfo).Str(string(id)))
	return l.info("info", d, err)
}

func (l *Local) simple(ctx context.Context, op string, code byte, id backend.ID, extra ...byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.begin(ctx, op, id); err != nil {
		return err
	}
	e := l.enc.Begin(code).Str(string(id))
	for _, b := range extra {
		e.U8(b)
	}
	_, _, err := l.roundTrip(op, id, false, e)
	return err
}

// Delete removes the object. Objects open meanwhile keep their bytes.
func (l *Local) Delete(ctx context.Context, id backend.ID) error {
	l.mu.Lock()
	if e := l.cache.byID[id]; e != nil {
		l.detach(e) // a kept reference would hold the bytes for nothing
	}
	l.mu.Unlock()
	return l.simple(ctx, "delete", localproto.OpDelete, id)
}

// Prefetch brings the object into the fastest tier.
func (l *Local) Prefetch(ctx context.Context, id backend.ID) error {
	return l.simple(ctx, "prefetch", localproto.OpPrefetch, id)
}

// Pin pins the object for as long as this connection lives: the server takes
// the pin away when the Local is closed or its process dies. PinDurable makes
// a pin that outlives it.
func (l *Local) Pin(ctx context.Context, id backend.ID) error {
	if err := l.simple(ctx, "pin", localproto.OpPin, id, 0); err != nil {
		return err
	}
	l.mu.Lock()
	l.pins[id]++
	l.mu.Unlock()
	return nil
}

// PinDurable pins the object until an Unpin, whatever becomes of this client.
func (l *Local) PinDurable(ctx context.Context, id backend.ID) error {
	return l.simple(ctx, "pin", localproto.OpPin, id, 1)
}

// Unpin takes a pin away: one this connection made if it has any, else a
// durable one.
func (l *Local) Unpin(ctx context.Context, id backend.ID) error {
	l.mu.Lock()
	own := l.pins[id] > 0
	l.mu.Unlock()
	durable := byte(1)
	if own {
		durable = 0
	}
	if err := l.simple(ctx, "unpin", localproto.OpUnpin, id, durable); err != nil {
		return err
	}
	if own {
		l.mu.Lock()
		if l.pins[id]--; l.pins[id] <= 0 {
			delete(l.pins, id)
		}
		l.mu.Unlock()
	}
	return nil
}

// putChunk is how much of a put is copied into the mapping before the
// server is told to checksum it. Under backend.ParallelMin, so that the
// server checksums each chunk on one core while the client copies the next
// on another (a parallel checksum took the client's core too: a 64 MiB put
// from another process went from 0.33x copy() to 0.45-0.5x with 1 MiB).
const putChunk = 1 << 20
