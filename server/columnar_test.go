package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"distore/backend"
	"distore/client"
	"distore/columnar"
	"distore/disk"
	"distore/shmem"
	"distore/wire"
	"distore/wire/localproto"
)

// columnarTable is 3 batches of (n int64, s string) with nulls in s.
func columnarTable(t *testing.T) (*arrow.Schema, []arrow.RecordBatch) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "n", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float32},
	}, nil)
	var recs []arrow.RecordBatch
	for b, rows := range []int{50, 30, 20} {
		bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for r := range rows {
			v := b*1000 + r
			bld.Field(0).(*array.Int64Builder).Append(int64(v))
			if v%4 == 0 {
				bld.Field(1).(*array.StringBuilder).AppendNull()
			} else {
				bld.Field(1).(*array.StringBuilder).Append(strings.Repeat("x", v%3) + "v")
			}
			bld.Field(2).(*array.Float32Builder).Append(float32(v) / 2)
		}
		recs = append(recs, bld.NewRecordBatch())
		bld.Release()
	}
	t.Cleanup(func() {
		for _, r := range recs {
			r.Release()
		}
	})
	return schema, recs
}

// checkSelection reads columns s and n, rows 40 to 85, of the columnarTable
// stored under id through st, and its schema, and compares them with the table.
func checkSelection(t *testing.T, st client.Store, id backend.ID, schema *arrow.Schema, recs []arrow.RecordBatch) {
	t.Helper()
	ctx := context.Background()
	tbl, err := st.GetColumns(ctx, id, []string{"s", "n"}, &client.Rows{Start: 40, End: 85})
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	want := array.NewTableFromRecords(schema, recs)
	defer want.Release()
	if tbl.NumRows() != 45 || tbl.NumCols() != 2 || tbl.Schema().Field(0).Name != "s" {
		t.Fatalf("got %d rows, schema %v", tbl.NumRows(), tbl.Schema())
	}
	for k, i := range []int{1, 0} {
		w := array.NewChunkedSlice(want.Column(i).Data(), 40, 85)
		if !array.ChunkedEqual(w, tbl.Column(k).Data()) {
			t.Fatalf("column %d: got %v want %v", k, tbl.Column(k).Data(), w)
		}
		w.Release()
	}
	if got, err := st.Schema(ctx, id); err != nil || !got.Equal(schema) {
		t.Fatalf("schema: %v %v", got, err)
	}
}

func TestColumnarHTTP(t *testing.T) {
	for _, name := range []string{"memory", "disk"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var b backend.Backend
			var err error
			if name == "memory" {
				b, err = shmem.New(backend.Config{"capacity": "16MiB"})
			} else {
				b, err = disk.New(backend.Config{"dir": t.TempDir(), "sync": "false"})
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Setup(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Teardown(context.Background()) })
			ts, c := start(t, b)
			schema, recs := columnarTable(t)
			id := backend.NewID()
			if _, err := columnar.Write(ctx, b, id, schema, recs, columnar.WriteOptions{Compression: columnar.Zstd}); err != nil {
				t.Fatal(err)
			}

			checkSelection(t, c, id, schema, recs)
			all, err := c.GetColumns(ctx, id, nil, nil)
			if err != nil || all.NumRows() != 100 || all.NumCols() != 3 {
				t.Fatalf("whole table: %v %v", all, err)
			}
			all.Release()

			notArrow := backend.NewID()
			if _, err := b.Put(ctx, notArrow, []byte("plain bytes, no Arrow here"), backend.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				target string
				status int
				code   string
				says   string
			}{
				{"/v1/objects/" + string(id) + "?columns=n,zz", 400, wire.CodeUnknownColumn, "n,s,f"},
				{"/v1/objects/" + string(id) + "?rows=90:101", 416, wire.CodeBadRange, "100 rows"},
				{"/v1/objects/" + string(id) + "?rows=5:2", 416, wire.CodeBadRange, "5:2"},
				{"/v1/objects/" + string(id) + "?rows=abc", 400, wire.CodeInvalidArgument, "abc"},
				{"/v1/objects/" + string(id) + "?columns=n&limit=3", 400, wire.CodeInvalidArgument, "limit"},
				{"/v1/objects/" + string(id) + "?columns=n&columns=s", 400, wire.CodeInvalidArgument, "2 times"},
				{"/v1/objects/" + string(notArrow) + "?columns=a", 415, wire.CodeNotArrow, "not an Arrow"},
				{"/v1/objects/" + string(notArrow) + "/schema", 415, wire.CodeNotArrow, "not an Arrow"},
				{"/v1/objects/" + string(id) + "/schema?x=1", 400, wire.CodeInvalidArgument, "x"},
				{"/v1/objects/" + string(backend.NewID()) + "/schema", 404, wire.CodeNotFound, "not found"},
			} {
				resp, err := http.Get(ts.URL + c.target)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var eb wire.ErrorBody
				_ = json.Unmarshal(body, &eb)
				if resp.StatusCode != c.status || eb.Code != c.code || !strings.Contains(eb.Message, c.says) {
					t.Errorf("GET %s: %d %s %q, want %d %s saying %q", c.target, resp.StatusCode, eb.Code, eb.Message, c.status, c.code, c.says)
				}
			}
			// The client maps the statuses back to sentinels.
			if _, err := c.GetColumns(ctx, id, []string{"zz"}, nil); !errors.Is(err, backend.ErrInvalidArgument) {
				t.Fatalf("unknown column through the client: %v", err)
			}
			if _, err := c.GetColumns(ctx, notArrow, []string{"a"}, nil); !errors.Is(err, backend.ErrInvalidArgument) {
				t.Fatalf("not Arrow through the client: %v", err)
			}
			// A plain GET still returns the object's bytes.
			data, err := c.Get(ctx, id)
			if err != nil || string(data[:6]) != "ARROW1" {
				t.Fatalf("plain get: %v", err)
			}
		})
	}
}

// TestColumnarLocal reads columns through the local socket: the same
// selections and codes as over HTTP, a stream of several chunks, and the
// connection still in step after a stream and after an error.
func TestColumnarLocal(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t, 64<<20)
	l := e.dial(t)
	schema, recs := columnarTable(t)
	id := backend.NewID()
	if _, err := columnar.Write(ctx, e.st, id, schema, recs, columnar.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkSelection(t, l, id, schema, recs)

	// A table whose stream takes several chunk frames.
	big := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)
	bld := array.NewInt64Builder(memory.DefaultAllocator)
	for i := range 100_000 {
		bld.Append(int64(i) * 7)
	}
	col := bld.NewArray()
	bld.Release()
	rec := array.NewRecordBatch(big, []arrow.Array{col}, 100_000)
	col.Release()
	defer rec.Release()
	bigID := backend.NewID()
	if _, err := columnar.Write(ctx, e.st, bigID, big, []arrow.RecordBatch{rec}, columnar.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	whole, err := l.GetColumns(ctx, bigID, nil, &client.Rows{Start: 10, End: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Release()
	if whole.NumRows() != 99_990 {
		t.Fatalf("got %d rows of %d", whole.NumRows(), 99_990)
	}
	got := whole.Column(0).Data().Chunk(0).(*array.Int64)
	for _, i := range []int{0, 50_000, 99_989} {
		if got.Value(i) != int64(i+10)*7 {
			t.Fatalf("row %d: %d", i, got.Value(i))
		}
	}

	notArrow := backend.NewID()
	if _, err := e.st.Put(ctx, notArrow, []byte("plain bytes, no Arrow here"), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id      backend.ID
		columns []string
		rows    *client.Rows
		code    string
		says    string
	}{
		{id, []string{"n", "zz"}, nil, localproto.CodeUnknownColumn, "n,s,f"},
		{id, nil, &client.Rows{Start: 90, End: 101}, localproto.CodeBadRange, "100 rows"},
		{notArrow, []string{"n"}, nil, localproto.CodeNotArrow, string(notArrow)},
		{"nosuchobject", nil, nil, localproto.CodeNotFound, "nosuchobject"},
		{id, []string{"n", "n"}, nil, localproto.CodeInvalidArgument, "n"},
	} {
		_, err := l.GetColumns(ctx, c.id, c.columns, c.rows)
		var re *localproto.RemoteError
		if !errors.As(err, &re) || re.Code != c.code || !strings.Contains(err.Error(), c.says) {
			t.Fatalf("%v %v %v: %v; want code %s saying %q", c.id, c.columns, c.rows, err, c.code, c.says)
		}
		if want := backend.ErrInvalidArgument; c.code != localproto.CodeNotFound && !errors.Is(err, want) {
			t.Fatalf("%v: not %v", err, want)
		}
	}
	// Still in step: a plain get after the streams and errors.
	obj, err := l.GetObject(ctx, notArrow)
	if err != nil || string(obj.Bytes()) != "plain bytes, no Arrow here" {
		t.Fatalf("get after the streams: %v", err)
	}
	obj.Close()
}
