package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"distore/backend"
	"distore/client"
	"distore/columnar"
	"distore/server"
)

// startLocalServer serves a 64 MiB memory tier over HTTP and over a local
// socket in dir, and returns both addresses.
func startLocalServer(dir string) (httpURL, socket string, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	mem, err := backend.Open(ctx, "memory", backend.Config{"capacity": "64MiB", "prefault": "false"})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(mem, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	socket = filepath.Join(dir, "distore.sock")
	ln, err := server.ListenLocal(socket, "")
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.ServeLocal(ctx, ln); close(done) }()
	return ts.URL, "unix://" + socket, func() { cancel(); <-done; ts.Close(); mem.Teardown(context.Background()) }
}

func TestLocalZeroCopy(t *testing.T) {
	ctx := context.Background()
	httpURL, socket, stop := startLocalServer(t.TempDir())
	defer stop()
	hc, err := client.Open(ctx, httpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	lc, err := client.Open(ctx, socket)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	if _, ok := lc.(*client.Local); !ok {
		t.Fatalf("Open(%q) is a %T", socket, lc)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	info, err := hc.Put(ctx, data, client.PutOptions{})     // over HTTP
	if err != nil {
		t.Fatal(err)
	}
	a, err := lc.GetObject(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := lc.GetObject(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), data) || a.Info().Checksum != info.Checksum {
		t.Fatal("local get differs")
	}
	if unsafe.SliceData(a.Bytes()) != unsafe.SliceData(b.Bytes()) {
		t.Fatal("two gets of one object are at different addresses: not the shared mapping")
	}
	// Deleted while open: the bytes stay until Close.
	if err := lc.Delete(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), data) {
		t.Fatal("bytes changed after a delete while open")
	}
	a.Close()
	b.Close()
	if _, err := hc.Info(ctx, info.ID); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// A local put read back over HTTP.
	info, err = lc.Put(ctx, data, client.PutOptions{ID: "from-local"})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := hc.GetObject(ctx, "from-local")
	if err != nil || !bytes.Equal(obj.Bytes(), data) || obj.Info().Checksum != info.Checksum {
		t.Fatalf("http get of a local put: %v", err)
	}
	obj.Close()
}

func ExampleLocal() {
	dir, _ := os.MkdirTemp("", "distore-example")
	defer os.RemoveAll(dir)
	_, socket, stop := startLocalServer(dir)
	defer stop()

	ctx := context.Background()
	c, err := client.DialLocal(ctx, socket) // "unix:///path/to/distore.sock"
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	info, err := c.Put(ctx, []byte("trajectory 42"), client.PutOptions{Importance: 5})
	if err != nil {
		log.Fatal(err)
	}
	obj, err := c.GetObject(ctx, info.ID) // read in place: no copy
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(obj.Bytes()), obj.Info().Tier)
	obj.Close() // the server may free or move it again
	// Output: trajectory 42 memory
}

func ExampleLocal_GetColumns() {
	dir, _ := os.MkdirTemp("", "distore-example")
	defer os.RemoveAll(dir)
	_, socket, stop := startLocalServer(dir)
	defer stop()

	ctx := context.Background()
	c, err := client.DialLocal(ctx, socket)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// A table of two columns, stored as an Arrow IPC file.
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "step", Type: arrow.PrimitiveTypes.Int64},
		{Name: "reward", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range 10 {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.Float64Builder).Append(float64(i) / 4)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	file, err := columnar.Encode(schema, []arrow.RecordBatch{rec}, columnar.WriteOptions{})
	if err != nil {
		log.Fatal(err)
	}
	info, err := c.Put(ctx, file, client.PutOptions{})
	if err != nil {
		log.Fatal(err)
	}
	// One column, rows 4 to 6: the server reads only that column's bytes.
	tbl, err := c.GetColumns(ctx, info.ID, []string{"reward"}, &client.Rows{Start: 4, End: 7})
	if err != nil {
		log.Fatal(err)
	}
	defer tbl.Release()
	fmt.Println(tbl.Schema().Field(0).Name, tbl.Column(0).Data().Chunk(0))
	// Output: reward [1 1.25 1.5]
}
