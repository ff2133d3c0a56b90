package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"distore/backend"
	"distore/wire/localproto"
)

// The local socket: the server's door for programs on its own machine (see
// docs/local.md). A client receives the memory tier's arena descriptor once
// and reads objects in place; everything a connection holds — references,
// pins it did not make durable, puts not sealed — is released when it closes,
// also when the client is killed (the kernel closes its socket).

// Per-connection limits, so that one client cannot make the server hold
// unbounded state.
const (
	// MaxLocalRefs is the most objects one connection holds open at once.
	MaxLocalRefs = 1 << 16
	// MaxLocalPuts is the most unsealed puts of one connection.
	MaxLocalPuts = 256
)

// localArena is what the memory tier offers the local socket (shmem.Store).
type localArena interface {
	ArenaFile(writable bool) (*os.File, error)
	ArenaSize() int64
	ArenaOffset(b []byte) (int64, bool)
	PendingRegion(id backend.ID) ([]byte, bool)
	EpochFile() (*os.File, int, error)
	Epoch(id backend.ID) uint64
}

// holder keeps an object where it is while a client reads it in place
// (spill.Stack). A backend without it does not move objects.
type holder interface {
	Hold(ctx context.Context, id backend.ID) (func(), error)
}

// findArena returns the memory tier under b: b itself, one of a stack's
// tiers, or what a wrapper unwraps to.
func findArena(b backend.Backend) localArena {
	for range 8 {
		if a, ok := b.(localArena); ok {
			return a
		}
		if t, ok := b.(interface{ Tiers() []backend.Backend }); ok {
			for _, tb := range t.Tiers() {
				if a := findArena(tb); a != nil {
					return a
				}
			}
		}
		u, ok := b.(interface{ Unwrap() backend.Backend })
		if !ok {
			return nil
		}
		b = u.Unwrap()
	}
	return nil
}

// ListenLocal creates the local socket at path, replacing a stale socket
// file (never another kind of file), with mode 0600, or 0660 and the given
// group when group is not empty.
func ListenLocal(path, group string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("local socket %s: a file that is not a socket is in the way", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("local socket %s: another server is serving it", path)
		}
		_ = os.Remove(path)
	}
	gid := -1
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("local socket group: %w", err)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return nil, fmt.Errorf("local socket group %s: gid %q", group, g.Gid)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	mode := os.FileMode(0o600)
	if gid >= 0 {
		mode = 0o660
		if err := os.Lchown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("local socket %s: chown to group %s: %w", path, group, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local socket %s: %w", path, err)
	}
	return ln, nil
}

// ServeLocal serves the local protocol on ln until ctx ends; then it closes
// the listener and every connection (releasing what they hold) and returns
// nil. The backend must have a memory tier (shmem): ErrUnavailable otherwise.
func (s *Server) ServeLocal(ctx context.Context, ln *net.UnixListener) error {
	a := findArena(s.b)
	if a == nil {
		ln.Close()
		return fmt.Errorf("server: local socket: %w: the store has no memory tier to share", backend.ErrUnavailable)
	}
	h, _ := s.b.(holder)
	var (
		mu    sync.Mutex
		conns = map[*localConn]struct{}{}
		wg    sync.WaitGroup
		done  bool
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		done = true
		for c := range conns {
			c.nc.Close()
		}
		mu.Unlock()
	})
	defer stop()
	for {
		nc, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			wg.Wait()
			return fmt.Errorf("server: local socket: %w", err)
		}
		c, err := s.newLocalConn(nc, a, h)
		if err != nil {
			nc.Close()
			continue
		}
		mu.Lock()
		if done {
			mu.Unlock()
			nc.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			c.serve()
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		})
	}
}

// localConn is one client's connection and everything it holds.
type localConn struct {
	s      *Server
	a      localArena
	h      holder
	nc     *net.UnixConn
	rd     *localproto.Reader
	wr     *localproto.Writer
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	// opCtx bounds a request's backend call; see opContext.
	opCtx    context.Context
	opCancel context.CancelFunc
	opEnd    time.Time

	refs map[uint64]localRef
	puts map[uint64]*localPut
	pins map[backend.ID]int // pins that end with the connection
	next uint64

	rbuf []byte // received bytes; rbuf[:rn] not yet consumed
	rn   int
	oob  []byte
	enc  localproto.Encoder
}

// localRef is an object a client reads in place.
type localRef struct {
	obj     backend.Object
	release func() // the hold, or nil
}

// localPut is a put between OpCreate and OpSeal.
type localPut struct {
	id     backend.ID
	w      backend.Writer
	size   int64
	region []byte // the bytes in the mapping; nil: the client sends OpWrite
	n      int64  // bytes received by OpWrite, or of region checksummed (OpWritten)
	crc    uint32 // the checksum of the bytes received by OpWrite
	err    error  // an OpWritten that failed (it has no reply): the seal says it
	cancel context.CancelFunc
}

// abort discards the put.
func (p *localPut) abort() {
	_ = p.w.Abort()
	p.cancel()
}

func (s *Server) newLocalConn(nc *net.UnixConn, a localArena, h holder) (*localConn, error) {
	rd, err := localproto.NewReader(nc)
	if err != nil {
		return nil, err
	}
	wr, err := localproto.NewWriter(nc)
	if err != nil {
		return nil, err
	}
	wr.Timeout = s.ioTO // a client that stops reading its replies is cut off
	ctx, cancel := context.WithCancel(context.Background())
	return &localConn{s: s, a: a, h: h, nc: nc, rd: rd, wr: wr, log: s.log, ctx: ctx, cancel: cancel,
		refs: map[uint64]localRef{}, puts: map[uint64]*localPut{}, pins: map[backend.ID]int{},
		rbuf: make([]byte, localproto.HeaderSize+localproto.MaxPayload), oob: make([]byte, unix.CmsgSpace(4*16))}, nil
}

// errForeignFD is a request that came with file descriptors.
var errForeignFD = fmt.Errorf("%w: the server accepts no file descriptors", localproto.ErrProtocol)

// serve answers requests until the client goes or breaks the protocol, then
// releases everything the connection holds.
func (c *localConn) serve() {
	defer c.cleanup()
	for {
		op, payload, err := c.readFrame()
		if err != nil {
			if errors.Is(err, localproto.ErrProtocol) {
				// Say what was wrong, then close: the stream cannot be resynchronised.
				c.log.Debug("local socket: protocol error", "err", err)
				c.replyErr(err)
			}
			return
		}
		if !c.handle(op, payload) {
			return
		}
		c.consume(localproto.HeaderSize + len(payload))
	}
}

// readFrame returns the next frame, reading more bytes as needed. Any file
// descriptors received are closed and reported as errForeignFD.
func (c *localConn) readFrame() (byte, []byte, error) {
	for {
		if c.rn >= localproto.HeaderSize {
			h, err := localproto.ParseHeader(c.rbuf[:c.rn])
			if err != nil {
				return 0, nil, err
			}
			if n := localproto.HeaderSize + int(h.Len); c.rn >= n {
				return h.Op, c.rbuf[localproto.HeaderSize:n], nil
			}
		}
		c.rd.SetPolling(len(c.puts) == 0)
		n, oobn, err := c.rd.ReadMsg(c.rbuf[c.rn:], c.oob)
		if oobn > 0 {
			closeRights(c.oob[:oobn])
			return 0, nil, errForeignFD
		}
		c.rn += n
		if err != nil {
			if c.rn > 0 && n == 0 {
				c.log.Debug("local socket: connection ended inside a frame", "bytes", c.rn)
			}
			return 0, nil, err
		}
		if n == 0 {
			return 0, nil, net.ErrClosed
		}
	}
}

// closeRights closes every descriptor in a control message.
func closeRights(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
}

// consume drops the first n received bytes.
func (c *localConn) consume(n int) {
	copy(c.rbuf, c.rbuf[n:c.rn])
	c.rn -= n
}

// send writes a frame, with a descriptor when fd is not nil.
func (c *localConn) send(frame []byte, fd *os.File) bool {
	var err error
	if fd != nil {
		// Rare (hello, map_write, epochs) and small: bounded as the
		// Writer bounds the others.
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.ioTO))
		_, _, err = c.nc.WriteMsgUnix(frame, unix.UnixRights(int(fd.Fd())), nil)
		_ = c.nc.SetWriteDeadline(time.Time{})
		fd.Close()
	} else {
		_, err = c.wr.Write(frame)
	}
	if err != nil {
		c.log.Debug("local socket: reply not sent", "err", err)
		return false
	}
	return true
}

func (c *localConn) frame(e *localproto.Encoder) []byte {
	f, err := e.Frame()
	if err != nil { // a reply too long: a bug here, reported to the client
		f, _ = c.enc.Begin(localproto.ReplyError).PutError(err).Frame()
	}
	return f
}

func (c *localConn) replyErr(err error) bool {
	return c.send(c.frame(c.enc.Begin(localproto.ReplyError).PutError(err)), nil)
}

func (c *localConn) replyOK() bool { return c.send(c.frame(c.enc.Begin(localproto.ReplyOK)), nil) }

func (c *localConn) replyInfo(info backend.ObjectInfo) bool {
	return c.send(c.frame(c.enc.Begin(localproto.ReplyInfo).PutInfo(info)), nil)
}

// opContext returns the context that bounds a request's backend call: it
// ends with the connection or within the I/O timeout of now. One context
// serves the connection's requests while nine tenths of the timeout remain
// on it, so that a request does not arm and stop a timer of its own: on an
// idle process, arming the earliest timer wakes the netpoller's thread.
func (c *localConn) opContext() context.Context {
	now := time.Now()
	if c.opCtx == nil || c.opEnd.Sub(now) < c.s.ioTO*9/10 {
		if c.opCancel != nil {
			c.opCancel()
		}
		c.opEnd = now.Add(c.s.ioTO)
		c.opCtx, c.opCancel = context.WithDeadline(c.ctx, c.opEnd)
	}
	return c.opCtx
}

// handle serves one request; false ends the connection.
func (c *localConn) handle(op byte, payload []byte) bool {
	c.s.met.localOp(op)
	d := localproto.NewDecoder(payload)
	bad := func() bool { // a malformed payload: answer it, keep the connection
		return c.replyErr(fmt.Errorf("%s: %w", localproto.OpName(op), d.Err()))
	}
	switch op {
	case localproto.OpHello:
		v := d.U32()
		if d.Done() != nil {
			return bad()
		}
		if v != localproto.Version {
			return c.replyErr(fmt.Errorf("%w: protocol version %d, this server speaks %d", localproto.ErrProtocol, v, localproto.Version))
		}
		f, err := c.a.ArenaFile(false)
		if err != nil {
			return c.replyErr(err)
		}
		return c.send(c.frame(c.enc.Begin(localproto.ReplyHello).U32(localproto.Version).U64(uint64(c.a.ArenaSize()))), f)
	case localproto.OpMapWrite:
		if d.Done() != nil {
			return bad()
		}
		f, err := c.a.ArenaFile(true)
		if err != nil {
			return c.replyErr(err)
		}
		return c.send(c.frame(c.enc.Begin(localproto.ReplyOK)), f)
	case localproto.OpEpochs:
		if d.Done() != nil {
			return bad()
		}
		f, slots, err := c.a.EpochFile()
		if err != nil {
			return c.replyErr(err)
		}
		return c.send(c.frame(c.enc.Begin(localproto.ReplyOK).U32(uint32(slots))), f)
	case localproto.OpGet:
		id := backend.ID(d.Str())
		if d.Done() != nil {
			return bad()
		}
		return c.get(id)
	case localproto.OpRelease:
		ref := d.U64()
		if d.Done() != nil {
			return bad()
		}
		if r, ok := c.refs[ref]; ok {
			delete(c.refs, ref)
			r.close()
			c.s.met.localRefs.Dec()
		} else {
			c.log.Debug("local socket: release of an unknown reference", "ref", ref)
		}
		return true // no reply
	case localproto.OpCreate:
		id, size, imp := backend.ID(d.Str()), d.U64(), int64(d.U64())
		if d.Done() != nil {
			return bad()
		}
		return c.create(id, size, imp)
	case localproto.OpWrite:
		h, data := d.U64(), d.Bytes()
		if d.Done() != nil {
			return bad()
		}
		return c.write(h, data)
	case localproto.OpWritten:
		h, upto := d.U64(), d.U64()
		if d.Done() != nil {
			return bad()
		}
		c.written(h, upto, c.sealQueued(localproto.HeaderSize+len(payload), h))
		return true // no reply
	case localproto.OpSeal:
		h, crc := d.U64(), d.U32()
		if d.Done() != nil {
			return bad()
		}
		return c.seal(h, crc)
	case localproto.OpAbort:
		h := d.U64()
		if d.Done() != nil {
			return bad()
		}
		p, ok := c.puts[h]
		if !ok {
			return c.replyErr(fmt.Errorf("abort: %w: no put in progress with handle %d", backend.ErrInvalidArgument, h))
		}
		delete(c.puts, h)
		p.abort()
		return c.replyOK()
	case localproto.OpPutInline, localproto.OpPutRef:
		id, imp, crc, data := backend.ID(d.Str()), int64(d.U64()), d.U32(), d.Bytes()
		if d.Done() != nil {
			return bad()
		}
		if id == "" {
			id = c.s.newID()
		}
		info, err := c.s.b.Put(c.opContext(), id, data, backend.PutOptions{Importance: int(imp), Checksum: crc})
		if err != nil {
			return c.replyErr(err)
		}
		if op == localproto.OpPutRef {
			return c.putRef(id, info)
		}
		return c.replyInfo(info)
	case localproto.OpDelete, localproto.OpPrefetch, localproto.OpInfo:
		id := backend.ID(d.Str())
		if d.Done() != nil {
			return bad()
		}
		ctx := c.opContext()
		switch op {
		case localproto.OpDelete:
			if err := c.s.b.Delete(ctx, id); err != nil {
				return c.replyErr(err)
			}
		case localproto.OpPrefetch:
			if err := c.s.b.Prefetch(ctx, id); err != nil {
				return c.replyErr(err)
			}
		default:
			info, err := c.s.b.ObjectInfo(ctx, id)
			if err != nil {
				return c.replyErr(err)
			}
			return c.replyInfo(info)
		}
		return c.replyOK()
	case localproto.OpRegisterGroup, localproto.OpSpread:
		group := d.Str()
		var id backend.ID
		if op == localproto.OpSpread {
			id = backend.ID(d.Str())
		}
		if d.Done() != nil {
			return bad()
		}
		g := c.s.groups
		if g == nil {
			return c.replyErr(fmt.Errorf("%s: %w: this server has no prefetch groups (it is not in a cluster)",
				localproto.OpName(op), backend.ErrUnavailable))
		}
		ctx := c.opContext()
		var err error
		if op == localproto.OpSpread {
			err = g.Spread(ctx, group, id)
		} else {
			err = g.Register(ctx, group)
		}
		if err != nil {
			return c.replyErr(err)
		}
		return c.replyOK()
	case localproto.OpSelect, localproto.OpSchema:
		id := backend.ID(d.Str())
		var cols, rows string
		if op == localproto.OpSelect {
			cols, rows = d.Str(), d.Str()
		}
		if d.Done() != nil {
			return bad()
		}
		return c.columns(op, id, cols, rows)
	case localproto.OpPin, localproto.OpUnpin:
		id, durable := backend.ID(d.Str()), d.U8() != 0
		if d.Done() != nil {
			return bad()
		}
		if err := c.pin(op == localproto.OpPin, id, durable); err != nil {
			return c.replyErr(err)
		}
		return c.replyOK()
	}
	return c.replyErr(fmt.Errorf("%w: unknown op %d", backend.ErrInvalidArgument, op))
}

// Groups are the cluster's prefetch groups (put with prefetch_group spreads
// an object to every node of a group). The cluster code provides them.
type Groups interface {
	// Register makes this node a member of group.
	Register(ctx context.Context, group string) error
	// Spread starts copying the object to every node of group.
	Spread(ctx context.Context, group string, id backend.ID) error
}

// SetGroups gives the server its cluster's prefetch groups, for the local
// socket's register_group and put(prefetch_group=). Call it before serving.
func (s *Server) SetGroups(g Groups) { s.groups = g }

// newID generates an object ID as HTTP puts do.
func (s *Server) newID() backend.ID {
	if s.owner != "" {
		id, _ := backend.NewOwnedID(s.owner) // owner validated in New
		return id
	}
	return backend.NewID()
}

// get answers the object's place in the mapping, holding it (neither freed
// nor moved) until the client releases it. An object in a lower tier is
// promoted first; one that cannot be brought into memory is an error.
func (c *localConn) get(id backend.ID) bool {
	if len(c.refs) >= MaxLocalRefs {
		return c.replyErr(backend.Errorf("get", "local", id, backend.ErrInvalidArgument,
			"the connection holds %d references, the most allowed: release some", len(c.refs)))
	}
	const attempts = 3
	for attempt := 1; ; attempt++ {
		e, err := c.takeRef(id)
		if err != nil {
			return c.replyErr(err)
		}
		if e != nil {
			return c.send(c.frame(e), nil)
		}
		if attempt == attempts {
			tier := ""
			if info, err := c.s.b.ObjectInfo(c.opContext(), id); err == nil {
				tier = info.Tier
			}
			return c.replyErr(backend.Errorf("get", "local", id, backend.ErrFull,
				"the object stays in tier %s: the memory tier has no room for it now; read it over HTTP", tier))
		}
		err = c.s.b.Prefetch(c.opContext(), id)
		if err != nil {
			return c.replyErr(err)
		}
	}
}

// takeRef holds id where it is and takes a reference to its bytes in the
// mapping, returning the ReplyObject begun in c.enc (a caller may add
// fields). A nil encoder, with no error, holds nothing: the object is not
// in the memory tier.
func (c *localConn) takeRef(id backend.ID) (*localproto.Encoder, error) {
	var release func()
	if c.h != nil {
		var err error
		if release, err = c.h.Hold(c.opContext(), id); err != nil {
			return nil, err
		}
	}
	obj, err := c.s.b.Get(c.opContext(), id)
	if err == nil {
		if off, ok := c.a.ArenaOffset(obj.Bytes()); ok {
			c.next++
			c.refs[c.next] = localRef{obj: obj, release: release}
			c.s.met.localRefs.Inc()
			return c.enc.Begin(localproto.ReplyObject).U64(c.next).U64(uint64(off)).PutInfo(obj.Info()), nil
		}
		obj.Close()
	}
	if release != nil {
		release()
	}
	return nil, err
}

// putRef answers an OpPutRef whose put succeeded: a reference to the object
// when it is in the memory tier (as a get's, with the ID's delete epoch read
// before the reference was taken: a delete after the put shows as a change),
// else its info only.
func (c *localConn) putRef(id backend.ID, info backend.ObjectInfo) bool {
	if len(c.refs) >= MaxLocalRefs {
		return c.replyInfo(info)
	}
	epoch := c.a.Epoch(id)
	e, err := c.takeRef(id)
	if e == nil || err != nil { // not in memory, or deleted already by someone else
		return c.replyInfo(info)
	}
	return c.send(c.frame(e.U64(epoch)), nil)
}

func (r localRef) close() {
	r.obj.Close()
	if r.release != nil {
		r.release()
	}
}

// create starts a put: room for size bytes, in the mapping when the object
// lands in the memory tier.
func (c *localConn) create(id backend.ID, size uint64, imp int64) bool {
	if len(c.puts) >= MaxLocalPuts {
		return c.replyErr(backend.Errorf("create", "local", id, backend.ErrInvalidArgument,
			"the connection has %d unsealed puts, the most allowed", len(c.puts)))
	}
	if size > 1<<62 {
		return c.replyErr(backend.Errorf("create", "local", id, backend.ErrInvalidArgument, "size %d is too large", size))
	}
	if id == "" {
		id = c.s.newID()
	}
	// A put must be sealed within the I/O timeout; its writer is aborted
	// then (and when the connection ends).
	ctx, cancel := context.WithTimeout(c.ctx, c.s.ioTO)
	w, err := c.s.b.OpenWriter(ctx, id, int64(size), backend.PutOptions{Importance: int(imp)})
	if err != nil {
		cancel()
		return c.replyErr(err)
	}
	p := &localPut{id: id, w: w, size: int64(size), cancel: cancel}
	off := localproto.NoOffset
	if size == 0 {
		p.region, off = []byte{}, 0
	} else if region, ok := c.a.PendingRegion(id); ok {
		if o, ok := c.a.ArenaOffset(region); ok {
			p.region, off = region, uint64(o)
		}
	}
	c.next++
	c.puts[c.next] = p
	return c.send(c.frame(c.enc.Begin(localproto.ReplyCreated).U64(c.next).U64(off).Str(string(id))), nil)
}

func (c *localConn) write(h uint64, data []byte) bool {
	p, ok := c.puts[h]
	if !ok {
		return c.replyErr(fmt.Errorf("write: %w: no put in progress with handle %d", backend.ErrInvalidArgument, h))
	}
	if p.region != nil {
		return c.replyErr(backend.Errorf("write", "local", p.id, backend.ErrInvalidArgument,
			"the object's room is in the mapping: write it there and seal"))
	}
	if _, err := p.w.Write(data); err != nil {
		delete(c.puts, h)
		p.abort()
		return c.replyErr(err)
	}
	p.n += int64(len(data))
	p.crc = backend.UpdateChecksum(p.crc, data)
	return c.replyOK()
}

// sealQueued reports whether a seal of put h is among the next frames
// already received after the one ending at off: the client has finished
// copying and waits, so the seal may checksum what is left on several cores.
// It looks at most sealLookahead frames ahead, so that a stream of written
// frames costs linear time.
func (c *localConn) sealQueued(off int, h uint64) bool {
	for k := 0; k < sealLookahead && off+localproto.HeaderSize <= c.rn; k++ {
		hd, err := localproto.ParseHeader(c.rbuf[off:c.rn])
		end := off + localproto.HeaderSize + int(hd.Len)
		if err != nil || end > c.rn {
			return false
		}
		if hd.Op == localproto.OpSeal {
			d := localproto.NewDecoder(c.rbuf[off+localproto.HeaderSize : end])
			return d.U64() == h
		}
		off = end
	}
	return false
}

// sealLookahead: a put's backlog of 1 MiB written frames rarely exceeds a
// few dozen.
const sealLookahead = 64

// written is an OpWritten: the bytes of put h's room up to upto are in
// place. They are checksummed now, so that the seal has only the rest to do,
// unless the put's seal is queued already: then the seal checksums them with
// the rest, on several cores.
func (c *localConn) written(h, upto uint64, sealing bool) {
	p, ok := c.puts[h]
	switch {
	case !ok:
		c.log.Debug("local socket: written for an unknown put", "handle", h)
	case p.err != nil:
	case p.region == nil || upto > uint64(len(p.region)) || int64(upto) < p.n:
		p.err = backend.Errorf("written", "local", p.id, backend.ErrInvalidArgument,
			"%d bytes written is not between the %d said before and the room's %d", upto, p.n, len(p.region))
	case sealing:
	default:
		if _, err := p.w.Write(p.region[p.n:upto]); err != nil { // in place: checksummed, not copied
			p.err = err
			return
		}
		p.n = int64(upto)
	}
}

// checksumExpecter is the memory tier's writer, which verifies a checksum
// given after the bytes were written in place.
type checksumExpecter interface{ ExpectChecksum(uint32) }

// seal publishes a put, verifying its checksum first when the client gave one.
func (c *localConn) seal(h uint64, crc uint32) bool {
	p, ok := c.puts[h]
	if !ok {
		return c.replyErr(fmt.Errorf("seal: %w: no put in progress with handle %d", backend.ErrInvalidArgument, h))
	}
	delete(c.puts, h)
	defer p.cancel()
	fail := func(err error) bool {
		_ = p.w.Abort()
		return c.replyErr(err)
	}
	if p.err != nil {
		return fail(p.err)
	}
	if p.region != nil {
		if crc != 0 {
			if x := findExpecter(p.w); x != nil {
				x.ExpectChecksum(crc)
			} else if got := backend.Checksum(p.region); got != crc {
				return fail(backend.Errorf("seal", "local", p.id, backend.ErrCorrupt, "checksum %08x, expected %08x", got, crc))
			}
		}
		if int64(len(p.region)) > p.n {
			if _, err := p.w.Write(p.region[p.n:]); err != nil { // in place: checksummed, not copied
				return fail(err)
			}
		}
	} else if crc != 0 && p.n == p.size && p.crc != crc {
		return fail(backend.Errorf("seal", "local", p.id, backend.ErrCorrupt, "checksum %08x, expected %08x", p.crc, crc))
	}
	if err := p.w.Close(); err != nil {
		return c.replyErr(err)
	}
	info, err := c.s.b.ObjectInfo(c.ctx, p.id)
	if err != nil { // deleted already by someone else: say what was sealed
		info = backend.ObjectInfo{ID: p.id, Size: p.size}
	}
	return c.replyInfo(info)
}

// findExpecter unwraps a writer down to one that takes a late checksum.
func findExpecter(w backend.Writer) checksumExpecter {
	for range 8 {
		if x, ok := w.(checksumExpecter); ok {
			return x
		}
		u, ok := w.(interface{ Unwrap() backend.Writer })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// pin adds or takes away a pin. A pin that is not durable belongs to the
// connection and is taken away when it closes.
func (c *localConn) pin(add bool, id backend.ID, durable bool) error {
	ctx := c.opContext()
	if add {
		if err := c.s.b.Pin(ctx, id); err != nil {
			return err
		}
		if !durable {
			c.pins[id]++
		}
		return nil
	}
	if !durable && c.pins[id] == 0 {
		return backend.Errorf("unpin", "local", id, backend.ErrNotPinned,
			"this connection holds no pin on it (a durable pin is taken away with durable set)")
	}
	if err := c.s.b.Unpin(ctx, id); err != nil {
		return err
	}
	if !durable {
		if c.pins[id]--; c.pins[id] == 0 {
			delete(c.pins, id)
		}
	}
	return nil
}

// cleanup releases everything the connection holds.
func (c *localConn) cleanup() {
	c.nc.Close()
	c.cancel()
	for ref, r := range c.refs {
		delete(c.refs, ref)
		r.close()
		c.s.met.localRefs.Dec()
	}
	for h, p := range c.puts {
		delete(c.puts, h)
		p.abort()
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.ioTO)
	defer cancel()
	for id, n := range c.pins {
		for range n {
			if err := c.s.b.Unpin(ctx, id); err != nil && !errors.Is(err, backend.ErrNotFound) {
				c.log.Warn("local socket: unpin at disconnect", "id", id, "err", err)
			}
		}
	}
	clear(c.pins)
}
