package columnar_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"distore/backend"
	"distore/columnar"
)

// check selects sel from id and compares with the table computed in memory.
func check(t *testing.T, b backend.Backend, id backend.ID, recs []arrow.RecordBatch, sel columnar.Selection) *columnar.Result {
	t.Helper()
	res, err := columnar.Select(context.Background(), b, id, sel)
	if err != nil {
		t.Fatalf("Select %v: %v", sel, err)
	}
	t.Cleanup(func() { res.Close() })
	var total int64
	for _, r := range recs {
		total += r.NumRows()
	}
	lo, hi := int64(0), total
	if sel.Rows != nil {
		lo, hi = sel.Rows.Start, sel.Rows.End
	}
	var idx []int
	if sel.Columns == nil {
		for i := range allTypes.NumFields() {
			idx = append(idx, i)
		}
	}
	for _, c := range sel.Columns {
		idx = append(idx, allTypes.FieldIndices(c)[0])
	}
	if res.TotalRows != total || res.NumRows() != hi-lo {
		t.Fatalf("Select %v: %d of %d rows, want %d of %d", sel, res.NumRows(), res.TotalRows, hi-lo, total)
	}
	if res.Schema.NumFields() != len(idx) {
		t.Fatalf("Select %v: schema %v", sel, res.Schema)
	}
	for k, i := range idx {
		if !res.Schema.Field(k).Equal(allTypes.Field(i)) {
			t.Fatalf("Select %v: field %d is %v, want %v", sel, k, res.Schema.Field(k), allTypes.Field(i))
		}
	}
	want := expected(allTypes, recs, idx, lo, hi)
	have := got(res, res.Schema, res.Records)
	for k := range want {
		if !array.ChunkedEqual(want[k], have[k]) {
			t.Fatalf("Select %v: column %q differs:\n got %v\nwant %v", sel, res.Schema.Field(k).Name, have[k], want[k])
		}
		want[k].Release()
		have[k].Release()
	}
	return res
}

func TestSelectEveryTierAndCodec(t *testing.T) {
	recs := makeBatches(t, 100, 0, 150, 57)
	sels := []columnar.Selection{
		{},
		{Columns: []string{"s", "i64"}, Rows: &columnar.RowRange{Start: 10, End: 250}},
		{Columns: []string{"ls", "st", "dict", "nul"}, Rows: &columnar.RowRange{Start: 0, End: 1}},
		{Columns: []string{"bin"}, Rows: &columnar.RowRange{Start: 300, End: 300}},
		{Columns: []string{"f64", "flag", "ts"}, Rows: &columnar.RowRange{Start: 100, End: 250}},
		{Columns: []string{"dict"}, Rows: &columnar.RowRange{Start: 250, End: 307}},
	}
	for _, tr := range tiers {
		t.Run(tr.name, func(t *testing.T) {
			c := &counting{Backend: tr.open(t)}
			for _, codec := range []columnar.Compression{columnar.None, columnar.LZ4, columnar.Zstd} {
				t.Run(string(codec), func(t *testing.T) {
					id := backend.NewID()
					info, err := columnar.Write(context.Background(), c, id, allTypes, recs, columnar.WriteOptions{Compression: codec})
					if err != nil {
						t.Fatal(err)
					}
					for _, sel := range sels {
						c.reset()
						res := check(t, c, id, recs, sel)
						if tr.name == "memory" && codec == columnar.None {
							if !res.Stats.ZeroCopy || c.opens.Load() != 0 {
								t.Fatalf("memory tier: zero-copy %v, %d OpenReader calls", res.Stats.ZeroCopy, c.opens.Load())
							}
							continue
						}
						if res.Stats.ZeroCopy {
							t.Fatalf("%s %s: claims zero-copy", tr.name, codec)
						}
						if tr.name != "memory" && (c.bytes.Load() != res.Stats.BytesRead || c.opens.Load() != int64(res.Stats.Requests)) {
							t.Fatalf("stats say %d bytes in %d requests, counted %d in %d",
								res.Stats.BytesRead, res.Stats.Requests, c.bytes.Load(), c.opens.Load())
						}
						if tr.name != "memory" && c.bytes.Load() > info.Size {
							t.Fatalf("read %d bytes of a %d-byte object", c.bytes.Load(), info.Size)
						}
					}
					schema, err := columnar.ReadSchema(context.Background(), c, id)
					if err != nil || !schema.Equal(allTypes) {
						t.Fatalf("ReadSchema: %v, %v", schema, err)
					}
				})
			}
		})
	}
}

// TestReadsOnlySelectedRanges: from disk and S3, one column of one batch costs
// its buffers, the footer's tail read and the batches' metadata: not the object.
func TestReadsOnlySelectedRanges(t *testing.T) {
	recs := makeBatches(t, 40000, 40000, 40000, 40000)
	for _, tr := range tiers[1:] {
		t.Run(tr.name, func(t *testing.T) {
			c := &counting{Backend: tr.open(t)}
			id := backend.NewID()
			info, err := columnar.Write(context.Background(), c, id, allTypes, recs, columnar.WriteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, sel := range []columnar.Selection{
				{Columns: []string{"f64"}, Rows: &columnar.RowRange{Start: 41000, End: 79000}},
				{Columns: []string{"s", "ls"}, Rows: &columnar.RowRange{Start: 100000, End: 100010}},
			} {
				c.reset()
				res := check(t, c, id, recs, sel)
				read := c.bytes.Load()
				// The f64 column of one batch is 320,000 bytes.
				if res.Stats.SelectedBytes < 320000 {
					t.Fatalf("selected %d bytes", res.Stats.SelectedBytes)
				}
				overhead := int64(64<<10) + 4*int64(4<<10)
				if read > res.Stats.SelectedBytes+overhead || read > info.Size/5 {
					t.Fatalf("%v: read %d bytes for %d selected (object %d)", sel, read, res.Stats.SelectedBytes, info.Size)
				}
				t.Logf("%v: read %d bytes in %d requests, %d selected, object %d", sel.Columns, read, c.opens.Load(), res.Stats.SelectedBytes, info.Size)
			}
		})
	}
}

func TestEmptyTables(t *testing.T) {
	for _, tr := range tiers[:2] {
		t.Run(tr.name, func(t *testing.T) {
			b := tr.open(t)
			for _, rows := range [][]int{nil, {0}, {0, 0}} {
				recs := makeBatches(t, rows...)
				id := writeTable(t, b, recs)
				check(t, b, id, recs, columnar.Selection{})
				check(t, b, id, recs, columnar.Selection{Columns: []string{"st"}, Rows: &columnar.RowRange{Start: 0, End: 0}})
				_, err := columnar.Select(context.Background(), b, id, columnar.Selection{Rows: &columnar.RowRange{Start: 0, End: 1}})
				if !errors.Is(err, columnar.ErrRowRange) {
					t.Fatalf("rows 0:1 of an empty table: %v", err)
				}
			}
		})
	}
}

func TestSelectionErrors(t *testing.T) {
	recs := makeBatches(t, 10, 10)
	for _, tr := range tiers[:2] {
		t.Run(tr.name, func(t *testing.T) {
			b := tr.open(t)
			id := writeTable(t, b, recs)
			ctx := context.Background()
			_, err := columnar.Select(ctx, b, id, columnar.Selection{Columns: []string{"s", "nope"}})
			if !errors.Is(err, columnar.ErrUnknownColumn) || !errors.Is(err, backend.ErrInvalidArgument) {
				t.Fatalf("unknown column: %v", err)
			}
			for _, name := range []string{"nope", "i64,f64,flag,s,bin,ls,st,dict,nul,ts", string(id)} {
				if !strings.Contains(err.Error(), name) {
					t.Fatalf("error %q does not name %q", err, name)
				}
			}
			for _, r := range []columnar.RowRange{{Start: 0, End: 21}, {Start: 5, End: 4}, {Start: 21, End: -1}} {
				if _, err := columnar.Select(ctx, b, id, columnar.Selection{Rows: &r}); !errors.Is(err, columnar.ErrRowRange) {
					t.Fatalf("rows %v: %v", r, err)
				}
			}
			notArrow := backend.NewID()
			if _, err := b.Put(ctx, notArrow, []byte("just some bytes, not an Arrow file at all"), backend.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := columnar.Select(ctx, b, notArrow, columnar.Selection{}); !errors.Is(err, columnar.ErrNotArrow) {
				t.Fatalf("not Arrow: %v", err)
			}
			if _, err := columnar.ReadSchema(ctx, b, notArrow); !errors.Is(err, columnar.ErrNotArrow) {
				t.Fatalf("schema of not Arrow: %v", err)
			}
			if _, err := columnar.Select(ctx, b, backend.NewID(), columnar.Selection{}); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("missing object: %v", err)
			}
		})
	}
}

func TestParseSelection(t *testing.T) {
	for _, c := range []struct {
		cols, rows string
		want       columnar.Selection
		bad        bool
	}{
		{"", "", columnar.Selection{}, false},
		{"a,c", "1000:2000", columnar.Selection{Columns: []string{"a", "c"}, Rows: &columnar.RowRange{Start: 1000, End: 2000}}, false},
		{"a", ":5", columnar.Selection{Columns: []string{"a"}, Rows: &columnar.RowRange{Start: 0, End: 5}}, false},
		{"", "7:", columnar.Selection{Rows: &columnar.RowRange{Start: 7, End: -1}}, false},
		{"a,,c", "", columnar.Selection{}, true},
		{"a,a", "", columnar.Selection{}, true},
		{"", "5", columnar.Selection{}, true},
		{"", "-1:3", columnar.Selection{}, true},
		{"", "x:3", columnar.Selection{}, true},
	} {
		sel, err := columnar.ParseSelection(c.cols, c.rows)
		if c.bad {
			if !errors.Is(err, backend.ErrInvalidArgument) {
				t.Errorf("%q %q: %v", c.cols, c.rows, err)
			}
			continue
		}
		if err != nil || fmt.Sprint(sel.Columns) != fmt.Sprint(c.want.Columns) ||
			(sel.Rows == nil) != (c.want.Rows == nil) || (sel.Rows != nil && *sel.Rows != *c.want.Rows) {
			t.Errorf("%q %q: %+v %v, want %+v", c.cols, c.rows, sel, err, c.want)
		}
	}
}

// TestLayoutCache: a second selection of an object reuses what the first
// learnt (no footer or metadata reads from disk, no batch loading from
// memory) and answers the same values; an ID deleted and put again with
// other bytes of the same size is not answered from the old layout.
func TestLayoutCache(t *testing.T) {
	recsA := makeBatches(t, 100, 150, 57)
	// B: A with column i64 negated (the same size and layout, other bytes).
	var recsB []arrow.RecordBatch
	for _, rec := range recsA {
		old := rec.Column(0).(*array.Int64)
		bld := array.NewInt64Builder(memory.DefaultAllocator)
		for r := range old.Len() {
			if old.IsNull(r) {
				bld.AppendNull()
			} else {
				bld.Append(-old.Value(r) - 1)
			}
		}
		cols := slices.Clone(rec.Columns())
		cols[0] = bld.NewArray()
		recsB = append(recsB, array.NewRecordBatch(allTypes, cols, rec.NumRows()))
		cols[0].Release()
		bld.Release()
	}
	dataA, err := columnar.Encode(allTypes, recsA, columnar.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dataB, err := columnar.Encode(allTypes, recsB, columnar.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(dataA) != len(dataB) {
		t.Fatalf("the two files should have one size: %d, %d", len(dataA), len(dataB))
	}
	sels := []columnar.Selection{
		{Columns: []string{"s", "dict", "st"}, Rows: &columnar.RowRange{Start: 90, End: 260}},
		{Columns: []string{"ls", "i64"}, Rows: &columnar.RowRange{Start: 0, End: 307}},
	}
	ctx := context.Background()
	for _, tr := range tiers[:2] {
		t.Run(tr.name, func(t *testing.T) {
			c := &counting{Backend: tr.open(t)}
			id := backend.NewID()
			if _, err := c.Put(ctx, id, dataA, backend.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			for k, sel := range sels {
				c.reset()
				first := check(t, c, id, recsA, sel)
				firstBytes, firstOpens := c.bytes.Load(), c.opens.Load()
				c.reset()
				again := check(t, c, id, recsA, sel)
				if tr.name == "disk" {
					// Only the selected buffers (and the dictionary), coalesced.
					// (The first selection's batches are learnt for the second.)
					if c.opens.Load() > firstOpens || c.bytes.Load() > firstBytes || (k == 0 && c.bytes.Load() == firstBytes) {
						t.Fatalf("%v: the second read took %d bytes in %d requests, the first %d in %d",
							sel.Columns, c.bytes.Load(), c.opens.Load(), firstBytes, firstOpens)
					}
					if again.Stats.SelectedBytes != first.Stats.SelectedBytes {
						t.Fatalf("selected %d bytes, then %d", first.Stats.SelectedBytes, again.Stats.SelectedBytes)
					}
				}
			}
			if err := c.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Put(ctx, id, dataB, backend.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, sel := range sels {
				check(t, c, id, recsB, sel)
				check(t, c, id, recsB, columnar.Selection{Columns: sel.Columns, Rows: sel.Rows, Verify: true})
			}
		})
	}
}

// TestConcurrentSelects: selections of one object running at once (the
// first ones learning its layout) all answer the right values.
func TestConcurrentSelects(t *testing.T) {
	recs := makeBatches(t, 100, 0, 150, 57)
	sels := []columnar.Selection{
		{Columns: []string{"s", "i64"}, Rows: &columnar.RowRange{Start: 10, End: 250}},
		{Columns: []string{"ls", "st", "dict", "nul"}, Rows: &columnar.RowRange{Start: 0, End: 307}},
		{Columns: []string{"bin", "flag"}, Rows: &columnar.RowRange{Start: 249, End: 251}},
		{Columns: []string{"dict", "ts"}, Rows: &columnar.RowRange{Start: 250, End: 307}, Verify: true},
	}
	for _, tr := range tiers[:2] {
		t.Run(tr.name, func(t *testing.T) {
			b := tr.open(t)
			id := writeTable(t, b, recs)
			t.Run("group", func(t *testing.T) {
				for k := range 16 {
					sel := sels[k%len(sels)]
					t.Run(fmt.Sprint(k), func(t *testing.T) {
						t.Parallel()
						check(t, b, id, recs, sel)
					})
				}
			})
		})
	}
}
