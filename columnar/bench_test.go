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
// memory tier (the bench suite "columnar" compares the tiers).
func BenchmarkSelectMemory(b *testing.B) {
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
		res, err := columnar.Select(ctx, mem, id, sel)
		if err != nil {
			b.Fatal(err)
		}
		res.Close()
	}
}
