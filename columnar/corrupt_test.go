package columnar_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"distore/backend"
	"distore/columnar"
)

// outcome selects every column and says whether the answer is an error
// saying the file is damaged (or not Arrow), the right table, or wrong values.
func outcome(t *testing.T, b backend.Backend, data []byte, want []*arrow.Chunked, sel columnar.Selection) string {
	t.Helper()
	ctx := context.Background()
	id := backend.NewID()
	if _, err := b.Put(ctx, id, data, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	defer b.Delete(ctx, id)
	res, err := columnar.Select(ctx, b, id, sel)
	switch {
	case errors.Is(err, backend.ErrCorrupt) || errors.Is(err, columnar.ErrNotArrow):
		return "detected"
	case err != nil:
		t.Fatalf("damaged file: %v (want ErrCorrupt or right values)", err)
	}
	defer res.Close()
	have := got(res, res.Schema, res.Records)
	if len(have) != len(want) {
		return "wrong"
	}
	for k := range want {
		field := allTypes.Field(k)
		if sel.Columns != nil {
			field = allTypes.Field(allTypes.FieldIndices(sel.Columns[k])[0])
		}
		if !array.ChunkedEqual(want[k], have[k]) || !res.Schema.Field(k).Equal(field) {
			return "wrong"
		}
	}
	return "right"
}

// TestDamageIsDetected flips bytes of a stored file, one at a time: in a
// column's buffer, in the record batches' metadata, in the footer. Each read
// answers ErrCorrupt (or ErrNotArrow) or the right values, never wrong ones.
func TestDamageIsDetected(t *testing.T) {
	recs := makeBatches(t, 100, 150, 57)
	data, err := columnar.Encode(allTypes, recs, columnar.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	all := make([]int, allTypes.NumFields())
	for i := range all {
		all[i] = i
	}
	want := expected(allTypes, recs, all, 0, 307)
	for _, tr := range tiers[:2] {
		t.Run(tr.name, func(t *testing.T) {
			b := tr.open(t)
			sel := columnar.Selection{Verify: true}
			if got := outcome(t, b, data, want, sel); got != "right" {
				t.Fatalf("undamaged file: %s", got)
			}
			// A value of column f64 (row 123 is 123/8) in batch 1.
			var v [8]byte
			binary.LittleEndian.PutUint64(v[:], math.Float64bits(123.0/8))
			at := bytes.Index(data, v[:])
			if at < 0 {
				t.Fatal("f64 value not found")
			}
			damaged := bytes.Clone(data)
			damaged[at+3] ^= 0x10
			if got := outcome(t, b, damaged, want, sel); got != "detected" {
				t.Fatalf("damaged f64 buffer: %s", got)
			}
			// The same through the layout index alone (no dictionary column,
			// whose batch arrow-go would load): the checksums come from
			// MetaColumnCRC beside the index.
			f64 := columnar.Selection{Columns: []string{"f64"}, Verify: true}
			if got := outcome(t, b, damaged, expected(allTypes, recs, []int{1}, 0, 307), f64); got != "detected" {
				t.Fatalf("damaged f64 buffer, read through the layout index: %s", got)
			}
			// The other columns of the damaged file still read right.
			res := check(t, b, putBytes(t, b, damaged), recs, columnar.Selection{Columns: []string{"s", "dict"}, Verify: true})
			res.Close()
			// Every byte of the footer and trailer, and a stride through the
			// rest (metadata blocks, buffers, padding).
			flen := int(binary.LittleEndian.Uint32(data[len(data)-10:]))
			counts := map[string]int{}
			step := 3
			if testing.Short() || tr.name != "memory" {
				step = 17
			}
			for i := len(data) - 10 - flen; i < len(data); i += step {
				damaged := bytes.Clone(data)
				damaged[i] ^= 0x5A
				r := outcome(t, b, damaged, want, sel)
				if r == "wrong" {
					t.Fatalf("byte %d of %d flipped (footer %d bytes): wrong values", i, len(data), flen)
				}
				counts[r]++
			}
			for i := 0; i < len(data)-10-flen; i += 31 * step {
				damaged := bytes.Clone(data)
				damaged[i] ^= 0x5A
				r := outcome(t, b, damaged, want, sel)
				if r == "wrong" {
					t.Fatalf("byte %d of %d flipped: wrong values", i, len(data))
				}
				counts[r]++
			}
			t.Logf("flipped bytes: %v", counts)
		})
	}
}

func putBytes(t *testing.T, b backend.Backend, data []byte) backend.ID {
	t.Helper()
	id := backend.NewID()
	if _, err := b.Put(context.Background(), id, data, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDamagedCompressedPrefix: a compressed buffer's length prefix set to a
// huge value is ErrCorrupt (arrow-go would allocate by it), never a crash.
func TestDamagedCompressedPrefix(t *testing.T) {
	recs := makeBatches(t, 100, 150)
	data, err := columnar.Encode(allTypes, recs, columnar.WriteOptions{Compression: columnar.Zstd})
	if err != nil {
		t.Fatal(err)
	}
	all := make([]int, allTypes.NumFields())
	for i := range all {
		all[i] = i
	}
	want := expected(allTypes, recs, all, 0, 250)
	b := tiers[0].open(t)
	flen := int(binary.LittleEndian.Uint32(data[len(data)-10:]))
	counts := map[string]int{}
	// Every 8-byte-aligned word before the footer gets 2^62 added: each
	// buffer's prefix among them.
	for i := 8 + 7; i < len(data)-10-flen; i += 8 {
		damaged := bytes.Clone(data)
		damaged[i] ^= 0x40
		r := outcome(t, b, damaged, want, columnar.Selection{})
		if r == "wrong" {
			t.Fatalf("byte %d flipped: wrong values", i)
		}
		counts[r]++
	}
	if counts["detected"] == 0 {
		t.Fatal("no damage detected")
	}
	t.Logf("flipped bytes: %v", counts)
}

func TestMaxAllocRefusesHugeBuffers(t *testing.T) {
	// Through the public path: a file whose compressed prefix claims 1 TiB
	// is covered above; here the bound itself.
	if columnar.MaxAllocForTest(1<<20) >= 1<<32 {
		t.Fatalf("bound for a 1 MiB file is %d", columnar.MaxAllocForTest(1<<20))
	}
}
