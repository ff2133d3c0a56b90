package columnar

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FuzzLayoutIndex: any MetaLayout value decodes to templates whose buffers
// lie in their batch's body, or to an error; never a panic.
func FuzzLayoutIndex(f *testing.F) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String},
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int16})},
	}, nil)
	var recs []arrow.RecordBatch
	for _, n := range []int{3, 5} {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for r := range n {
			b.Field(0).(*array.Int64Builder).Append(int64(r))
			b.Field(1).(*array.StringBuilder).Append("v")
			b.Field(2).(*array.ListBuilder).Append(true)
			b.Field(2).(*array.ListBuilder).ValueBuilder().(*array.Int32Builder).Append(int32(r))
			b.Field(3).(*array.StructBuilder).Append(true)
			b.Field(3).(*array.StructBuilder).FieldBuilder(0).(*array.Int16Builder).Append(int16(r))
		}
		recs = append(recs, b.NewRecordBatch())
		b.Release()
	}
	data, err := Encode(schema, recs, WriteOptions{})
	if err != nil {
		f.Fatal(err)
	}
	for _, enc := range batchLayouts(f, data) {
		f.Add([]byte(enc))
		f.Add([]byte(enc[:len(enc)/2]))
	}
	f.Add([]byte("AQQAAAA="))
	body := byteRange{off: 64, n: 4096}
	f.Fuzz(func(t *testing.T, enc []byte) {
		x, err := parseIndex(enc, 1, schema.NumFields())
		if err != nil {
			return
		}
		for c := range schema.NumFields() {
			tm, _, err := x.template(c, schema.Field(c).Type, 5, body)
			if err != nil || tm == nil {
				continue
			}
			for _, r := range tm.ranges(nil) {
				if r.off < body.off || r.end() > body.end() {
					t.Fatalf("buffer [%d, %d) outside the body", r.off, r.end())
				}
			}
		}
	})
}

// batchLayouts returns the MetaLayout value of each batch of an encoded file.
func batchLayouts(f *testing.F, data []byte) []string {
	fr, err := openFileReader(data)
	if err != nil {
		f.Fatal(err)
	}
	defer fr.Close()
	var out []string
	for i := range fr.NumRecords() {
		rec, err := fr.RecordBatchAt(i)
		if err != nil {
			f.Fatal(err)
		}
		md := rec.(arrow.RecordBatchWithMetadata).Metadata()
		out = append(out, md.Values()[md.FindKey(MetaLayout)])
		rec.Release()
	}
	return out
}
