//go:build ceph

package ceph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ceph/go-ceph/rados"

	"distore/backend"
	"distore/levels"
	"distore/remote/internal/remoteobj"
)

// Name is the name the tier registers under and uses in its errors.
const Name = "ceph"

func init() { backend.MustRegister(Name, New) }

// metaXattr is the xattr of an object's (or manifest's) metadata.
const metaXattr = "distore"

// stripePrefix starts the names of stripe objects; no ID starts with '.'.
const stripePrefix = ".d."

var knownKeys = []string{"conf", "user", "pool", "namespace", "stripe_size", "chunk_size",
	"concurrency", "capacity", "timeout", "op_timeout"}

// Options are the tier's parsed configuration.
type Options struct {
	Conf, User, Pool, Namespace string
	StripeSize, ChunkSize       int64
	Concurrency                 int
	Capacity                    int64 // 0: unbounded
	Timeout, OpTimeout          time.Duration
}

// ParseConfig validates cfg and returns the tier's options; the error
// lists every bad option at once.
func ParseConfig(cfg backend.Config) (Options, error) {
	r := cfg.Reader(Name, knownKeys...)
	o := Options{Conf: r.String("conf", ""), User: r.String("user", "admin"),
		Pool: r.String("pool", ""), Namespace: r.String("namespace", ""),
		StripeSize: r.Bytes("stripe_size", 64<<20), ChunkSize: r.Bytes("chunk_size", 8<<20),
		Concurrency: r.Int("concurrency", 4), Capacity: r.Bytes("capacity", 0),
		Timeout: r.Duration("timeout", 10*time.Second), OpTimeout: r.Duration("op_timeout", 60*time.Second)}
	r.Require(o.Conf != "", "option conf (the path of ceph.conf) is required")
	r.Require(o.Pool != "", "option pool is required")
	r.Require(o.StripeSize >= 1<<20 && o.StripeSize <= 90<<20,
		"stripe_size %d must be between 1MiB and 90MiB (osd_max_write_size)", o.StripeSize)
	r.Require(o.ChunkSize >= 64<<10 && o.ChunkSize <= o.StripeSize && o.StripeSize%o.ChunkSize == 0,
		"chunk_size %d must be at least 64KiB and divide stripe_size %d", o.ChunkSize, o.StripeSize)
	r.Require(o.Concurrency >= 1 && o.Concurrency <= 256, "concurrency %d must be between 1 and 256", o.Concurrency)
	r.Require(o.Timeout >= time.Second && o.OpTimeout >= time.Second, "timeout and op_timeout must be at least 1s")
	return o, r.Err()
}

// Tier is the Ceph RADOS Remote tier. Make it with New (or backend.New("ceph", cfg)).
type Tier struct {
	opts  Options
	conn  *rados.Conn
	ioctx *rados.IOContext

	closed atomic.Bool
	// ops counts operations in flight, so Teardown can wait for them before
	// it destroys the I/O context under them.
	ops sync.WaitGroup

	space remoteobj.Space

	// idLocks serialise commit and delete of one ID in this process.
	idLocks backend.IDLocks

	// Pins are counted by the wrapper (backend.Wrap).
	backend.PinsInWrapper
}

// meta is an object's metadata, kept as JSON in the xattr "distore".
type meta struct {
	Size       int64  `json:"size"`
	Importance int    `json:"importance"`
	Created    string `json:"created"`
	CRC        uint32 `json:"crc32c"`
	// Stripes is 0 for an object whose bytes are in the object itself, else
	// the number of stripe objects of StripeSize bytes (the last may be short).
	Stripes    int64  `json:"stripes"`
	StripeSize int64  `json:"stripe_size,omitempty"`
	Token      string `json:"token"`
}

// New makes a Ceph tier from cfg without connecting.
func New(cfg backend.Config) (backend.Backend, error) {
	o, err := ParseConfig(cfg)
	if err != nil {
		return nil, err
	}
	// Wrapped: the ID, context and lifecycle checks, and the pins, are
	// backend.Wrap's.
	return backend.Wrap(Name, &Tier{opts: o, space: remoteobj.Space{Tier: Name, Capacity: o.Capacity}}), nil
}

// Options returns the tier's configuration.
func (t *Tier) Options() Options { return t.opts }

// IOContext returns the tier's RADOS I/O context (nil before Setup), for
// tools and tests.
func (t *Tier) IOContext() *rados.IOContext { return t.ioctx }

func (t *Tier) where() string {
	return fmt.Sprintf("conf %s user client.%s pool %q", t.opts.Conf, t.opts.User, t.opts.Pool)
}

// Setup connects to the cluster, opens the pool and counts the namespace's
// objects. Every failure wraps ErrUnavailable and names the conf, the pool
// and the cause; connecting is bounded by the timeout option.
func (t *Tier) Setup(ctx context.Context) error {
	if t.closed.Load() {
		return backend.Errorf("setup", Name, "", backend.ErrClosed, "")
	}
	fail := func(err error, what string) error {
		if t.conn != nil {
			t.conn.Shutdown()
			t.conn = nil
		}
		return backend.Errorf("setup", Name, "", fmt.Errorf("%w: %w", backend.ErrUnavailable, err),
			"%s: %s", t.where(), what)
	}
	if err := ctx.Err(); err != nil {
		return backend.Errorf("setup", Name, "", err, "")
	}
	conn, err := rados.NewConnWithUser(t.opts.User)
	if err != nil {
		return fail(err, "cannot make a RADOS connection")
	}
	t.conn = conn
	if err := conn.ReadConfigFile(t.opts.Conf); err != nil {
		return fail(err, "cannot read the configuration file")
	}
	secs := func(d time.Duration) string { return strconv.Itoa(max(1, int(d.Seconds()))) }
	for k, v := range map[string]string{
		"client_mount_timeout": secs(t.opts.Timeout),
		"rados_mon_op_timeout": secs(t.opts.Timeout),
		"rados_osd_op_timeout": secs(t.opts.OpTimeout),
	} {
		if err := conn.SetConfigOption(k, v); err != nil {
			return fail(err, "cannot set "+k)
		}
	}
	if err := conn.Connect(); err != nil {
		return fail(err, "cannot connect to the monitors (wrong mon host or keyring, or the cluster is down)")
	}
	ioctx, err := conn.OpenIOContext(t.opts.Pool)
	if err != nil {
		if errors.Is(err, rados.ErrNotFound) {
			return fail(err, "the pool does not exist")
		}
		return fail(err, "cannot open the pool")
	}
	ioctx.SetNamespace(t.opts.Namespace)
	t.ioctx = ioctx
	// Check access to the pool now rather than at the first write.
	if _, err := ioctx.Stat(".distore-probe"); err != nil && !errors.Is(err, rados.ErrNotFound) {
		ioctx.Destroy()
		t.ioctx = nil
		return fail(err, "cannot read the pool (missing osd caps?)")
	}
	if err := t.count(ctx); err != nil {
		ioctx.Destroy()
		t.ioctx = nil
		return fail(err, "cannot count the objects in the pool")
	}
	return nil
}

// ids lists the IDs in the namespace (unsorted).
func (t *Tier) ids() ([]backend.ID, error) {
	var ids []backend.ID
	err := t.ioctx.ListObjects(func(oid string) {
		if backend.ID(oid).Validate() == nil {
			ids = append(ids, backend.ID(oid))
		}
	})
	return ids, err
}

// count sets the usage counters from the namespace's objects.
func (t *Tier) count(ctx context.Context) error {
	ids, err := t.ids()
	if err != nil {
		return err
	}
	infos, err := t.infos(ctx, "setup", ids)
	if err != nil {
		return err
	}
	var used int64
	for _, i := range infos {
		used += i.Size
	}
	t.space.Used.Store(used)
	t.space.Objects.Store(int64(len(infos)))
	return nil
}

// Teardown waits for the operations in flight and disconnects. Objects
// already returned by Get stay valid (they are in Go memory).
func (t *Tier) Teardown(ctx context.Context) error {
	if t.closed.Swap(true) {
		return backend.Errorf("teardown", Name, "", backend.ErrClosed, "")
	}
	t.ops.Wait()
	if t.ioctx != nil {
		t.ioctx.Destroy()
	}
	if t.conn != nil {
		t.conn.Shutdown()
	}
	return nil
}

// Level is Remote.
func (t *Tier) Level() levels.Level { return levels.Remote }

// enter counts an operation in flight, so that Teardown waits for it before
// it destroys the I/O context under it; ErrClosed once Teardown started.
// The caller defers t.ops.Done() when it returns nil. (The ID, context and
// lifecycle checks of the call are backend.Wrap's.)
func (t *Tier) enter(op string, id backend.ID) error {
	t.ops.Add(1)
	if t.closed.Load() {
		t.ops.Done()
		return backend.Errorf(op, Name, id, backend.ErrClosed, "torn down")
	}
	return nil
}

// wrap turns a rados error into the tier's: ENOENT is ErrNotFound, EEXIST
// ErrExists, everything else ErrUnavailable naming the pool.
func (t *Tier) wrap(op string, id backend.ID, err error) error {
	var be *backend.Error
	switch {
	case errors.As(err, &be):
		return err
	case errors.Is(err, rados.ErrNotFound):
		return backend.Errorf(op, Name, id, backend.ErrNotFound, "")
	case errors.Is(err, rados.ErrObjectExists):
		return backend.Errorf(op, Name, id, backend.ErrExists, "")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return backend.Errorf(op, Name, id, err, "")
	}
	return backend.Errorf(op, Name, id, fmt.Errorf("%w: %w", backend.ErrUnavailable, err), "%s", t.where())
}

// stripeName is the RADOS name of stripe n of the write token made.
func stripeName(id backend.ID, token string, n int64) string {
	return stripePrefix + string(id) + "." + token + "." + strconv.FormatInt(n, 10)
}

// readMeta reads an object's metadata xattr.
func (t *Tier) readMeta(op string, id backend.ID) (meta, error) {
	buf := make([]byte, 512)
	n, err := t.ioctx.GetXattr(string(id), metaXattr, buf)
	if err != nil {
		if errors.Is(err, rados.ErrNotFound) {
			return meta{}, backend.Errorf(op, Name, id, backend.ErrNotFound, "")
		}
		// ENODATA: a RADOS object without distore's xattr is not one of ours.
		if strings.Contains(err.Error(), "ret=-61") {
			return meta{}, backend.Errorf(op, Name, id, backend.ErrNotFound, "RADOS object without distore metadata")
		}
		return meta{}, t.wrap(op, id, err)
	}
	var m meta
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return meta{}, backend.Errorf(op, Name, id, backend.ErrCorrupt, "metadata xattr: %v", err)
	}
	return m, nil
}

func (t *Tier) info(id backend.ID, m meta) backend.ObjectInfo {
	created, _ := time.Parse(time.RFC3339Nano, m.Created)
	return backend.ObjectInfo{ID: id, Size: m.Size, Level: levels.Remote, Tier: Name, Importance: m.Importance,
		Created: created, Accessed: created, Checksum: m.CRC}
}

// infos reads the metadata of ids concurrently, leaving out those deleted meanwhile.
func (t *Tier) infos(ctx context.Context, op string, ids []backend.ID) ([]backend.ObjectInfo, error) {
	out := make([]backend.ObjectInfo, len(ids))
	found := make([]bool, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, 2*t.opts.Concurrency)
	var wg sync.WaitGroup
	for i, id := range ids {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			m, err := t.readMeta(op, id)
			switch {
			case err == nil:
				out[i], found[i] = t.info(id, m), true
			case !errors.Is(err, backend.ErrNotFound):
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, backend.Errorf(op, Name, "", err, "")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	res := out[:0]
	for i := range out {
		if found[i] {
			res = append(res, out[i])
		}
	}
	return res, nil
}

// removeStripes deletes stripes [0, n) of a write; a stripe already gone is
// fine. What cannot be removed is logged: it is invisible (its name is not an
// ID) and only takes space.
func (t *Tier) removeStripes(id backend.ID, token string, n int64) {
	for i := range n {
		name := stripeName(id, token, i)
		if err := t.ioctx.Delete(name); err != nil && !errors.Is(err, rados.ErrNotFound) {
			slog.Warn("ceph: cannot remove a stripe", "tier", Name, "id", id, "object", name, "err", err)
		}
	}
}

// Put stores data: up to stripe_size in one RADOS write op that creates the
// object exclusively with its bytes and metadata; larger objects as stripes
// written concurrently, then the manifest.
func (t *Tier) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	const op = "put"
	if err := t.enter(op, id); err != nil {
		return backend.ObjectInfo{}, err
	}
	defer t.ops.Done()
	size := int64(len(data))
	crc, created, release, err := t.space.StartPut(op, id, data, opts)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	defer release()
	m := meta{Size: size, Importance: opts.Importance, Created: created.UTC().Format(time.RFC3339Nano),
		CRC: crc, Token: string(backend.NewID()[:10])}
	if size > t.opts.StripeSize {
		m.Stripes = (size + t.opts.StripeSize - 1) / t.opts.StripeSize
		m.StripeSize = t.opts.StripeSize
		if err := t.exists(op, id); err != nil {
			return backend.ObjectInfo{}, err
		}
		if err := t.putStripes(ctx, op, id, m, data); err != nil {
			t.removeStripes(id, m.Token, m.Stripes)
			return backend.ObjectInfo{}, err
		}
	}
	if err := t.publish(ctx, op, id, m, data); err != nil {
		if m.Stripes > 0 {
			t.removeStripes(id, m.Token, m.Stripes)
		}
		return backend.ObjectInfo{}, err
	}
	return backend.ObjectInfo{ID: id, Size: size, Level: levels.Remote, Tier: Name, Importance: opts.Importance,
		Created: created, Accessed: created, Checksum: crc}, nil
}

// exists fails with ErrExists if id is taken (an early check: publish is
// the one that counts).
func (t *Tier) exists(op string, id backend.ID) error {
	_, err := t.ioctx.Stat(string(id))
	switch {
	case err == nil:
		return backend.Errorf(op, Name, id, backend.ErrExists, "")
	case errors.Is(err, rados.ErrNotFound):
		return nil
	}
	return t.wrap(op, id, err)
}

// putStripes writes data's stripes, concurrency at a time.
func (t *Tier) putStripes(ctx context.Context, op string, id backend.ID, m meta, data []byte) error {
	sem := make(chan struct{}, t.opts.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := range m.Stripes {
		if err := ctx.Err(); err != nil {
			mu.Lock()
			first = cmp(first, backend.Errorf(op, Name, id, err, ""))
			mu.Unlock()
			break
		}
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			part := data[i*m.StripeSize : min(m.Size, (i+1)*m.StripeSize)]
			if err := t.ioctx.WriteFull(stripeName(id, m.Token, i), part); err != nil {
				mu.Lock()
				first = cmp(first, t.wrap(op, id, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// publish creates the object (or manifest) exclusively with its metadata
// and, for an unstriped object, its bytes, in one atomic RADOS write op.
func (t *Tier) publish(ctx context.Context, op string, id backend.ID, m meta, data []byte) error {
	if err := ctx.Err(); err != nil {
		return backend.Errorf(op, Name, id, err, "")
	}
	js, err := json.Marshal(m)
	if err != nil {
		return backend.Errorf(op, Name, id, backend.ErrInvalidArgument, "metadata: %v", err)
	}
	unlock := t.idLocks.Lock(id)
	defer unlock()
	w := rados.CreateWriteOp()
	defer w.Release()
	w.Create(rados.CreateExclusive)
	if m.Stripes == 0 && len(data) > 0 {
		w.WriteFull(data)
	}
	w.SetXattr(metaXattr, js)
	if err := w.Operate(t.ioctx, string(id), rados.OperationNoFlag); err != nil {
		return t.wrap(op, id, err)
	}
	t.space.Added(m.Size)
	return nil
}

// specRead is how much Get reads of an object's own RADOS object in the op
// that reads its metadata: objects up to this size take one round trip.
const specRead = 1 << 20

// specPool holds specRead buffers that Get copied small objects out of.
var specPool = sync.Pool{New: func() any { return new([specRead]byte) }}

// Get reads the whole object, chunk_size pieces concurrency at a time, and
// checks its CRC-32C as the pieces arrive. The metadata and the first
// specRead bytes come in one RADOS read op.
func (t *Tier) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	const op = "get"
	if err := t.enter(op, id); err != nil {
		return nil, err
	}
	defer t.ops.Done()
	for attempt := 0; ; attempt++ {
		specBuf := specPool.Get().(*[specRead]byte)
		spec := specBuf[:]
		sn, m, err := t.readHead(op, id, spec)
		if err != nil {
			return nil, err
		}
		pooled := true
		var buf []byte
		var crc uint32
		switch {
		case m.Stripes == 0 && m.Size <= int64(sn):
			buf = spec[:m.Size]
			if m.Size < specRead/2 { // do not hold a mostly empty buffer
				buf = make([]byte, m.Size)
				_, crc = backend.CopyChecksum(buf, spec[:m.Size])
			} else {
				pooled = false // the object keeps it
				crc = backend.Checksum(buf)
			}
		default:
			buf = make([]byte, m.Size)
			off := int64(0)
			if m.Stripes == 0 {
				off = int64(copy(buf, spec[:sn]))
				crc = backend.Checksum(buf[:off])
			}
			if crc, err = t.readInto(ctx, op, id, m, off, buf[off:], true, crc); err != nil {
				return nil, err
			}
		}
		if pooled {
			specPool.Put(specBuf)
		}
		if crc != m.CRC {
			// The ID may have been deleted and written again between reading
			// the metadata and the bytes: look once more before calling it corrupt.
			if m2, err := t.readMeta(op, id); err == nil && m2.Token != m.Token && attempt == 0 {
				continue
			}
			return nil, backend.Errorf(op, Name, id, backend.ErrCorrupt,
				"bytes read have CRC-32C %08x, metadata says %08x", crc, m.CRC)
		}
		return backend.NewBytesObject(t.info(id, m), buf, nil), nil
	}
}

var errSkipped = errors.New("skipped")

// piece is one read of a chunk from one RADOS object.
type piece struct {
	oid string
	off int64 // in the RADOS object
	dst []byte
}

// pieces splits the object range [off, off+len(dst)) into chunk reads.
func (t *Tier) pieces(id backend.ID, m meta, off int64, dst []byte) []piece {
	var ps []piece
	for pos := int64(0); pos < int64(len(dst)); {
		abs := off + pos
		oid, inObj, objEnd := string(id), abs, m.Size
		if m.Stripes > 0 {
			s := abs / m.StripeSize
			oid, inObj, objEnd = stripeName(id, m.Token, s), abs-s*m.StripeSize, min(m.Size-s*m.StripeSize, m.StripeSize)
		}
		n := min(t.opts.ChunkSize-inObj%t.opts.ChunkSize, objEnd-inObj, int64(len(dst))-pos)
		ps = append(ps, piece{oid: oid, off: inObj, dst: dst[pos : pos+n]})
		pos += n
	}
	return ps
}

// readInto reads the object range starting at off into dst with up to
// concurrency reads in flight; with sum it returns the CRC-32C seed extended
// by dst, computed in order while later pieces are still being read.
func (t *Tier) readInto(ctx context.Context, op string, id backend.ID, m meta, off int64, dst []byte, sum bool, seed uint32) (uint32, error) {
	ps := t.pieces(id, m, off, dst)
	done := make([]chan error, len(ps))
	for i := range done {
		done[i] = make(chan error, 1)
	}
	var failed atomic.Bool
	go func() {
		sem := make(chan struct{}, t.opts.Concurrency)
		for i, p := range ps {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				if failed.Load() {
					done[i] <- errSkipped
					return
				}
				if err := ctx.Err(); err != nil {
					done[i] <- err
					return
				}
				n, err := t.ioctx.Read(p.oid, p.dst, uint64(p.off))
				if err == nil && n != len(p.dst) {
					err = fmt.Errorf("%w: RADOS object %s has %d bytes at %d, want %d",
						backend.ErrCorrupt, p.oid, n, p.off, len(p.dst))
				}
				done[i] <- err
			}()
		}
	}()
	crc := seed
	for i, p := range ps {
		if err := <-done[i]; err != nil {
			// Wait for the reads in flight (they write into dst); the rest are skipped.
			failed.Store(true)
			for _, d := range done[i+1:] {
				<-d
			}
			if errors.Is(err, rados.ErrNotFound) && p.oid != string(id) {
				// A stripe is gone: the object was deleted while we read it.
				return 0, backend.Errorf(op, Name, id, backend.ErrNotFound, "deleted while being read")
			}
			return 0, t.wrap(op, id, err)
		}
		if sum {
			crc = backend.UpdateChecksum(crc, p.dst)
		}
	}
	return crc, nil
}
