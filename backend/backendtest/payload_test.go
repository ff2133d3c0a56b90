package backendtest

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestPayload: the bytes are deterministic, differ by seed, and differ from
// page to page even where the random block repeats.
func TestPayload(t *testing.T) {
	const n = 200<<10 + 5
	a := Payload(n, 1)
	if len(a) != n || !bytes.Equal(a, Payload(n, 1)) {
		t.Fatalf("Payload(%d, 1) is %d bytes or not deterministic", n, len(a))
	}
	if bytes.Equal(a, Payload(n, 2)) {
		t.Fatal("seeds 1 and 2 give the same bytes")
	}
	if bytes.Equal(a[:4096], a[64<<10:64<<10+4096]) {
		t.Fatal("the pages at 0 and 64 KiB are equal")
	}
	for off := 0; off+16 <= n; off += 4096 {
		if binary.LittleEndian.Uint64(a[off:]) != 1 || binary.LittleEndian.Uint64(a[off+8:]) != uint64(off) {
			t.Fatalf("page at %d does not start with seed and offset", off)
		}
	}
	if len(Payload(0, 1)) != 0 || len(Payload(7, 1)) != 7 {
		t.Fatal("short payloads have the wrong length")
	}
}
