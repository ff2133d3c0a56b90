package alloc

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func mustAlloc(t *testing.T, a *Arena, size int64) int64 {
	t.Helper()
	off, ok := a.Alloc(size)
	if !ok {
		t.Fatalf("Alloc(%d) failed: used %d free %d largest %d", size, a.Used(), a.FreeBytes(), a.LargestFree())
	}
	return off
}

func TestBasic(t *testing.T) {
	a := New(1<<20, 64)
	if a.Capacity() != 1<<20 || a.Used() != 0 || a.FreeBytes() != 1<<20 || a.LargestFree() != 1<<20 {
		t.Fatalf("fresh arena: cap %d used %d free %d largest %d", a.Capacity(), a.Used(), a.FreeBytes(), a.LargestFree())
	}
	x := mustAlloc(t, a, 100)
	y := mustAlloc(t, a, 64)
	if x%64 != 0 || y%64 != 0 || x == y {
		t.Fatalf("offsets %d %d not aligned or equal", x, y)
	}
	if a.Used() != 128+64 {
		t.Fatalf("used %d, want 192 (100 rounds to 128)", a.Used())
	}
	a.Free(x, 100)
	a.Free(y, 64)
	if a.Used() != 0 || a.LargestFree() != 1<<20 || a.Allocations() != 0 {
		t.Fatalf("after freeing all: used %d largest %d allocs %d", a.Used(), a.LargestFree(), a.Allocations())
	}
}

func TestAlignmentAndRounding(t *testing.T) {
	a := New(1000, 256) // capacity rounds down to 768
	if a.Capacity() != 768 {
		t.Fatalf("capacity %d, want 768", a.Capacity())
	}
	for _, size := range []int64{0, 1, 256} {
		off := mustAlloc(t, a, size)
		if off%256 != 0 {
			t.Errorf("Alloc(%d) offset %d not aligned", size, off)
		}
	}
	if _, ok := a.Alloc(1); ok {
		t.Error("fourth allocation fitted in a 768-byte arena of 256-byte units")
	}
	if _, ok := a.Alloc(-1); ok {
		t.Error("negative size allocated")
	}
	for _, bad := range []int64{3, 6, -8} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(_, %d) did not panic", bad)
				}
			}()
			New(100, bad)
		}()
	}
}

func TestExactFitAndFull(t *testing.T) {
	a := New(4096, 1)
	off := mustAlloc(t, a, 4096)
	if off != 0 || a.FreeBytes() != 0 || a.LargestFree() != 0 {
		t.Fatalf("whole-arena alloc: off %d free %d largest %d", off, a.FreeBytes(), a.LargestFree())
	}
	if _, ok := a.Alloc(1); ok {
		t.Fatal("allocated from a full arena")
	}
	a.Free(0, 4096)
	if _, ok := a.Alloc(4097); ok {
		t.Fatal("allocated more than capacity")
	}
	if New(0, 8).LargestFree() != 0 {
		t.Fatal("empty arena has a hole")
	}
	if _, ok := New(0, 8).Alloc(0); ok {
		t.Fatal("empty arena allocated")
	}
}

func TestCoalescing(t *testing.T) {
	a := New(10*100, 1)
	var offs []int64
	for range 10 {
		offs = append(offs, mustAlloc(t, a, 100))
	}
	// Free every other block: five holes of 100, none larger.
	for i := 0; i < 10; i += 2 {
		a.Free(offs[i], 100)
	}
	if a.FreeBytes() != 500 || a.LargestFree() != 100 {
		t.Fatalf("holes: free %d largest %d, want 500 and 100", a.FreeBytes(), a.LargestFree())
	}
	if _, ok := a.Alloc(101); ok {
		t.Fatal("101 bytes allocated with no hole above 100 (fragmentation ignored)")
	}
	// Freeing block 1 merges holes 0,1,2 into 300 bytes (left and right coalescing).
	a.Free(offs[1], 100)
	if a.LargestFree() != 300 {
		t.Fatalf("after freeing block 1: largest %d, want 300", a.LargestFree())
	}
	off := mustAlloc(t, a, 300)
	if off != offs[0] {
		t.Fatalf("300-byte alloc at %d, want %d (the merged hole)", off, offs[0])
	}
	a.Free(off, 300)
	for i := 3; i < 10; i += 2 {
		a.Free(offs[i], 100)
	}
	if a.LargestFree() != 1000 || a.Used() != 0 || len(a.blocks)-len(a.spare) != 1 {
		t.Fatalf("all freed: largest %d used %d live blocks %d, want one 1000-byte hole",
			a.LargestFree(), a.Used(), len(a.blocks)-len(a.spare))
	}
}

func TestReuse(t *testing.T) {
	a := New(1<<20, 4096)
	x := mustAlloc(t, a, 4096)
	a.Free(x, 4096)
	for range 10000 {
		y := mustAlloc(t, a, 4096)
		if y != x {
			t.Fatalf("freed space not reused: got %d, want %d", y, x)
		}
		a.Free(y, 4096)
	}
	if len(a.blocks) > 4 {
		t.Fatalf("block table grew to %d entries on alloc/free of one size", len(a.blocks))
	}
}

// TestOwnClassFallback: a hole in the request's own size class that is big
// enough must be found even though the rounded-up search misses it.
func TestOwnClassFallback(t *testing.T) {
	a := New(1<<20, 1)
	// Make a single hole of 1000 bytes, surrounded by allocations.
	p := mustAlloc(t, a, 10)
	h := mustAlloc(t, a, 1000)
	q := mustAlloc(t, a, a.FreeBytes())
	_ = p
	_ = q
	a.Free(h, 1000)
	if a.LargestFree() != 1000 {
		t.Fatalf("largest %d", a.LargestFree())
	}
	// 990 rounds up to a class above 1000's; the fallback must still find 1000.
	off := mustAlloc(t, a, 990)
	if off != h {
		t.Fatalf("got %d want %d", off, h)
	}
}

func TestDoubleFreePanics(t *testing.T) {
	cases := map[string]func(a *Arena, off int64){
		"double free": func(a *Arena, off int64) { a.Free(off, 64); a.Free(off, 64) },
		"wrong size":  func(a *Arena, off int64) { a.Free(off, 128) },
		"not offset":  func(a *Arena, off int64) { a.Free(off+128, 64) },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			a := New(1024, 64)
			off := mustAlloc(t, a, 64)
			mustAlloc(t, a, 64)
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), "alloc: Free") {
					t.Fatalf("recover() = %v, want an alloc panic", r)
				}
			}()
			f(a, off)
		})
	}
}

func TestAllocAt(t *testing.T) {
	if New(1000, 8).AllocAt(4, 8) {
		t.Error("misaligned AllocAt succeeded")
	}
	a := New(1000, 1)
	for _, r := range [][2]int64{{0, 10}, {100, 95}, {500, 10}, {990, 10}} {
		if !a.AllocAt(r[0], r[1]) {
			t.Fatalf("AllocAt(%d, %d) failed", r[0], r[1])
		}
	}
	if a.Used() != 10+95+10+10 {
		t.Fatalf("used %d", a.Used())
	}
	for _, r := range [][2]int64{{0, 10}, {95, 10}, {105, 5}, {5, 10}, {990, 20}, {1000, 1}, {-10, 1}, {9, 2}} {
		if a.AllocAt(r[0], r[1]) {
			t.Errorf("AllocAt(%d, %d) succeeded over a taken or invalid range", r[0], r[1])
		}
	}
	if a.LargestFree() != 480 { // [510, 990)
		t.Fatalf("largest %d, want 480", a.LargestFree())
	}
	// Out-of-order AllocAt works too.
	if !a.AllocAt(20, 10) {
		t.Fatal("AllocAt(20, 10) failed")
	}
	for _, r := range [][2]int64{{0, 10}, {100, 95}, {500, 10}, {990, 10}, {20, 10}} {
		a.Free(r[0], r[1])
	}
	if a.Used() != 0 || a.LargestFree() != 1000 {
		t.Fatalf("used %d largest %d", a.Used(), a.LargestFree())
	}
}

// model is a naive allocator state: the set of allocated [off, off+size) ranges.
type model struct {
	capacity int64
	live     map[int64]int64
}

func (m *model) holes() []int64 {
	offs := slices.Sorted(func(yield func(int64) bool) {
		for o := range m.live {
			if !yield(o) {
				return
			}
		}
	})
	var hs []int64
	pos := int64(0)
	for _, o := range offs {
		if o > pos {
			hs = append(hs, o-pos)
		}
		pos = o + m.live[o]
	}
	if pos < m.capacity {
		hs = append(hs, m.capacity-pos)
	}
	return hs
}

func (m *model) overlaps(off, size int64) bool {
	for o, s := range m.live {
		if off < o+s && o < off+size {
			return true
		}
	}
	return false
}

// TestRandomAgainstModel drives random allocs and frees and checks every
// result against the naive model: an Alloc succeeds exactly when some hole is
// large enough, never overlaps, and the counters agree.
func TestRandomAgainstModel(t *testing.T) {
	for seed := range uint64(8) {
		r := rand.New(rand.NewPCG(seed, 42))
		align := int64(1) << r.IntN(7)
		capacity := int64(1<<14 + r.IntN(1<<14))
		a := New(capacity, align)
		m := &model{capacity: a.Capacity(), live: map[int64]int64{}}
		var order []int64
		blocks := map[int64]Block{}
		for step := range 4000 {
			if r.IntN(100) < 55 || len(order) == 0 {
				var size int64
				switch r.IntN(3) {
				case 0:
					size = int64(r.IntN(64))
				case 1:
					size = int64(r.IntN(1024))
				default:
					size = int64(r.IntN(int(capacity / 4)))
				}
				rs := a.RoundUp(size)
				largest := int64(0)
				for _, h := range m.holes() {
					largest = max(largest, h)
				}
				var off int64
				var ok bool
				useBlock := r.IntN(2) == 0
				if useBlock {
					var blk Block
					blk, ok = a.AllocBlock(size)
					off = blk.Off()
					if ok {
						blocks[off] = blk
						if blk.Size() != rs {
							t.Fatalf("seed %d step %d: block size %d, want %d", seed, step, blk.Size(), rs)
						}
					}
				} else {
					off, ok = a.Alloc(size)
				}
				if ok != (rs <= largest) {
					t.Fatalf("seed %d step %d: Alloc(%d) ok=%v but model largest hole %d", seed, step, size, ok, largest)
				}
				if !ok {
					continue
				}
				if off%align != 0 || off < 0 || off+rs > m.capacity || m.overlaps(off, rs) {
					t.Fatalf("seed %d step %d: Alloc(%d) = %d: misaligned, out of range or overlapping", seed, step, size, off)
				}
				m.live[off] = rs
				order = append(order, off)
			} else {
				k := r.IntN(len(order))
				off := order[k]
				order[k] = order[len(order)-1]
				order = order[:len(order)-1]
				if blk, ok := blocks[off]; ok {
					a.FreeBlock(blk)
					delete(blocks, off)
				} else {
					a.Free(off, m.live[off])
				}
				delete(m.live, off)
			}
			var used, largest int64
			for _, s := range m.live {
				used += s
			}
			hs := m.holes()
			for _, h := range hs {
				largest = max(largest, h)
			}
			if a.Used() != used || a.FreeBytes() != m.capacity-used || a.LargestFree() != largest {
				t.Fatalf("seed %d step %d: used %d/%d largest %d/%d", seed, step, a.Used(), used, a.LargestFree(), largest)
			}
			// Coalescing: the arena has exactly one free block per model hole.
			if nfree := len(a.blocks) - len(a.spare) - a.Allocations(); nfree != len(hs) || a.Allocations() != len(m.live) {
				t.Fatalf("seed %d step %d: %d free blocks, model has %d holes (not coalesced)", seed, step, nfree, len(hs))
			}
		}
		for _, off := range order {
			if blk, ok := blocks[off]; ok {
				a.FreeBlock(blk)
			} else {
				a.Free(off, m.live[off])
			}
		}
		if a.Used() != 0 || a.LargestFree() != a.Capacity() {
			t.Fatalf("seed %d: after freeing all: used %d largest %d", seed, a.Used(), a.LargestFree())
		}
	}
}

// TestLargeCapacity checks size classes at the top of the range.
func TestLargeCapacity(t *testing.T) {
	a := New(1<<50, 4096)
	x := mustAlloc(t, a, 1<<49)
	y := mustAlloc(t, a, 1<<48+1)
	if a.LargestFree() != 1<<50-1<<49-(1<<48+4096) {
		t.Fatalf("largest %d", a.LargestFree())
	}
	a.Free(x, 1<<49)
	a.Free(y, 1<<48+1)
	if a.LargestFree() != 1<<50 {
		t.Fatalf("largest %d", a.LargestFree())
	}
}

func BenchmarkAllocFree4K(b *testing.B) {
	a := New(4<<30, 64)
	// A realistic state: many live objects around the ones we churn.
	for range 100000 {
		a.Alloc(4096)
	}
	b.ResetTimer()
	for b.Loop() {
		off, ok := a.Alloc(4096)
		if !ok {
			b.Fatal("full")
		}
		a.Free(off, 4096)
	}
}

func BenchmarkAllocFreeMixed(b *testing.B) {
	a := New(4<<30, 64)
	r := rand.New(rand.NewPCG(1, 2))
	live := make([][2]int64, 0, 1<<16)
	for b.Loop() {
		if len(live) < 1<<15 || (r.IntN(2) == 0 && len(live) < 1<<16) {
			size := int64(64 + r.IntN(1<<16))
			if off, ok := a.Alloc(size); ok {
				live = append(live, [2]int64{off, size})
			}
		} else {
			k := r.IntN(len(live))
			a.Free(live[k][0], live[k][1])
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
		}
	}
}

func ExampleArena() {
	a := New(1<<20, 4096) // 1 MiB region, 4 KiB pages
	x, _ := a.Alloc(10000)
	y, _ := a.Alloc(4096)
	fmt.Println(x, y, a.Used())
	a.Free(x, 10000)
	z, _ := a.Alloc(8192) // reuses the front of x's hole
	fmt.Println(z, a.Used(), a.LargestFree())
	// Output:
	// 0 12288 16384
	// 0 12288 1032192
}

func TestBlockMisusePanics(t *testing.T) {
	cases := map[string]func(a *Arena){
		"double FreeBlock": func(a *Arena) {
			b, _ := a.AllocBlock(64)
			a.FreeBlock(b)
			a.FreeBlock(b)
		},
		"stale Block after reuse": func(a *Arena) {
			b, _ := a.AllocBlock(64)
			a.FreeBlock(b)
			if c, _ := a.AllocBlock(64); c.Off() != b.Off() {
				t.Fatalf("space not reused: %d then %d", b.Off(), c.Off())
			}
			a.FreeBlock(b)
		},
		"FreeBlock of Alloc": func(a *Arena) {
			off, _ := a.Alloc(64)
			a.FreeBlock(Block{off: off, size: 64, idx: a.byOff[off], gen: a.blocks[a.byOff[off]].gen})
		},
		"Free of AllocBlock": func(a *Arena) {
			b, _ := a.AllocBlock(64)
			a.Free(b.Off(), 64)
		},
		"foreign Block": func(a *Arena) {
			a.FreeBlock(Block{idx: 1000})
		},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			a := New(1024, 64)
			a.Alloc(64) // something before, so blocks are split
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "alloc: Free") {
					t.Fatalf("recover() = %v, want an alloc panic", r)
				}
			}()
			f(a)
		})
	}
}

func TestAllocBlockAt(t *testing.T) {
	a := New(1000, 1)
	b, ok := a.AllocBlockAt(100, 50)
	if !ok || b.Off() != 100 || b.Size() != 50 || a.Used() != 50 {
		t.Fatalf("AllocBlockAt = %+v, %v", b, ok)
	}
	if _, ok := a.AllocBlockAt(120, 10); ok {
		t.Fatal("overlapping AllocBlockAt succeeded")
	}
	a.FreeBlock(b)
	if a.Used() != 0 || a.LargestFree() != 1000 {
		t.Fatalf("used %d largest %d", a.Used(), a.LargestFree())
	}
}

func BenchmarkAllocFreeBlock4K(b *testing.B) {
	a := New(4<<30, 64)
	for range 100000 {
		a.AllocBlock(4096)
	}
	for b.Loop() {
		blk, ok := a.AllocBlock(4096)
		if !ok {
			b.Fatal("full")
		}
		a.FreeBlock(blk)
	}
}
