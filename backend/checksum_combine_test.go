package backend

import (
	"math/rand/v2"
	"testing"
)

func TestCombineChecksum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 1<<20+77)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, cut := range []int{0, 1, 7, 4096, 65536, 1 << 19, len(data) - 1, len(data)} {
		a, b := data[:cut], data[cut:]
		if got, want := CombineChecksum(Checksum(a), Checksum(b), int64(len(b))), Checksum(data); got != want {
			t.Errorf("cut %d: combined %08x, want %08x", cut, got, want)
		}
	}
	// Three parts, combined left to right.
	p, q := 1000, 500000
	c := CombineChecksum(CombineChecksum(Checksum(data[:p]), Checksum(data[p:q]), int64(q-p)), Checksum(data[q:]), int64(len(data)-q))
	if c != Checksum(data) {
		t.Errorf("three parts: %08x, want %08x", c, Checksum(data))
	}
}

func BenchmarkCombineChecksum(b *testing.B) {
	for b.Loop() {
		CombineChecksum(0x12345678, 0x9abcdef0, 16<<20)
	}
}
