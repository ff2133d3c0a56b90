package columnar_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"distore/backend"
	"distore/columnar"
	_ "distore/disk"
	_ "distore/remote/s3"
	_ "distore/shmem"
)

// allTypes is a schema with every type family the package claims.
var allTypes = arrow.NewSchema([]arrow.Field{
	{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64},
	{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "ls", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
	{Name: "st", Type: arrow.StructOf(
		arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		arrow.Field{Name: "y", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
	{Name: "dict", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.BinaryTypes.String}, Nullable: true},
	{Name: "nul", Type: arrow.Null, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
}, nil)

var sharedDict = func() arrow.Array {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues([]string{"red", "green", "blue"}, nil)
	return b.NewArray()
}()

// makeBatches builds batches of the given row counts; row r of the table has
// values derived from r (and nulls every 7th row where nullable).
func makeBatches(t testing.TB, rows ...int) []arrow.RecordBatch {
	t.Helper()
	mem := memory.DefaultAllocator
	var out []arrow.RecordBatch
	base := 0
	for _, n := range rows {
		bld := array.NewRecordBuilder(mem, allTypes)
		// One dictionary for every batch: an IPC file has one per field.
		indices := array.NewInt16Builder(mem)
		for r := base; r < base+n; r++ {
			null := r%7 == 3
			app := func(i int, f func()) {
				if null && i == 7 {
					indices.AppendNull()
				} else if null && allTypes.Field(i).Nullable {
					bld.Field(i).AppendNull()
				} else {
					f()
				}
			}
			app(0, func() { bld.Field(0).(*array.Int64Builder).Append(int64(r) * 1_000_003) })
			bld.Field(1).(*array.Float64Builder).Append(float64(r) / 8)
			app(2, func() { bld.Field(2).(*array.BooleanBuilder).Append(r%3 == 0) })
			app(3, func() { bld.Field(3).(*array.StringBuilder).Append(strings.Repeat("s", r%5) + fmt.Sprint(r)) })
			app(4, func() { bld.Field(4).(*array.BinaryBuilder).Append([]byte{byte(r), byte(r >> 8), 0xFF}) })
			app(5, func() {
				lb := bld.Field(5).(*array.ListBuilder)
				lb.Append(true)
				for k := 0; k < r%4; k++ {
					lb.ValueBuilder().(*array.Int32Builder).Append(int32(r + k))
				}
			})
			app(6, func() {
				sb := bld.Field(6).(*array.StructBuilder)
				sb.Append(true)
				sb.FieldBuilder(0).(*array.Int16Builder).Append(int16(r))
				if r%5 == 0 {
					sb.FieldBuilder(1).(*array.StringBuilder).AppendNull()
				} else {
					sb.FieldBuilder(1).(*array.StringBuilder).Append(fmt.Sprintf("y%d", r))
				}
			})
			app(7, func() { indices.Append(int16(r % 3)) })
			bld.Field(8).(*array.NullBuilder).AppendNull()
			app(9, func() { bld.Field(9).(*array.TimestampBuilder).Append(arrow.Timestamp(int64(r) * 1e6)) })
		}
		bld.Field(7).AppendNulls(n) // a placeholder, replaced by the shared dictionary
		rec := bld.NewRecordBatch()
		cols := slices.Clone(rec.Columns())
		idx := indices.NewArray()
		cols[7] = array.NewDictionaryArray(allTypes.Field(7).Type, idx, sharedDict)
		out = append(out, array.NewRecordBatch(allTypes, cols, int64(n)))
		cols[7].Release()
		idx.Release()
		rec.Release()
		indices.Release()
		bld.Release()
		base += n
	}
	return out
}

// expected is the table's columns idx, rows [lo, hi), as chunked arrays.
func expected(schema *arrow.Schema, recs []arrow.RecordBatch, idx []int, lo, hi int64) []*arrow.Chunked {
	tbl := array.NewTableFromRecords(schema, recs)
	defer tbl.Release()
	out := make([]*arrow.Chunked, len(idx))
	for k, i := range idx {
		out[k] = array.NewChunkedSlice(tbl.Column(i).Data(), lo, hi)
	}
	return out
}

// got is the result's columns as chunked arrays.
func got(res interface {
	NumRows() int64
}, schema *arrow.Schema, recs []arrow.RecordBatch) []*arrow.Chunked {
	tbl := array.NewTableFromRecords(schema, recs)
	defer tbl.Release()
	out := make([]*arrow.Chunked, tbl.NumCols())
	for i := range out {
		c := tbl.Column(i).Data()
		c.Retain()
		out[i] = c
	}
	return out
}

// tier is a backend for the tests, with the bytes read through it counted.
type tier struct {
	name string
	open func(t *testing.T) backend.Backend
}

var tiers = []tier{
	{"memory", func(t *testing.T) backend.Backend {
		return openTier(t, "memory", backend.Config{"capacity": "256MiB"})
	}},
	{"disk", func(t *testing.T) backend.Backend {
		return openTier(t, "disk", backend.Config{"dir": t.TempDir(), "sync": "false"})
	}},
	{"s3", func(t *testing.T) backend.Backend {
		ep := os.Getenv("DISTORE_S3_ENDPOINT")
		if ep == "" || os.Getenv("AWS_ACCESS_KEY_ID") == "" {
			why := "no S3 endpoint: source /work/ceph-shared/env.sh (DISTORE_S3_ENDPOINT, AWS_*)"
			if os.Getenv("CI") == "true" {
				t.Fatal(why)
			}
			t.Skip(why)
		}
		bucket := os.Getenv("DISTORE_S3_BUCKET")
		if bucket == "" {
			bucket = "distore-test"
		}
		b := openTier(t, "s3", backend.Config{"endpoint": ep, "bucket": bucket, "create_bucket": "true",
			"prefix": fmt.Sprintf("columnar-%s-%s/", strings.ReplaceAll(t.Name(), "/", "_"), backend.NewID()[:8])})
		t.Cleanup(func() { // remove what the test wrote
			ctx := context.Background()
			infos, _ := b.List(ctx, backend.ListOptions{})
			for _, in := range infos {
				_ = b.Delete(ctx, in.ID)
			}
		})
		return b
	}},
}

func openTier(t *testing.T, name string, cfg backend.Config) backend.Backend {
	t.Helper()
	b, err := backend.Open(context.Background(), name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Teardown(context.Background()) })
	return b
}

// counting wraps a backend and counts what is read through it.
type counting struct {
	backend.Backend
	bytes, opens, gets atomic.Int64
}

func (c *counting) OpenReader(ctx context.Context, id backend.ID, off, n int64) (backend.Reader, error) {
	rc, err := c.Backend.OpenReader(ctx, id, off, n)
	if err != nil {
		return nil, err
	}
	c.opens.Add(1)
	return &countingReader{rc, &c.bytes}, nil
}

func (c *counting) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	c.gets.Add(1)
	return c.Backend.Get(ctx, id)
}

func (c *counting) reset() { c.bytes.Store(0); c.opens.Store(0); c.gets.Store(0) }

type countingReader struct {
	backend.Reader
	n *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// writeTable stores recs (of schema allTypes) in b under a new ID.
func writeTable(t *testing.T, b backend.Backend, recs []arrow.RecordBatch) backend.ID {
	t.Helper()
	id := backend.NewID()
	if _, err := columnar.Write(context.Background(), b, id, allTypes, recs, columnar.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return id
}
