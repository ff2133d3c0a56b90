// Package alloc is an offset allocator: it sub-allocates one region
// [0, capacity) of some memory it never touches (a shared-memory mapping, a GPU
// buffer) and hands out offsets into it.
//
// It is a two-level segregated-fit allocator (TLSF): free blocks sit in size
// classes (32 per power of two) indexed by two bitmaps, so Alloc and Free cost
// O(1) — a few bit scans, and one map operation to find a block by its offset
// (none with AllocBlock and FreeBlock) — whatever the number of blocks. Free coalesces a block with its free neighbours at once, so the free
// space is always made of maximal holes. A request is served from the smallest
// size class that guarantees a fit ("good fit"; the rest of the hole stays free);
// only if no such class has a block is the request's own class scanned for a
// block that fits, so Alloc fails only when no single hole is large enough.
//
// The arena's own bookkeeping is on the Go heap: about 60 bytes per block.
//
// An Arena is not safe for concurrent use: callers hold their own lock.
package alloc

import (
	"fmt"
	"math/bits"
)

const (
	slBits  = 5           // second-level bits: 32 size classes per power of two
	slCount = 1 << slBits // size classes per first level
	flCount = 64 - slBits + 1
	none    = int32(-1)
)

// block is one block of the region, used or free. Blocks that are neighbours
// in the region are linked (prevNb/nextNb) so Free coalesces without a search;
// free blocks are also linked in their size class's list (prevFree/nextFree).
type block struct {
	off, size          int64 // in bytes; both multiples of the arena's alignment
	prevNb, nextNb     int32
	prevFree, nextFree int32
	gen                uint32 // bumped when the entry is allocated, to spot stale Blocks
	free               bool
}

// Block is an allocation made by AllocBlock or AllocBlockAt, to be given back
// with FreeBlock. It saves Free's offset lookup (a map operation) for callers
// that keep it anyway.
type Block struct {
	off, size int64
	idx       int32
	gen       uint32
}

// Off returns the block's offset.
func (b Block) Off() int64 { return b.off }

// Size returns the block's size: the size asked, rounded up to the alignment.
func (b Block) Size() int64 { return b.size }

// Arena sub-allocates [0, capacity). The zero value is not usable; call New.
// An Arena is not safe for concurrent use: the caller serializes calls (the
// memory tier holds its store lock around them).
type Arena struct {
	capacity, align int64
	shift           uint // log2(align)
	used            int64

	blocks []block
	spare  []int32         // indices of unused entries in blocks
	byOff  map[int64]int32 // blocks from Alloc by offset, for Free(off, size)
	live   int             // live allocations
	tail   int32           // the block that ends at capacity
	flMap  uint64
	slMap  [flCount]uint32
	heads  [flCount * slCount]int32
}

// New returns an Arena over [0, capacity). Every offset and size it hands out
// is a multiple of align, which must be a power of two (0 or 1 mean 1);
// capacity is rounded down to a multiple of align. It panics if align is not a
// power of two or capacity is negative, which are programming errors.
func New(capacity, align int64) *Arena {
	if align == 0 {
		align = 1
	}
	if align < 0 || align&(align-1) != 0 {
		panic(fmt.Sprintf("alloc: align %d is not a power of two", align))
	}
	if capacity < 0 {
		panic(fmt.Sprintf("alloc: negative capacity %d", capacity))
	}
	a := &Arena{
		capacity: capacity &^ (align - 1),
		align:    align,
		shift:    uint(bits.TrailingZeros64(uint64(align))),
		byOff:    map[int64]int32{},
		tail:     none,
	}
	for i := range a.heads {
		a.heads[i] = none
	}
	if a.capacity > 0 {
		i := a.newBlock(0, a.capacity)
		a.tail = i
		a.insertFree(i)
	}
	return a
}

// Capacity returns the size of the region in bytes (rounded down to the alignment).
func (a *Arena) Capacity() int64 { return a.capacity }

// Align returns the alignment of every offset and size.
func (a *Arena) Align() int64 { return a.align }

// Used returns the bytes allocated, counting each allocation rounded up to the alignment.
func (a *Arena) Used() int64 { return a.used }

// FreeBytes returns the bytes not allocated, in however many holes.
func (a *Arena) FreeBytes() int64 { return a.capacity - a.used }

// Allocations returns the number of live allocations.
func (a *Arena) Allocations() int { return a.live }

// RoundUp returns the bytes an allocation of size takes: size rounded up to the
// alignment, and at least one alignment unit.
func (a *Arena) RoundUp(size int64) int64 {
	if size <= 0 {
		return a.align
	}
	return (size + a.align - 1) &^ (a.align - 1)
}

// LargestFree returns the size of the largest hole: the largest size Alloc can
// serve now.
func (a *Arena) LargestFree() int64 {
	if a.flMap == 0 {
		return 0
	}
	fl := 63 - bits.LeadingZeros64(a.flMap)
	sl := 31 - bits.LeadingZeros32(a.slMap[fl])
	var best int64
	for i := a.heads[fl*slCount+sl]; i != none; i = a.blocks[i].nextFree {
		best = max(best, a.blocks[i].size)
	}
	return best
}

// Alloc allocates size bytes (rounded up to the alignment; 0 takes one unit)
// and returns the offset. ok is false when no single hole can hold it — see
// FreeBytes and LargestFree to tell "full" from "fragmented".
func (a *Arena) Alloc(size int64) (off int64, ok bool) {
	b, ok := a.AllocBlock(size)
	if ok {
		a.byOff[b.off] = b.idx
	}
	return b.off, ok
}

// AllocBlock is Alloc returning a Block, which must be freed with FreeBlock
// (not Free).
func (a *Arena) AllocBlock(size int64) (Block, bool) {
	if size < 0 || size > a.capacity {
		return Block{}, false
	}
	size = a.RoundUp(size)
	if size > a.capacity {
		return Block{}, false
	}
	i := a.find(size)
	if i == none {
		return Block{}, false
	}
	a.removeFree(i)
	b := &a.blocks[i]
	if rest := b.size - size; rest > 0 {
		// Split: the allocation takes the front, the rest stays free.
		r := a.newBlock(b.off+size, rest)
		b = &a.blocks[i] // newBlock may have grown the slice
		b.size = size
		rb := &a.blocks[r]
		rb.prevNb, rb.nextNb = i, b.nextNb
		if b.nextNb != none {
			a.blocks[b.nextNb].prevNb = r
		} else {
			a.tail = r
		}
		b.nextNb = r
		a.insertFree(r)
	}
	return a.take(i), true
}

// take marks block i allocated and returns its handle.
func (a *Arena) take(i int32) Block {
	b := &a.blocks[i]
	b.free = false
	b.gen++
	a.used += b.size
	a.live++
	return Block{off: b.off, size: b.size, idx: i, gen: b.gen}
}

// AllocAt allocates exactly [off, off+size) (size rounded up to the alignment)
// if that range is free, for rebuilding an arena from a persisted table. It
// reports false if off is misaligned or any part of the range is taken. It is
// O(1) when calls come in increasing offset order, O(blocks) otherwise.
func (a *Arena) AllocAt(off, size int64) bool {
	b, ok := a.AllocBlockAt(off, size)
	if ok {
		a.byOff[off] = b.idx
	}
	return ok
}

// AllocBlockAt is AllocAt returning a Block, which must be freed with FreeBlock.
func (a *Arena) AllocBlockAt(off, size int64) (Block, bool) {
	if size < 0 || off < 0 || off&(a.align-1) != 0 || off >= a.capacity {
		return Block{}, false
	}
	size = a.RoundUp(size)
	if size > a.capacity-off {
		return Block{}, false
	}
	// Walk back from the last block to the one holding off.
	i := a.tail
	for i != none && a.blocks[i].off > off {
		i = a.blocks[i].prevNb
	}
	if i == none {
		return Block{}, false
	}
	b := a.blocks[i]
	if !b.free || off+size > b.off+b.size {
		return Block{}, false
	}
	a.removeFree(i)
	if lead := off - b.off; lead > 0 {
		// Split off the free front as its own block.
		l := a.newBlock(b.off, lead)
		lb, bb := &a.blocks[l], &a.blocks[i]
		lb.prevNb, lb.nextNb = bb.prevNb, i
		if bb.prevNb != none {
			a.blocks[bb.prevNb].nextNb = l
		}
		bb.prevNb, bb.off, bb.size = l, off, bb.size-lead
		a.insertFree(l)
	}
	bb := &a.blocks[i]
	if rest := bb.size - size; rest > 0 {
		r := a.newBlock(off+size, rest)
		bb = &a.blocks[i]
		rb := &a.blocks[r]
		rb.prevNb, rb.nextNb = i, bb.nextNb
		if bb.nextNb != none {
			a.blocks[bb.nextNb].prevNb = r
		} else {
			a.tail = r
		}
		bb.nextNb, bb.size = r, size
		a.insertFree(r)
	}
	return a.take(i), true
}

// Free returns the allocation at off, of size bytes as passed to Alloc, and
// merges it with free neighbours. Freeing an offset that is not allocated
// (a double free) or with a different size is a programming error: it panics.
func (a *Arena) Free(off, size int64) {
	i, ok := a.byOff[off]
	if !ok {
		panic(fmt.Sprintf("alloc: Free(%d, %d): no allocation at offset %d (double free?)", off, size, off))
	}
	b := &a.blocks[i]
	if rs := a.RoundUp(size); rs != b.size {
		panic(fmt.Sprintf("alloc: Free(%d, %d): allocation at offset %d has size %d, not %d", off, size, off, b.size, rs))
	}
	delete(a.byOff, off)
	a.release(i)
}

// FreeBlock gives back a Block from AllocBlock or AllocBlockAt, and merges it
// with free neighbours. Freeing a Block twice, or one from another arena, is
// a programming error: it panics.
func (a *Arena) FreeBlock(blk Block) {
	if blk.idx < 0 || int(blk.idx) >= len(a.blocks) {
		panic(fmt.Sprintf("alloc: FreeBlock(%d, %d): not a block of this arena", blk.off, blk.size))
	}
	b := &a.blocks[blk.idx]
	if b.free || b.gen != blk.gen || b.off != blk.off || b.size != blk.size {
		panic(fmt.Sprintf("alloc: FreeBlock(%d, %d): block already freed (double free?)", blk.off, blk.size))
	}
	if i, ok := a.byOff[blk.off]; ok && i == blk.idx {
		panic(fmt.Sprintf("alloc: FreeBlock(%d, %d): block was allocated by Alloc; free it with Free", blk.off, blk.size))
	}
	a.release(blk.idx)
}

// release frees allocated block i and coalesces it.
func (a *Arena) release(i int32) {
	b := &a.blocks[i]
	a.used -= b.size
	a.live--
	b.free = true
	// Merge with the right neighbour, then the left one.
	if n := b.nextNb; n != none && a.blocks[n].free {
		a.removeFree(n)
		nb := a.blocks[n]
		b.size += nb.size
		b.nextNb = nb.nextNb
		if nb.nextNb != none {
			a.blocks[nb.nextNb].prevNb = i
		} else {
			a.tail = i
		}
		a.spare = append(a.spare, n)
	}
	if p := b.prevNb; p != none && a.blocks[p].free {
		a.removeFree(p)
		pb := &a.blocks[p]
		pb.size += b.size
		pb.nextNb = b.nextNb
		if b.nextNb != none {
			a.blocks[b.nextNb].prevNb = p
		} else {
			a.tail = p
		}
		a.spare = append(a.spare, i)
		i = p
	}
	a.insertFree(i)
}

// newBlock returns the index of a fresh free block [off, off+size), unlinked.
func (a *Arena) newBlock(off, size int64) int32 {
	var i int32
	if n := len(a.spare); n > 0 {
		i = a.spare[n-1]
		a.spare = a.spare[:n-1]
	} else {
		i = int32(len(a.blocks))
		a.blocks = append(a.blocks, block{})
	}
	// Keep the generation, so a stale Block of an earlier use still fails.
	a.blocks[i] = block{off: off, size: size, prevNb: none, nextNb: none, prevFree: none, nextFree: none,
		gen: a.blocks[i].gen, free: true}
	return i
}

// mapping returns the size class of a block of size bytes.
func (a *Arena) mapping(size int64) (fl, sl int) {
	u := uint64(size) >> a.shift
	if u < slCount {
		return 0, int(u)
	}
	l := bits.Len64(u) - 1
	return l - slBits + 1, int(u>>(l-slBits)) - slCount
}

// find returns a free block of at least size bytes, or none.
func (a *Arena) find(size int64) int32 {
	// Round the request up to the next class boundary: every block in that
	// class or above fits.
	u := uint64(size) >> a.shift
	up := u
	if u >= slCount {
		up += 1<<(bits.Len64(u)-1-slBits) - 1
	}
	fl, sl := a.mapping(int64(up << a.shift))
	if i := a.search(fl, sl); i != none {
		return i
	}
	// The request's own class may hold a block that fits.
	fl, sl = a.mapping(size)
	for i := a.heads[fl*slCount+sl]; i != none; i = a.blocks[i].nextFree {
		if a.blocks[i].size >= size {
			return i
		}
	}
	return none
}

// search returns the head of the first non-empty class at or above (fl, sl).
func (a *Arena) search(fl, sl int) int32 {
	if fl >= flCount {
		return none
	}
	m := a.slMap[fl] & (^uint32(0) << sl)
	if m == 0 {
		f := a.flMap & (^uint64(0) << (fl + 1))
		if fl+1 >= 64 || f == 0 {
			return none
		}
		fl = bits.TrailingZeros64(f)
		m = a.slMap[fl]
	}
	return a.heads[fl*slCount+bits.TrailingZeros32(m)]
}

func (a *Arena) insertFree(i int32) {
	b := &a.blocks[i]
	fl, sl := a.mapping(b.size)
	h := fl*slCount + sl
	b.free, b.prevFree, b.nextFree = true, none, a.heads[h]
	if b.nextFree != none {
		a.blocks[b.nextFree].prevFree = i
	}
	a.heads[h] = i
	a.flMap |= 1 << fl
	a.slMap[fl] |= 1 << sl
}

func (a *Arena) removeFree(i int32) {
	b := &a.blocks[i]
	if b.prevFree != none {
		a.blocks[b.prevFree].nextFree = b.nextFree
	} else {
		fl, sl := a.mapping(b.size)
		h := fl*slCount + sl
		a.heads[h] = b.nextFree
		if b.nextFree == none {
			a.slMap[fl] &^= 1 << sl
			if a.slMap[fl] == 0 {
				a.flMap &^= 1 << fl
			}
		}
	}
	if b.nextFree != none {
		a.blocks[b.nextFree].prevFree = b.prevFree
	}
	b.prevFree, b.nextFree = none, none
}
