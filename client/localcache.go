package client

import (
	"container/list"
	"fmt"
	"hash/crc32"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"distore/backend"
	"distore/wire/localproto"
)

// Cached references (docs/local.md): when the last Object of an ID is
// closed, the Local keeps the server's reference a while instead of
// releasing it, so that a get of the ID again is answered here, with no
// round trip. The server keeps the object where it is while the reference
// lives, as for an open Object. What makes it safe is the server's delete-
// epoch table, mapped read-only: the server bumps an ID's counter whenever
// the ID stops naming the object (a delete, anywhere), so a kept reference
// is used only while its counter reads what it read before the first get.
// Kept references are bounded in number, bytes and time, so a quiet client
// does not hold objects the server would spill.
const (
	cacheMaxIdle      = 256
	cacheMaxIdleBytes = 64 << 20
	cacheIdleTTL      = 500 * time.Millisecond
)

// cref is a server reference the Local holds, shared by the Objects of one
// get and the cached gets after it.
type cref struct {
	id       backend.ID
	ref      uint64
	data     []byte
	info     backend.ObjectInfo
	slot     int
	epoch    uint64 // the ID's counter before the get that made the reference
	users    int    // open Objects
	idle     *list.Element
	since    time.Time // when it became idle
	detached bool      // not in l.cache: released at its last close
}

// localCache is the Local's kept references; guarded by Local.mu.
type localCache struct {
	epochs    []byte // the server's table, read-only; nil: no caching
	slots     int
	byID      map[backend.ID]*cref
	idle      list.List // of *cref, oldest first
	idleBytes int64
	timer     *time.Timer
}

// mapEpochs asks the server for its delete-epoch table and maps it. A server
// without one (an older protocol) leaves the cache off.
func (l *Local) mapEpochs() {
	d, fd, err := l.roundTrip("epochs", "", true, l.enc.Begin(localproto.OpEpochs))
	if err != nil {
		return // not offered (every get is a round trip), or l.dead says why
	}
	defer unix.Close(fd)
	slots := int(d.U32())
	if d.Done() != nil || slots <= 0 || slots > 1<<20 || slots&(slots-1) != 0 {
		return
	}
	mem, err := unix.Mmap(fd, 0, slots*8, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return
	}
	l.cache = localCache{epochs: mem, slots: slots, byID: map[backend.ID]*cref{}}
}

// epochAt reads counter slot of the server's table.
func (c *localCache) epochAt(slot int) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&c.epochs[slot*8])))
}

func (c *localCache) slotOf(id backend.ID) int {
	return int(crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(string(id)), len(id))) & uint32(c.slots-1))
}

// cached returns a kept reference of id that still names the object, taking
// a use of it; a stale one is dropped. The caller holds l.mu.
func (l *Local) cached(id backend.ID) *cref {
	c := &l.cache
	e := c.byID[id]
	if e == nil {
		return nil
	}
	if c.epochAt(e.slot) != e.epoch {
		l.detach(e)
		return nil
	}
	if e.idle != nil {
		c.idle.Remove(e.idle)
		e.idle = nil
		c.idleBytes -= int64(len(e.data))
	}
	e.users++
	return e
}

// keep records a new reference from a get (e.epoch is id's counter read
// before the request). The caller holds l.mu.
func (l *Local) keep(e *cref) {
	c := &l.cache
	if c.epochs == nil {
		e.detached = true
		return
	}
	if old := c.byID[e.id]; old != nil {
		l.detach(old)
	}
	c.byID[e.id] = e
}

// detach takes e out of the cache: released now if no Object uses it, else
// at its last close. The caller holds l.mu.
func (l *Local) detach(e *cref) {
	c := &l.cache
	if c.byID[e.id] == e {
		delete(c.byID, e.id)
	}
	e.detached = true
	if e.idle != nil {
		c.idle.Remove(e.idle)
		e.idle = nil
		c.idleBytes -= int64(len(e.data))
		l.sendRelease(e.ref)
	}
}

// done ends one use of e; at the last, e is released or kept idle. The
// caller holds l.mu.
func (l *Local) done(e *cref) {
	if e.users--; e.users > 0 {
		return
	}
	if e.detached || l.dead != nil {
		l.sendRelease(e.ref)
		return
	}
	c := &l.cache
	e.since = time.Now()
	e.idle = c.idle.PushBack(e)
	c.idleBytes += int64(len(e.data))
	for c.idle.Len() > cacheMaxIdle || c.idleBytes > cacheMaxIdleBytes {
		l.detach(c.idle.Front().Value.(*cref))
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(cacheIdleTTL, l.expireIdle)
	}
}

// expireIdle releases the references idle for cacheIdleTTL.
func (l *Local) expireIdle() {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := &l.cache
	c.timer = nil
	for f := c.idle.Front(); f != nil; f = c.idle.Front() {
		e := f.Value.(*cref)
		if wait := cacheIdleTTL - time.Since(e.since); wait > 0 {
			c.timer = time.AfterFunc(wait, l.expireIdle)
			break
		}
		l.detach(e)
	}
	l.flushReleases()
}

// ReleaseCached releases every reference the Local keeps for objects no
// open Object uses (see docs/local.md, "Cached references"), so the server
// may move or free them at once rather than within half a second.
func (l *Local) ReleaseCached() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for f := l.cache.idle.Front(); f != nil; f = l.cache.idle.Front() {
		l.detach(f.Value.(*cref))
	}
}

// dropCached forgets the cache when the connection ends (the server releases
// everything the connection held). The caller holds l.mu.
func (l *Local) dropCached() {
	c := &l.cache
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	for _, e := range c.byID {
		e.detached = true
		e.idle = nil
	}
	c.byID = map[backend.ID]*cref{}
	c.idle.Init()
	c.idleBytes = 0
	if c.epochs != nil {
		_ = unix.Munmap(c.epochs)
		c.epochs = nil
	}
}

// maxPendingReleases bounds the releases that wait for a request to go out
// with (16 bytes each); releaseTimeout bounds a send of them alone.
const (
	maxPendingReleases = 64
	releaseTimeout     = 5 * time.Second
)

// sendRelease tells the server to release ref (no reply): with the next
// request, in the same write (a release costs no system call of its own), or
// by the idle timer if none comes. The caller holds l.mu.
func (l *Local) sendRelease(ref uint64) {
	if l.dead != nil {
		return
	}
	f, _ := l.enc.Begin(localproto.OpRelease).U64(ref).Frame()
	l.releases = append(l.releases, f...)
	switch {
	case len(l.releases) >= maxPendingReleases*len(f):
		l.flushReleases()
	case l.cache.timer == nil:
		l.cache.timer = time.AfterFunc(cacheIdleTTL, l.expireIdle)
	}
}

// flushReleases sends the releases waiting to go out, within
// releaseTimeout (not under the deadline an earlier call's context left on
// the connection). The caller holds l.mu.
func (l *Local) flushReleases() {
	if len(l.releases) == 0 || l.dead != nil {
		return
	}
	l.dl = true // the next call sets its own deadline, or none
	_ = l.conn.SetDeadline(time.Now().Add(releaseTimeout))
	_, err := l.wr.Write(l.releases)
	l.releases = l.releases[:0]
	if err != nil {
		l.broken("release", err)
	}
}

// putRef puts a small object and keeps the reference the server took to it
// (OpPutRef), so that a get of it here needs no round trip. The caller
// holds l.mu.
func (l *Local) putRef(opts PutOptions, crc uint32, data []byte) (backend.ObjectInfo, error) {
	d, _, err := l.roundTrip("put", opts.ID, false, l.enc.Begin(localproto.OpPutRef).Str(string(opts.ID)).
		I64(int64(opts.Importance)).U32(crc).Bytes(data))
	if err != nil || l.kind == localproto.ReplyInfo {
		return l.info("put", d, err)
	}
	if l.kind != localproto.ReplyObject {
		return backend.ObjectInfo{}, l.broken("put", fmt.Errorf("%w: reply kind %d to a put", localproto.ErrProtocol, l.kind))
	}
	ref, off := d.U64(), d.U64()
	info := d.Info()
	epoch := d.U64()
	if err := d.Done(); err != nil {
		return backend.ObjectInfo{}, l.broken("put", err)
	}
	m := l.ro
	if info.Size < 0 || off > uint64(len(m.mem)) || uint64(info.Size) > uint64(len(m.mem))-off {
		return backend.ObjectInfo{}, l.broken("put", fmt.Errorf("%w: object at %d+%d outside the %d-byte arena", localproto.ErrProtocol, off, info.Size, len(m.mem)))
	}
	e := &cref{id: info.ID, ref: ref, info: info, data: m.mem[off : off+uint64(info.Size) : off+uint64(info.Size)],
		slot: l.cache.slotOf(info.ID), epoch: epoch, users: 1}
	l.keep(e)
	l.done(e) // kept, idle: the caller holds no Object
	return info, nil
}
