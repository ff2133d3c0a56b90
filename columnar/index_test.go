package columnar_test

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sys/unix"

	"distore/columnar"
)

// layoutValue is the MetaLayout value of batch i of an encoded file ("" if
// none).
func layoutValue(t *testing.T, data []byte, i int) string {
	t.Helper()
	fr, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	rec, err := fr.RecordBatchAt(i)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	md := rec.(arrow.RecordBatchWithMetadata).Metadata()
	if k := md.FindKey(columnar.MetaLayout); k >= 0 {
		return md.Values()[k]
	}
	return ""
}

// TestLayoutIndex: a first selection of a file written by Write loads no
// record batch with arrow-go (the layout index gives the selected columns'
// buffers), on the memory tier and on disk; a dictionary column (not in the
// index) is learnt once from arrow-go. Compressed files have no index, and
// the schema a user reads does not show it.
func TestLayoutIndex(t *testing.T) {
	recs := makeBatches(t, 100, 150, 57)
	for _, tr := range tiers[:2] {
		t.Run(tr.name, func(t *testing.T) {
			b := tr.open(t)
			id := writeTable(t, b, recs)
			columnar.ForgetLayoutsForTest()
			before := columnar.BatchLoadsForTest()
			check(t, b, id, recs, columnar.Selection{Columns: []string{"i64", "s", "ls", "st", "nul"}, Rows: &columnar.RowRange{Start: 90, End: 260}})
			check(t, b, id, recs, columnar.Selection{Columns: []string{"flag", "ts"}, Rows: &columnar.RowRange{Start: 0, End: 307}, Verify: true})
			if n := columnar.BatchLoadsForTest() - before; n != 0 {
				t.Fatalf("the first selections loaded %d record batches with arrow-go; the layout index should serve them", n)
			}
			check(t, b, id, recs, columnar.Selection{Columns: []string{"dict", "s"}, Rows: &columnar.RowRange{Start: 90, End: 260}})
			learnt := columnar.BatchLoadsForTest()
			if learnt == before {
				t.Fatal("a dictionary column has no index entry: its batches are loaded by arrow-go")
			}
			check(t, b, id, recs, columnar.Selection{Columns: []string{"dict"}, Rows: &columnar.RowRange{Start: 90, End: 260}})
			if n := columnar.BatchLoadsForTest() - learnt; n != 0 {
				t.Fatalf("the dictionary column's layout was learnt, yet %d batches were loaded again", n)
			}
			schema, err := columnar.ReadSchema(t.Context(), b, id)
			if err != nil {
				t.Fatal(err)
			}
			if schema.Metadata().FindKey(columnar.MetaLayout) >= 0 {
				t.Fatal("ReadSchema shows the layout index")
			}
		})
	}
	plain, err := columnar.Encode(allTypes, recs, columnar.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if layoutValue(t, plain, 2) == "" {
		t.Fatal("an uncompressed file has no layout index")
	}
	zstd, err := columnar.Encode(allTypes, recs, columnar.WriteOptions{Compression: columnar.Zstd})
	if err != nil {
		t.Fatal(err)
	}
	if layoutValue(t, zstd, 2) != "" {
		t.Fatal("a compressed file has a layout index")
	}
}

// TestLayoutIndexOutlivesItsRead: a batch's layout index, learnt by one
// selection from disk (from a mapping unmapped when its result closes), gives
// another selection its other columns.
func TestLayoutIndexOutlivesItsRead(t *testing.T) {
	recs := makeBatches(t, 100, 150, 57)
	b := tiers[1].open(t)
	id := writeTable(t, b, recs)
	info, err := b.ObjectInfo(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	columnar.ForgetLayoutsForTest()
	res, err := columnar.Select(t.Context(), b, id, columnar.Selection{Columns: []string{"i64"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Close() // unmaps the mapping the index was read from
	// Memory of another kind where that mapping was (the kernel hands the
	// same addresses out again), so that reading it is noticed.
	other, err := unix.Mmap(-1, 0, int(info.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(other)
	for i := range other {
		other[i] = 0xFF
	}
	check(t, b, id, recs, columnar.Selection{Columns: []string{"s", "ls", "bin", "flag", "nul"}})
}

// TestDamagedLayoutIndex flips each character of a batch's layout index: a selection from memory, not verifying checksums, answers
// ErrCorrupt or the right values, never wrong ones.
func TestDamagedLayoutIndex(t *testing.T) {
	recs := makeBatches(t, 100, 150, 57)
	data, err := columnar.Encode(allTypes, recs, columnar.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	value := layoutValue(t, data, 1)
	at := bytes.Index(data, []byte(value))
	if value == "" || at < 0 {
		t.Fatal("no layout index in batch 1")
	}
	// Every column but the dictionary (which has no entry): each read uses
	// the index alone.
	var idx []int
	var names []string
	for i, f := range allTypes.Fields() {
		if f.Name != "dict" {
			idx, names = append(idx, i), append(names, f.Name)
		}
	}
	want := expected(allTypes, recs, idx, 0, 307)
	sel := columnar.Selection{Columns: names}
	b := tiers[0].open(t)
	counts := map[string]int{}
	for i := at; i < at+len(value); i++ {
		for _, flip := range []byte{0x01, 0x20} {
			damaged := bytes.Clone(data)
			damaged[i] ^= flip
			columnar.ForgetLayoutsForTest()
			r := outcome(t, b, damaged, want, sel)
			if r == "wrong" {
				t.Fatalf("character %d of the %d-character layout index flipped (^%#x): wrong values", i-at, len(value), flip)
			}
			counts[r]++
		}
	}
	if counts["detected"] == 0 {
		t.Fatal("no damage detected")
	}
	t.Logf("flipped characters: %v", counts)
}
