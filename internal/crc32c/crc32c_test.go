package crc32c

import (
	"bytes"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"testing"
)

// lengths cover the fallback sizes, the fold threshold and its edges,
// partial 128-byte tails, and the streaming path with misaligned heads.
var lengths = []int{0, 1, 3, 4, 15, 16, 127, 128, 255, 256, 257, 383, 384, 1000, 4096, 4097,
	65536 + 77, streamMin - 1, streamMin, streamMin + 129, 3<<20 + 5}

func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	p := make([]byte, n+64)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

func TestUpdateMatchesHashCRC32(t *testing.T) {
	if !useFold {
		t.Logf("no folding kernel on this CPU (needs amd64 with AVX2 and VPCLMULQDQ): testing the fallback only")
	}
	for _, n := range lengths {
		buf := testData(n, uint64(n))
		for _, off := range []int{0, 1, 7, 33} {
			p := buf[off : off+n]
			for _, crc := range []uint32{0, 0xdeadbeef, 0xffffffff} {
				want := crc32.Update(crc, Table, p)
				if got := Update(crc, p); got != want {
					t.Fatalf("Update(%#x, %d bytes at offset %d) = %#08x, want %#08x", crc, n, off, got, want)
				}

			}
		}
	}
}

func TestCopyUpdate(t *testing.T) {
	for _, n := range lengths {
		src := testData(n, uint64(n)+7)
		for _, off := range []int{0, 1, 13, 32} {
			dstBuf := make([]byte, n+64)
			for i := range dstBuf {
				dstBuf[i] = 0xAA
			}
			s := src[off : off+n]
			d := dstBuf[off : off+n]
			got, crc := CopyUpdate(0x1234, d, s)
			if got != n {
				t.Fatalf("%d bytes at offset %d: copied %d", n, off, got)
			}
			if useFold && n >= foldMin {
				clear(d)
				crc = copyFold(0x1234, d, s) // the kernel at every size, whatever the thresholds
			}
			if want := crc32.Update(0x1234, Table, s); crc != want {
				t.Fatalf("CopyUpdate(%d bytes at offset %d) crc %#08x, want %#08x", n, off, crc, want)
			}
			if !bytes.Equal(d, s) {
				t.Fatalf("CopyUpdate(%d bytes at offset %d): copy differs", n, off)
			}
			// Bytes around the destination are untouched.
			for i, b := range dstBuf[:off] {
				if b != 0xAA {
					t.Fatalf("%d bytes at offset %d: byte %d before dst written", n, off, i)
				}
			}
			for i, b := range dstBuf[off+n:] {
				if b != 0xAA {
					t.Fatalf("%d bytes at offset %d: byte %d after dst written", n, off, i)
				}
			}
		}
	}
}

func TestCopyUpdateShortSide(t *testing.T) {
	src := testData(1000, 3)[:1000]
	dst := make([]byte, 600)
	n, crc := CopyUpdate(0, dst, src)
	if n != 600 || crc != crc32.Checksum(src[:600], Table) || !bytes.Equal(dst, src[:600]) {
		t.Fatalf("short dst: n=%d crc=%#x", n, crc)
	}
	n, crc = CopyUpdate(0, make([]byte, 2000), src)
	if n != 1000 || crc != crc32.Checksum(src, Table) {
		t.Fatalf("short src: n=%d crc=%#x", n, crc)
	}
}

func FuzzUpdate(f *testing.F) {
	f.Add([]byte("distore"), uint32(0))
	f.Add(bytes.Repeat([]byte{0xff}, 300), uint32(7))
	f.Fuzz(func(t *testing.T, p []byte, crc uint32) {
		if got, want := Update(crc, p), crc32.Update(crc, Table, p); got != want {
			t.Fatalf("Update(%#x, %d bytes) = %#08x, want %#08x", crc, len(p), got, want)
		}
		d := make([]byte, len(p))
		if _, got := CopyUpdate(crc, d, p); got != crc32.Update(crc, Table, p) || !bytes.Equal(d, p) {
			t.Fatalf("CopyUpdate(%#x, %d bytes) wrong", crc, len(p))
		}
	})
}

func benchSizes() []int {
	return []int{4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10, 1 << 20, 64 << 20}
}

// benchOp runs op as the sub-benchmark name at n bytes.
func benchOp(b *testing.B, n int, name string, op func()) {
	b.Run(sizeName(n)+"/"+name, func(b *testing.B) {
		b.SetBytes(int64(n))
		for b.Loop() {
			op()
		}
	})
}

func BenchmarkUpdate(b *testing.B) {
	for _, n := range benchSizes() {
		p := testData(n, 1)[:n]
		if useFold && n >= hybridMin {
			benchOp(b, n, "hybrid", func() { hybrid(0, nil, p) })
		}
		benchOp(b, n, "hash-crc32", func() { crc32.Update(0, Table, p) })
	}
}

func BenchmarkCopyUpdate(b *testing.B) {
	for _, n := range benchSizes() {
		p := testData(n, 1)[:n]
		d := make([]byte, n)
		copy(d, p)
		if useFold && n >= hybridMin {
			benchOp(b, n, "hybrid", func() { hybrid(0, d, p) })
		}
		if useFold {
			benchOp(b, n, "fused", func() { copyFold(0, d, p) })
		}
		benchOp(b, n, "copy+crc32", func() {
			copy(d, p)
			crc32.Update(0, Table, d)
		})
		benchOp(b, n, "copy", func() { copy(d, p) })
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	default:
		return strconv.Itoa(n>>10) + "KiB"
	}
}

// TestHybridEveryGeometry runs the hybrid kernel on every length over a few
// rounds past its minimum, around the block boundaries, and on random
// lengths up to where the fold takes over, copying and not.
func TestHybridEveryGeometry(t *testing.T) {
	if !useFold {
		t.Skip("no AVX2 and VPCLMULQDQ on this CPU: the hybrid kernel is not used")
	}
	ns := []int{}
	for n := hybridMin; n < hybridMin+3*hybridRound; n++ {
		ns = append(ns, n)
	}
	for _, b := range []int{hybridBlock, 2 * hybridBlock, 3 * hybridBlock} {
		for d := -30; d <= 30; d++ {
			ns = append(ns, b+d)
		}
	}
	r := rand.New(rand.NewPCG(9, 9))
	for range 200 {
		ns = append(ns, hybridMin+r.IntN(1<<20))
	}
	// Random bytes, then mostly zeros: a kernel that branches on data it
	// mistook for a flag or a count fails on one or the other.
	random := testData(1<<20+3*hybridBlock, 5)
	sparse := make([]byte, len(random))
	for i := 0; i < len(sparse); i += 4093 {
		sparse[i] = byte(i)
	}
	dst := make([]byte, len(random)+64)
	for i, n := range append(ns, ns...) {
		src := random
		if i >= len(ns) {
			src = sparse
		}
		off := i % 64
		p := src[off : off+n]
		want := crc32.Update(uint32(i), Table, p)
		if got := hybrid(uint32(i), nil, p); got != want {
			t.Fatalf("hybrid(%d bytes) = %#08x, want %#08x", n, got, want)
		}
		d := dst[i%7 : i%7+n]
		if got := hybrid(uint32(i), d, p); got != want || !bytes.Equal(d, p) {
			t.Fatalf("hybrid copy (%d bytes) = %#08x, want %#08x (copy equal: %v)", n, got, want, bytes.Equal(d, p))
		}
	}
}

func TestShiftKeys(t *testing.T) {
	for _, i := range []int{1, 2, 100, len(shiftKeys) - 1} {
		if want := uint32(xpowReflected(64*i-33) >> 32); shiftKeys[i] != want {
			t.Fatalf("shiftKeys[%d] = %#08x, want %#08x", i, shiftKeys[i], want)
		}
	}
}

// TestHashMatchesHashCRC32 writes the same stream, in uneven pieces, to New
// and to crc32.New and compares every method's result.
func TestHashMatchesHashCRC32(t *testing.T) {
	p := testData(200000, 11)
	h, want := New(), crc32.New(Table)
	for off, step := 0, 1; off < len(p); off, step = off+step, step*3+7 {
		end := min(off+step, len(p))
		h.Write(p[off:end])
		want.Write(p[off:end])
		if h.Sum32() != want.Sum32() {
			t.Fatalf("after %d bytes: Sum32 %#08x, want %#08x", end, h.Sum32(), want.Sum32())
		}
	}
	if !bytes.Equal(h.Sum([]byte("x")), want.Sum([]byte("x"))) || h.Size() != want.Size() || h.BlockSize() != want.BlockSize() {
		t.Fatalf("Sum/Size/BlockSize differ from hash/crc32")
	}
	h.Reset()
	if h.Sum32() != 0 {
		t.Fatalf("Reset left %#08x", h.Sum32())
	}
}
