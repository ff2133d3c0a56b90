package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"distore/backend"
	"distore/client"
	"distore/shmem"
)

// newMemory returns the real memory tier (distore/shmem), set up with
// capacity bytes and torn down when the test ends: the server's tests run on
// a real tier rather than on a copy of one.
func newMemory(t testing.TB, capacity int64) backend.Backend {
	t.Helper()
	b, err := backend.Open(context.Background(), shmem.Name, backend.Config{"capacity": fmt.Sprint(capacity), "prefault": "false"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Teardown(context.Background()) }) // ErrClosed if the test tore it down
	return b
}

// failing is a backend whose ObjectInfo fails with err, to test how the
// server maps a tier's errors to status codes; the rest is the real tier.
type failing struct {
	backend.Backend
	err error
}

func (f failing) ObjectInfo(context.Context, backend.ID) (backend.ObjectInfo, error) {
	return backend.ObjectInfo{}, f.err
}

func (f failing) OpenReader(context.Context, backend.ID, int64, int64) (backend.Reader, error) {
	return nil, f.err
}

func (f failing) Get(context.Context, backend.ID) (backend.Object, error) { return nil, f.err }

// reads counts the store calls a read makes.
type reads struct {
	backend.Backend
	n atomic.Int32
}

func (r *reads) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	r.n.Add(1)
	return r.Backend.ObjectInfo(ctx, id)
}

func (r *reads) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	r.n.Add(1)
	return r.Backend.Get(ctx, id)
}

func (r *reads) OpenReader(ctx context.Context, id backend.ID, off, n int64) (backend.Reader, error) {
	r.n.Add(1)
	return r.Backend.OpenReader(ctx, id, off, n)
}

// A GET of a whole object is one call to the store, and its headers are the
// read's own info.
func TestGetIsOneCall(t *testing.T) {
	ctx := context.Background()
	b := &reads{Backend: newMemory(t, 8<<20)}
	data := randBytes(300 << 10)
	if _, err := b.Put(ctx, "one", data, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	ts, c := start(t, b)
	b.n.Store(0)
	r, err := c.GetReader(ctx, "one", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}
	if info := r.(*client.Reader).Info(); info.Checksum != backend.Checksum(data) || info.Size != int64(len(data)) {
		t.Fatalf("get headers: %+v", info)
	}
	if n := b.n.Load(); n != 1 {
		t.Fatalf("a whole-object GET made %d store calls, want 1", n)
	}
	// A range from its first byte is one call too; one that ends past the
	// object is clamped, which needs the size: the first try fails, then the
	// index and the read (three calls, for this rare case).
	size := int64(len(data))
	for _, tc := range []struct {
		rng      string
		from, to int64 // the bytes served: data[from:to]
		calls    int32
	}{{"bytes=10-99", 10, 100, 1}, {"bytes=1000-", 1000, size, 1}, {fmt.Sprintf("bytes=%d-%d", size-5, size+50), size - 5, size, 3}} {
		b.n.Store(0)
		status, _, body := do(t, "GET", ts.URL+"/v1/objects/one", nil, "Range", tc.rng)
		if status != http.StatusPartialContent || !bytes.Equal(body, data[tc.from:tc.to]) {
			t.Fatalf("%s: %d, %d bytes", tc.rng, status, len(body))
		}
		if n := b.n.Load(); n != tc.calls {
			t.Fatalf("%s made %d store calls, want %d", tc.rng, n, tc.calls)
		}
	}
}
