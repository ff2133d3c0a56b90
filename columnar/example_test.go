package columnar_test

import (
	"context"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"distore/backend"
	"distore/columnar"
)

// Store a table in the memory tier, read two columns of three rows, print
// them as CSV.
func Example() {
	ctx := context.Background()
	b, err := backend.Open(ctx, "memory", backend.Config{"capacity": "16MiB"})
	if err != nil {
		panic(err)
	}
	defer b.Teardown(ctx)

	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer bld.Release()
	bld.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 3, 4, 5}, nil)
	bld.Field(1).(*array.StringBuilder).AppendValues([]string{"ann", "bob", "cyd", "dan", "eve"}, nil)
	bld.Field(2).(*array.Float64Builder).AppendValues([]float64{0.5, 0.25, 1, 0.75, 0.125}, nil)
	rec := bld.NewRecordBatch()
	defer rec.Release()

	id := backend.NewID()
	if _, err := columnar.Write(ctx, b, id, schema, []arrow.RecordBatch{rec}, columnar.WriteOptions{}); err != nil {
		panic(err)
	}
	res, err := columnar.Select(ctx, b, id, columnar.Selection{
		Columns: []string{"name", "score"}, Rows: &columnar.RowRange{Start: 1, End: 4}})
	if err != nil {
		panic(err)
	}
	defer res.Close()
	fmt.Println("zero-copy:", res.Stats.ZeroCopy)
	r, _ := res.Reader()
	defer r.Release()
	if err := columnar.WriteCSV(os.Stdout, r); err != nil {
		panic(err)
	}
	// Output:
	// zero-copy: true
	// name,score
	// bob,0.25
	// cyd,1
	// dan,0.75
}
