package columnar_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"distore/backend"
	"distore/columnar"
)

// BenchmarkSelectMemory: 2 of 32 columns, 10% of the rows, zero-copy from the
// memory tier (the bench suite "columnar" compares the tiers), the layout
// cached.
func BenchmarkSelectMemory(b *testing.B) { benchSelectMemory(b, false) }

// BenchmarkSelectMemoryCold is BenchmarkSelectMemory with the layout learnt
// anew by each selection.
func BenchmarkSelectMemoryCold(b *testing.B) { benchSelectMemory(b, true) }

func benchSelectMemory(b *testing.B, cold bool) {
	var fields []arrow.Field
	for i := range 32 {
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("c%d", i), Type: arrow.PrimitiveTypes.Int64})
	}
	schema := arrow.NewSchema(fields, nil)
	var recs []arrow.RecordBatch
	for range 32 {
		cols := make([]arrow.Array, 32)
		for c := range cols {
			bld := array.NewInt64Builder(memory.DefaultAllocator)
			bld.AppendValues(make([]int64, 1000), nil)
			cols[c] = bld.NewArray()
			bld.Release()
		}
		recs = append(recs, array.NewRecordBatch(schema, cols, 1000))
	}
	ctx := context.Background()
	mem, err := backend.Open(ctx, "memory", backend.Config{"capacity": "64MiB"})
	if err != nil {
		b.Fatal(err)
	}
	defer mem.Teardown(ctx)
	id := backend.NewID()
	if _, err := columnar.Write(ctx, mem, id, schema, recs, columnar.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	sel := columnar.Selection{Columns: []string{"c0", "c7"}, Rows: &columnar.RowRange{Start: 14500, End: 17700}}
	b.ResetTimer()
	for b.Loop() {
		if cold {
			columnar.ForgetLayoutsForTest()
		}
		res, err := columnar.Select(ctx, mem, id, sel)
		if err != nil {
			b.Fatal(err)
		}
		res.Close()
	}
}

// benchTable is the bench suite's shape at a smaller size: 32 batches of
// rows rows, 24 number columns and 8 string columns.
func benchTable(b testing.TB, rows int) (*arrow.Schema, []arrow.RecordBatch) {
	var fields []arrow.Field
	for i := range 32 {
		typ := arrow.DataType(arrow.PrimitiveTypes.Int64)
		if i%4 == 3 {
			typ = arrow.BinaryTypes.String
		}
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("c%d", i), Type: typ})
	}
	schema := arrow.NewSchema(fields, nil)
	var recs []arrow.RecordBatch
	for range 32 {
		cols := make([]arrow.Array, 32)
		for c, f := range fields {
			if f.Type.ID() == arrow.STRING {
				bld := array.NewStringBuilder(memory.DefaultAllocator)
				for r := range rows {
					bld.Append(fmt.Sprintf("value-%08d", r))
				}
				cols[c] = bld.NewArray()
				bld.Release()
				continue
			}
			bld := array.NewInt64Builder(memory.DefaultAllocator)
			bld.AppendValues(make([]int64, rows), nil)
			cols[c] = bld.NewArray()
			bld.Release()
		}
		recs = append(recs, array.NewRecordBatch(schema, cols, int64(rows)))
	}
	return schema, recs
}

// BenchmarkSelectDisk: 2 of 32 columns, 10% of the rows of a 128 MiB table
// from the disk tier (ranged reads), the layout cached.
func BenchmarkSelectDisk(b *testing.B) { benchSelectDisk(b, false) }

// BenchmarkSelectDiskCold is BenchmarkSelectDisk with the layout learnt
// anew by each selection (footer and batch metadata read).
func BenchmarkSelectDiskCold(b *testing.B) { benchSelectDisk(b, true) }

func benchSelectDisk(b *testing.B, cold bool) {
	schema, recs := benchTable(b, 20000)
	ctx := context.Background()
	d, err := backend.Open(ctx, "disk", backend.Config{"dir": b.TempDir(), "sync": "false"})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Teardown(ctx)
	id := backend.NewID()
	if _, err := columnar.Write(ctx, d, id, schema, recs, columnar.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	sel := columnar.Selection{Columns: []string{"c0", "c7"}, Rows: &columnar.RowRange{Start: 14 * 20000, End: 17*20000 + 4000}}
	b.ResetTimer()
	for b.Loop() {
		if cold {
			columnar.ForgetLayoutsForTest()
		}
		res, err := columnar.Select(ctx, d, id, sel)
		if err != nil {
			b.Fatal(err)
		}
		res.Close()
	}
}
