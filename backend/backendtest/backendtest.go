// Package backendtest is the conformance suite every distore backend runs, in
// the spirit of gocloud.dev/blob's drivertest: one call checks the whole
// Backend contract of docs/design.md.
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, backendtest.Factory{New: func(t testing.TB, capacity int64) backend.Backend {
//			return newSetUpTier(t, capacity)
//		}})
//	}
package backendtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"distore/backend"
)

// Factory makes the backends the suite tests.
type Factory struct {
	// New returns a fresh backend, already set up, that can hold at least
	// capacity bytes. The suite asks small capacities to test ErrFull and
	// BigCapacity for the large round trips. The suite tears it down.
	New func(t testing.TB, capacity int64) backend.Backend
	// Make returns a fresh backend like New but NOT set up, so the suite can
	// check the lifecycle: every call before Setup and after Teardown fails
	// with ErrClosed. With Make set, New may be nil (the suite calls Setup).
	Make func(t testing.TB, capacity int64) backend.Backend
	// Restart, for a persistent backend, returns a new backend over the same
	// storage as b (which the suite has torn down), set up: the suite checks
	// what survives a restart. The contract: objects (bytes, size,
	// checksum), importance and creation time survive; pins do not (a pin is
	// a hold by a live client, and the holders are gone with the process:
	// pins that survived would never be released), so after a restart every
	// object has no pins and can be deleted.
	Restart func(t testing.TB, b backend.Backend) backend.Backend
	// Unbounded is set for a backend without a capacity limit: the ErrFull test
	// is skipped.
	Unbounded bool
}

// BigCapacity is the capacity the suite asks for when it needs room for its
// largest objects (64 MiB, twice, plus headroom).
const BigCapacity = 256 << 20

// Sizes are the round-trip sizes the suite checks.
var Sizes = []int64{0, 1, 4 << 10, 1<<20 + 1, 64 << 20}

// Run runs the conformance suite.
func Run(t *testing.T, f Factory) {
	f = f.withNew()
	if f.New == nil {
		t.Fatal("backendtest: Factory.New and Factory.Make are nil")
	}
	s := &suite{f: f}
	if f.Make != nil {
		t.Run("Lifecycle", s.lifecycle)
	}
	if f.Restart != nil {
		t.Run("Restart", s.restart)
	}
	t.Run("RoundTrip", s.roundTrip)
	t.Run("Writer", s.writer)
	t.Run("RangeReads", s.ranges)
	t.Run("NotFound", s.notFound)
	t.Run("Exists", s.exists)
	t.Run("ChecksumOption", s.checksumOption)
	t.Run("DeleteWhileOpen", s.deleteWhileOpen)
	t.Run("Pins", s.pins)
	t.Run("List", s.list)
	t.Run("Stats", s.stats)
	t.Run("Full", s.full)
	t.Run("InvalidIDs", s.invalidIDs)
	t.Run("CancelledContext", s.cancelled)
	t.Run("AfterTeardown", s.afterTeardown)
	t.Run("Concurrent", s.concurrent)
}

// withNew returns f with New made from Make (and Setup) when only Make is set.
func (f Factory) withNew() Factory {
	if f.New == nil && f.Make != nil {
		f.New = func(t testing.TB, capacity int64) backend.Backend {
			b := f.Make(t, capacity)
			if err := b.Setup(context.Background()); err != nil {
				t.Fatalf("Setup: %v", err)
			}
			return b
		}
	}
	return f
}

// RunRestart runs only the suite's restart test (f.New and f.Restart), for a
// backend that persists only in some configurations.
func RunRestart(t *testing.T, f Factory) {
	if f.New == nil || f.Restart == nil {
		t.Fatal("backendtest: RunRestart needs Factory.New and Factory.Restart")
	}
	s := &suite{f: f}
	t.Run("Restart", s.restart)
}

type suite struct{ f Factory }

// open returns a fresh backend of at least capacity bytes, torn down at cleanup.
func (s *suite) open(t *testing.T, capacity int64) backend.Backend {
	t.Helper()
	b := s.f.New(t, capacity)
	t.Cleanup(func() {
		if err := b.Teardown(context.Background()); err != nil && !errors.Is(err, backend.ErrClosed) {
			t.Errorf("Teardown: %v", err)
		}
	})
	return b
}

// tierName is what the backend calls itself, which every error must name.
func tierName(t *testing.T, b backend.Backend) string {
	t.Helper()
	st, err := b.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.Tier == "" {
		t.Fatal("Stats.Tier is empty: a backend must name itself")
	}
	return st.Tier
}

var idSeq atomic.Int64

// newID returns a unique valid ID with a readable prefix.
func newID(prefix string) backend.ID {
	return backend.ID(fmt.Sprintf("%s-%d-%s", prefix, idSeq.Add(1), backend.NewID()[:8]))
}

// Payload returns n deterministic pseudo-random bytes, different for each
// seed and at every 4 KiB page (each page starts with seed and its offset),
// cheaply (whole-block copies keep -race fast). Tiers' tests use it for data
// to store and compare.
func Payload(n int64, seed uint64) []byte {
	b := make([]byte, n)
	var block [64 << 10]byte
	r := rand.New(rand.NewPCG(seed, uint64(n)^0x5eed))
	for i := 0; i < len(block); i += 8 {
		binary.LittleEndian.PutUint64(block[i:], r.Uint64())
	}
	for off := 0; off < len(b); off += len(block) {
		copy(b[off:], block[:])
	}
	for off := 0; off+16 <= len(b); off += 4096 {
		binary.LittleEndian.PutUint64(b[off:], seed)
		binary.LittleEndian.PutUint64(b[off+8:], uint64(off))
	}
	return b
}

func wantErr(t *testing.T, what string, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: err = %v, want %v", what, err, sentinel)
	}
}

// wantNamed checks that err names the tier and the object.
func wantNamed(t *testing.T, what string, err error, tier string, id backend.ID) {
	t.Helper()
	if err == nil {
		return
	}
	if msg := err.Error(); !strings.Contains(msg, tier) || !strings.Contains(msg, string(id)) {
		t.Errorf("%s: error %q does not name tier %q and object %q", what, msg, tier, id)
	}
}

// readAll reads the object through Get and checks it is want.
func checkGet(t *testing.T, b backend.Backend, id backend.ID, want []byte) {
	t.Helper()
	ctx := context.Background()
	obj, err := b.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	defer obj.Close()
	got := obj.Bytes()
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%s): %d bytes differ from the %d put", id, len(got), len(want))
	}
	info := obj.Info()
	if info.ID != id || info.Size != int64(len(want)) || info.Checksum != backend.Checksum(want) {
		t.Fatalf("Get(%s).Info = %+v; want size %d checksum %08x", id, info, len(want), backend.Checksum(want))
	}
	if len(want) > 0 {
		p := make([]byte, 1)
		if n, err := obj.ReadAt(p, int64(len(want)-1)); n != 1 || (err != nil && err != io.EOF) || p[0] != want[len(want)-1] {
			t.Fatalf("Get(%s).ReadAt last byte = %d, %v", id, n, err)
		}
	}
}

func checkReader(t *testing.T, b backend.Backend, id backend.ID, off, n int64, want []byte) {
	t.Helper()
	r, err := b.OpenReader(context.Background(), id, off, n)
	if err != nil {
		t.Fatalf("OpenReader(%s, %d, %d): %v", id, off, n, err)
	}
	got, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("OpenReader(%s, %d, %d) read: %v", id, off, n, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("OpenReader(%s, %d, %d) = %d bytes, want %d (contents differ: %v)", id, off, n, len(got), len(want), len(got) == len(want))
	}
	// The reader carries the info of the object it read.
	info, err := b.ObjectInfo(context.Background(), id)
	if err != nil {
		t.Fatalf("ObjectInfo(%s): %v", id, err)
	}
	if ri := r.Info(); ri.ID != id || ri.Size != info.Size || ri.Checksum != info.Checksum || ri.Tier != info.Tier {
		t.Fatalf("OpenReader(%s).Info = %+v; want the object's info %+v", id, ri, info)
	}
}

// writeStream writes data through OpenWriter in uneven chunks and closes it.
func writeStream(ctx context.Context, b backend.Backend, id backend.ID, data []byte, opts backend.PutOptions) error {
	w, err := b.OpenWriter(ctx, id, int64(len(data)), opts)
	if err != nil {
		return err
	}
	chunk := 1
	for off := 0; off < len(data); {
		n := min(chunk, len(data)-off)
		if _, err := w.Write(data[off : off+n]); err != nil {
			_ = w.Abort()
			return err
		}
		off += n
		chunk = chunk*3 + 7 // 1, 10, 37, ... up to multi-MiB writes
		if chunk > 8<<20 {
			chunk = 3<<20 + 1
		}
	}
	return w.Close()
}

func (s *suite) roundTrip(t *testing.T) {
	b := s.open(t, BigCapacity)
	ctx := context.Background()
	level := b.Level()
	for i, size := range Sizes {
		data := Payload(size, uint64(i))
		t.Run(fmt.Sprintf("Put/%d", size), func(t *testing.T) {
			id := newID("put")
			info, err := b.Put(ctx, id, data, backend.PutOptions{Importance: 7})
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if info.ID != id || info.Size != size || info.Checksum != backend.Checksum(data) || info.Importance != 7 {
				t.Fatalf("Put info = %+v", info)
			}
			if info.Level == 0 || !level.Contains(info.Level) || info.Tier == "" {
				t.Fatalf("Put info level %v tier %q, backend level %v", info.Level, info.Tier, level)
			}
			if info.Created.IsZero() || time.Since(info.Created) > time.Hour {
				t.Fatalf("Put info created = %v", info.Created)
			}
			checkGet(t, b, id, data)
			checkReader(t, b, id, 0, -1, data)
			got, err := b.ObjectInfo(ctx, id)
			if err != nil || got.Size != size || got.Checksum != info.Checksum || got.Importance != 7 || got.Pins != 0 {
				t.Fatalf("ObjectInfo = %+v, %v", got, err)
			}
			if err := b.Prefetch(ctx, id); err != nil {
				t.Fatalf("Prefetch: %v", err)
			}
			if err := b.Delete(ctx, id); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			_, err = b.Get(ctx, id)
			wantErr(t, "Get after Delete", err, backend.ErrNotFound)
		})
		t.Run(fmt.Sprintf("Writer/%d", size), func(t *testing.T) {
			id := newID("stream")
			created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
			if err := writeStream(ctx, b, id, data, backend.PutOptions{Importance: -3, Created: created}); err != nil {
				t.Fatalf("stream write: %v", err)
			}
			checkGet(t, b, id, data)
			checkReader(t, b, id, 0, -1, data)
			info, err := b.ObjectInfo(ctx, id)
			if err != nil || info.Importance != -3 || !info.Created.Equal(created) {
				t.Fatalf("ObjectInfo = %+v, %v; want importance -3, created %v kept", info, err, created)
			}
			if err := b.Delete(ctx, id); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		})
	}
}

func (s *suite) writer(t *testing.T) {
	b := s.open(t, 16<<20)
	ctx := context.Background()
	data := Payload(100<<10, 42)
	invisible := func(t *testing.T, id backend.ID) {
		t.Helper()
		if _, err := b.ObjectInfo(ctx, id); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("failed write is visible: ObjectInfo = %v", err)
		}
		if _, err := b.Get(ctx, id); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("failed write is visible: Get = %v", err)
		}
		list, err := b.List(ctx, backend.ListOptions{Prefix: string(id)})
		if err != nil || len(list) != 0 {
			t.Fatalf("failed write is listed: %v, %v", list, err)
		}
		// The ID is free again and space was given back.
		if _, err := b.Put(ctx, id, data[:10], backend.PutOptions{}); err != nil {
			t.Fatalf("Put after a failed write of the same ID: %v", err)
		}
		if err := b.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("Commit", func(t *testing.T) {
		id := newID("commit")
		w, err := b.OpenWriter(ctx, id, int64(len(data)), backend.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data[:1000]); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ObjectInfo(ctx, id); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("half-written object visible: %v", err)
		}
		if _, err := w.Write(data[1000:]); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Errorf("Abort after Close: %v", err)
		}
		checkGet(t, b, id, data)
	})
	t.Run("Abort", func(t *testing.T) {
		id := newID("abort")
		w, err := b.OpenWriter(ctx, id, int64(len(data)), backend.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data[:5000]); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		invisible(t, id)
	})
	t.Run("ContextCancelled", func(t *testing.T) {
		id := newID("cancel")
		wctx, cancel := context.WithCancel(ctx)
		w, err := b.OpenWriter(wctx, id, int64(len(data)), backend.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(data[:len(data)/2])
		cancel()
		_, _ = w.Write(data[len(data)/2:])
		if err := w.Close(); err == nil {
			t.Fatal("Close after the context was cancelled succeeded")
		}
		invisible(t, id)
	})
	t.Run("TooManyBytes", func(t *testing.T) {
		id := newID("more")
		w, err := b.OpenWriter(ctx, id, 100, backend.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, werr := w.Write(data[:150])
		cerr := w.Close()
		if werr == nil && cerr == nil {
			t.Fatal("writing 150 bytes into a 100-byte writer succeeded")
		}
		if werr != nil {
			wantErr(t, "Write past size", werr, backend.ErrInvalidArgument)
		}
		invisible(t, id)
	})
	t.Run("TooFewBytes", func(t *testing.T) {
		id := newID("fewer")
		w, err := b.OpenWriter(ctx, id, 100, backend.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data[:99]); err != nil {
			t.Fatal(err)
		}
		err = w.Close()
		wantErr(t, "Close with 99 of 100 bytes", err, backend.ErrInvalidArgument)
		invisible(t, id)
	})
	t.Run("NegativeSize", func(t *testing.T) {
		_, err := b.OpenWriter(ctx, newID("neg"), -1, backend.PutOptions{})
		wantErr(t, "OpenWriter size -1", err, backend.ErrInvalidArgument)
	})
	t.Run("ExistingID", func(t *testing.T) {
		id := newID("exists")
		if _, err := b.Put(ctx, id, data[:10], backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		err := writeStream(ctx, b, id, data[:20], backend.PutOptions{})
		wantErr(t, "stream write over an existing ID", err, backend.ErrExists)
		checkGet(t, b, id, data[:10])
	})
	t.Run("ConcurrentSameID", func(t *testing.T) {
		id := newID("race")
		var wg sync.WaitGroup
		var ok atomic.Int32
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := writeStream(ctx, b, id, Payload(3000, uint64(i)), backend.PutOptions{}); err == nil {
					ok.Add(1)
				} else if !errors.Is(err, backend.ErrExists) {
					t.Errorf("concurrent write: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("%d concurrent writers of one ID succeeded, want exactly 1", ok.Load())
		}
	})
}

func (s *suite) ranges(t *testing.T) {
	b := s.open(t, 16<<20)
	ctx := context.Background()
	id := newID("range")
	data := Payload(3<<20+17, 7)
	if _, err := b.Put(ctx, id, data, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	for _, r := range [][2]int64{{0, 0}, {0, 1}, {1, 10}, {4095, 2}, {1 << 20, 1 << 20}, {size - 1, 1}, {size, 0}, {size - 100, -1}, {12345, -1}, {0, size}} {
		end := size
		if r[1] >= 0 {
			end = r[0] + r[1]
		}
		checkReader(t, b, id, r[0], r[1], data[r[0]:end])
	}
	for _, r := range [][2]int64{{-1, 10}, {0, size + 1}, {size + 1, -1}, {size - 1, 2}, {5, -2}} {
		_, err := b.OpenReader(ctx, id, r[0], r[1])
		wantErr(t, fmt.Sprintf("OpenReader(%d, %d)", r[0], r[1]), err, backend.ErrInvalidArgument)
	}
	obj, err := b.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	p := make([]byte, 1000)
	if n, err := obj.ReadAt(p, 2<<20); n != 1000 || err != nil || !bytes.Equal(p, data[2<<20:2<<20+1000]) {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if n, err := obj.ReadAt(p, size-10); n != 10 || err != io.EOF {
		t.Fatalf("ReadAt past end = %d, %v; want 10, EOF", n, err)
	}
}

func (s *suite) notFound(t *testing.T) {
	b := s.open(t, 1<<20)
	tier := tierName(t, b)
	ctx := context.Background()
	id := newID("missing")
	_, err := b.Get(ctx, id)
	wantErr(t, "Get", err, backend.ErrNotFound)
	wantNamed(t, "Get", err, tier, id)
	_, err = b.ObjectInfo(ctx, id)
	wantErr(t, "ObjectInfo", err, backend.ErrNotFound)
	_, err = b.OpenReader(ctx, id, 0, -1)
	wantErr(t, "OpenReader", err, backend.ErrNotFound)
	wantErr(t, "Delete", b.Delete(ctx, id), backend.ErrNotFound)
	wantNamed(t, "Delete", b.Delete(ctx, id), tier, id)
	wantErr(t, "Pin", b.Pin(ctx, id), backend.ErrNotFound)
	wantErr(t, "Unpin", b.Unpin(ctx, id), backend.ErrNotFound)
	wantErr(t, "Prefetch", b.Prefetch(ctx, id), backend.ErrNotFound)
}

func (s *suite) exists(t *testing.T) {
	b := s.open(t, 1<<20)
	tier := tierName(t, b)
	ctx := context.Background()
	id := newID("dup")
	first := Payload(1000, 1)
	if _, err := b.Put(ctx, id, first, backend.PutOptions{Importance: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := b.Put(ctx, id, Payload(2000, 2), backend.PutOptions{Importance: 2})
	wantErr(t, "second Put", err, backend.ErrExists)
	wantNamed(t, "second Put", err, tier, id)
	checkGet(t, b, id, first)
	if info, _ := b.ObjectInfo(ctx, id); info.Importance != 1 {
		t.Fatalf("importance changed by a refused Put: %d", info.Importance)
	}
}

func (s *suite) checksumOption(t *testing.T) {
	b := s.open(t, 1<<20)
	ctx := context.Background()
	data := Payload(5000, 3)
	id := newID("crc")
	_, err := b.Put(ctx, id, data, backend.PutOptions{Checksum: backend.Checksum(data) ^ 1})
	wantErr(t, "Put with a wrong checksum", err, backend.ErrCorrupt)
	err = writeStream(ctx, b, id, data, backend.PutOptions{Checksum: backend.Checksum(data) ^ 1})
	wantErr(t, "stream with a wrong checksum", err, backend.ErrCorrupt)
	if _, err := b.ObjectInfo(ctx, id); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("object with a wrong checksum stored: %v", err)
	}
	if _, err := b.Put(ctx, id, data, backend.PutOptions{Checksum: backend.Checksum(data)}); err != nil {
		t.Fatalf("Put with the right checksum: %v", err)
	}
	checkGet(t, b, id, data)
}

func (s *suite) deleteWhileOpen(t *testing.T) {
	b := s.open(t, 16<<20)
	ctx := context.Background()
	id := newID("open")
	data := Payload(2<<20, 5)
	if _, err := b.Put(ctx, id, data, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := b.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, id); err != nil {
		t.Fatalf("Delete while a Get is open: %v", err)
	}
	if _, err := b.Get(ctx, id); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	// Reuse the space the deleted object held: the open Object must not see it.
	for i := range 4 {
		if _, err := b.Put(ctx, newID("reuse"), Payload(2<<20, uint64(100+i)), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(obj.Bytes(), data) {
		t.Fatal("an open Object's bytes changed after Delete and reuse of its space")
	}
	if err := obj.Close(); err != nil {
		t.Fatal(err)
	}
	if err := obj.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func (s *suite) pins(t *testing.T) {
	b := s.open(t, 1<<20)
	tier := tierName(t, b)
	ctx := context.Background()
	id := newID("pin")
	if _, err := b.Put(ctx, id, Payload(100, 9), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	err := b.Unpin(ctx, id)
	wantErr(t, "Unpin of an unpinned object", err, backend.ErrNotPinned)
	wantNamed(t, "Unpin", err, tier, id)
	for range 2 {
		if err := b.Pin(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if info, err := b.ObjectInfo(ctx, id); err != nil || info.Pins != 2 {
		t.Fatalf("after 2 Pins: %+v, %v", info, err)
	}
	err = b.Delete(ctx, id)
	wantErr(t, "Delete of a pinned object", err, backend.ErrPinned)
	wantNamed(t, "Delete pinned", err, tier, id)
	if err := b.Unpin(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Delete with one pin left", b.Delete(ctx, id), backend.ErrPinned)
	if err := b.Unpin(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "third Unpin", b.Unpin(ctx, id), backend.ErrNotPinned)
	if info, err := b.ObjectInfo(ctx, id); err != nil || info.Pins != 0 {
		t.Fatalf("after Unpins: %+v, %v", info, err)
	}
	if err := b.Delete(ctx, id); err != nil {
		t.Fatalf("Delete after Unpins: %v", err)
	}
}

func (s *suite) list(t *testing.T) {
	b := s.open(t, 1<<20)
	ctx := context.Background()
	want := map[backend.ID]int64{}
	for i := range 25 {
		id := backend.ID(fmt.Sprintf("lst-a-%02d", i))
		want[id] = int64(i)
		if _, err := b.Put(ctx, id, Payload(int64(i), uint64(i)), backend.PutOptions{Importance: i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if _, err := b.Put(ctx, backend.ID(fmt.Sprintf("lst-b-%d", i)), []byte("x"), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var got []backend.ObjectInfo
	after := backend.ID("")
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("List pagination does not end")
		}
		page, err := b.List(ctx, backend.ListOptions{Prefix: "lst-a-", After: after, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 7 {
			t.Fatalf("List returned %d > Limit 7", len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].ID
	}
	if len(got) != len(want) {
		t.Fatalf("List found %d objects with the prefix, want %d", len(got), len(want))
	}
	for i, info := range got {
		if i > 0 && got[i-1].ID >= info.ID {
			t.Fatalf("List not in ascending ID order: %s then %s", got[i-1].ID, info.ID)
		}
		if size, ok := want[info.ID]; !ok || info.Size != size || info.Importance != int(size) {
			t.Fatalf("List entry %+v unexpected", info)
		}
	}
	all, err := b.List(ctx, backend.ListOptions{})
	if err != nil || len(all) != 30 {
		t.Fatalf("List all = %d, %v; want 30", len(all), err)
	}
}

func (s *suite) stats(t *testing.T) {
	b := s.open(t, 1<<20)
	ctx := context.Background()
	before, err := b.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.Objects != 0 || before.Used != 0 {
		t.Fatalf("fresh backend Stats = %+v", before)
	}
	var total int64
	for i := range 10 {
		n := int64(1000 * (i + 1))
		total += n
		if _, err := b.Put(ctx, newID("stats"), Payload(n, uint64(i)), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := b.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Objects != 10 || st.Used < total {
		t.Fatalf("Stats after 10 puts of %d bytes = %+v", total, st)
	}
	if !s.f.Unbounded && (st.Capacity < 1<<20 || st.Used > st.Capacity) {
		t.Fatalf("Stats capacity %d, used %d", st.Capacity, st.Used)
	}
	ids, _ := b.List(ctx, backend.ListOptions{})
	if err := b.Pin(ctx, ids[0].ID); err != nil {
		t.Fatal(err)
	}
	st, _ = b.Stats(ctx)
	if st.PinnedObjects != 1 || st.Pinned < ids[0].Size {
		t.Fatalf("Stats with one pinned object = %+v", st)
	}
	_ = b.Unpin(ctx, ids[0].ID)
	for _, info := range ids {
		if err := b.Delete(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = b.Stats(ctx)
	if st.Objects != 0 || st.Used != 0 || st.Pinned != 0 {
		t.Fatalf("Stats after deleting everything = %+v", st)
	}
}

func (s *suite) full(t *testing.T) {
	if s.f.Unbounded {
		t.Skip("backend is unbounded")
	}
	const capacity = 4 << 20
	b := s.open(t, capacity)
	ctx := context.Background()
	st, err := b.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := st.Capacity
	if st.Tiers != nil { // a stack: the sum of its tiers
		total = 0
		for _, ts := range st.Tiers {
			total += ts.Capacity
		}
	}
	huge := newID("huge")
	_, err = b.Put(ctx, huge, make([]byte, 2*total+1), backend.PutOptions{})
	if !errors.Is(err, backend.ErrTooLarge) && !errors.Is(err, backend.ErrFull) {
		t.Fatalf("Put of twice the capacity = %v, want ErrTooLarge or ErrFull", err)
	}
	var fe *backend.FullError
	if !errors.As(err, &fe) || fe.Requested != 2*total+1 {
		t.Fatalf("capacity error %v is not a *backend.FullError with the requested size", err)
	}
	chunk := Payload(total/8+1, 11)
	var ids []backend.ID
	var fullErr error
	for i := 0; i < 64 && fullErr == nil; i++ {
		id := newID("fill")
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := b.Put(pctx, id, chunk, backend.PutOptions{})
		cancel()
		switch {
		case err == nil:
			ids = append(ids, id)
		case errors.Is(err, backend.ErrFull):
			fullErr = err
		default:
			t.Fatalf("Put %d while filling: %v", i, err)
		}
	}
	if fullErr == nil {
		t.Fatalf("no ErrFull after putting %d bytes into a backend of %d", int64(len(ids))*int64(len(chunk)), total)
	}
	if !errors.As(fullErr, &fe) || fe.Requested != int64(len(chunk)) || fe.Capacity <= 0 {
		t.Fatalf("ErrFull %v does not give the sizes", fullErr)
	}
	if !strings.Contains(fullErr.Error(), "free") {
		t.Fatalf("ErrFull message %q does not say what is free", fullErr)
	}
	for _, id := range ids {
		checkGet(t, b, id, chunk)
	}
	// Space comes back after a delete.
	for _, id := range ids[:2] {
		if err := b.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := b.Put(pctx, newID("after"), chunk, backend.PutOptions{}); err != nil {
		t.Fatalf("Put after deleting to make room: %v", err)
	}
}

// badIDs are IDs every backend must refuse.
var badIDs = []backend.ID{"", backend.ID(strings.Repeat("a", backend.MaxIDLen+1)), "../x", "a/b", "a\x00b", "\xff\xfe", "..", "/etc/passwd", "a\\b"}

func (s *suite) invalidIDs(t *testing.T) {
	b := s.open(t, 1<<20)
	ctx := context.Background()
	for _, id := range badIDs {
		name := fmt.Sprintf("%q", id)
		if len(name) > 20 {
			name = name[:20]
		}
		_, err := b.Put(ctx, id, []byte("x"), backend.PutOptions{})
		wantErr(t, "Put "+name, err, backend.ErrInvalidID)
		_, err = b.Get(ctx, id)
		wantErr(t, "Get "+name, err, backend.ErrInvalidID)
		_, err = b.ObjectInfo(ctx, id)
		wantErr(t, "ObjectInfo "+name, err, backend.ErrInvalidID)
		_, err = b.OpenReader(ctx, id, 0, -1)
		wantErr(t, "OpenReader "+name, err, backend.ErrInvalidID)
		_, err = b.OpenWriter(ctx, id, 1, backend.PutOptions{})
		wantErr(t, "OpenWriter "+name, err, backend.ErrInvalidID)
		wantErr(t, "Delete "+name, b.Delete(ctx, id), backend.ErrInvalidID)
		wantErr(t, "Pin "+name, b.Pin(ctx, id), backend.ErrInvalidID)
		wantErr(t, "Unpin "+name, b.Unpin(ctx, id), backend.ErrInvalidID)
		wantErr(t, "Prefetch "+name, b.Prefetch(ctx, id), backend.ErrInvalidID)
	}
	if list, err := b.List(ctx, backend.ListOptions{}); err != nil || len(list) != 0 {
		t.Fatalf("refused IDs left objects: %v, %v", list, err)
	}
}

func (s *suite) cancelled(t *testing.T) {
	b := s.open(t, 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	id := newID("ctx")
	_, err := b.Put(ctx, id, []byte("data"), backend.PutOptions{})
	wantErr(t, "Put with a cancelled context", err, context.Canceled)
	if _, err := b.ObjectInfo(context.Background(), id); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Put with a cancelled context stored the object: %v", err)
	}
	_, err = b.OpenWriter(ctx, id, 4, backend.PutOptions{})
	wantErr(t, "OpenWriter with a cancelled context", err, context.Canceled)
}

// closedCalls checks that every call on b fails with ErrClosed and names the
// tier (when tier is given).
func closedCalls(t *testing.T, when string, b backend.Backend, tier string, id backend.ID) {
	t.Helper()
	ctx := context.Background()
	data := []byte("data")
	check := func(what string, err error) {
		t.Helper()
		wantErr(t, what+" "+when, err, backend.ErrClosed)
		if tier != "" && !strings.Contains(err.Error(), tier) {
			t.Errorf("%s %s: %v does not name the tier %s", what, when, err, tier)
		}
	}
	_, err := b.Put(ctx, id, data, backend.PutOptions{})
	check("Put", err)
	_, err = b.Get(ctx, id)
	check("Get", err)
	_, err = b.ObjectInfo(ctx, id)
	check("ObjectInfo", err)
	_, err = b.OpenReader(ctx, id, 0, -1)
	check("OpenReader", err)
	_, err = b.OpenWriter(ctx, id, 1, backend.PutOptions{})
	check("OpenWriter", err)
	_, err = b.List(ctx, backend.ListOptions{})
	check("List", err)
	check("Delete", b.Delete(ctx, id))
	check("Pin", b.Pin(ctx, id))
	check("Unpin", b.Unpin(ctx, id))
	check("Prefetch", b.Prefetch(ctx, id))
	_, err = b.Stats(ctx)
	check("Stats", err)
	if err := b.Teardown(ctx); err != nil && !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Teardown %s: %v; want nil or ErrClosed", when, err)
	}
}

// lifecycle: before Setup and after Teardown every call is ErrClosed, with
// the tier named; Setup twice is an error; the tier works in between.
func (s *suite) lifecycle(t *testing.T) {
	ctx := context.Background()
	b := s.f.Make(t, 1<<20)
	id := newID("life")
	closedCalls(t, "before Setup", b, "", id)
	if err := b.Setup(ctx); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { _ = b.Teardown(context.Background()) })
	tier := tierName(t, b)
	if err := b.Setup(ctx); err == nil {
		t.Error("a second Setup succeeded")
	}
	data := Payload(100, 3)
	if _, err := b.Put(ctx, id, data, backend.PutOptions{}); err != nil {
		t.Fatalf("Put after Setup: %v", err)
	}
	checkReader(t, b, id, 0, -1, data)
	if err := b.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := b.Teardown(ctx); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	closedCalls(t, "after Teardown", b, tier, id)
}

// restart: objects, importance and creation times survive a restart; pins do
// not (see Factory.Restart).
func (s *suite) restart(t *testing.T) {
	ctx := context.Background()
	b := s.f.New(t, 4<<20)
	id := newID("restart")
	data := Payload(100<<10, 11)
	created := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := b.Put(ctx, id, data, backend.PutOptions{Importance: 7, Created: created}); err != nil {
		t.Fatal(err)
	}
	if err := b.Pin(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := b.Teardown(ctx); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	b = s.f.Restart(t, b)
	t.Cleanup(func() { _ = b.Teardown(context.Background()) })
	checkGet(t, b, id, data)
	info, err := b.ObjectInfo(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Importance != 7 || !info.Created.Equal(created) {
		t.Errorf("after a restart: importance %d, created %v; want 7, %v", info.Importance, info.Created, created)
	}
	if info.Pins != 0 {
		t.Errorf("after a restart: %d pins; pins do not survive a restart", info.Pins)
	}
	wantErr(t, "Unpin after a restart", b.Unpin(ctx, id), backend.ErrNotPinned)
	if err := b.Delete(ctx, id); err != nil {
		t.Errorf("Delete after a restart (the pin is gone): %v", err)
	}
}

func (s *suite) afterTeardown(t *testing.T) {
	b := s.f.New(t, 1<<20)
	ctx := context.Background()
	id := newID("closed")
	data := Payload(4096, 1)
	if _, err := b.Put(ctx, id, data, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := b.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Teardown(ctx); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if !bytes.Equal(obj.Bytes(), data) {
		t.Fatal("an Object opened before Teardown lost its bytes")
	}
	if err := obj.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = b.Put(ctx, newID("x"), data, backend.PutOptions{})
	wantErr(t, "Put", err, backend.ErrClosed)
	_, err = b.Get(ctx, id)
	wantErr(t, "Get", err, backend.ErrClosed)
	_, err = b.ObjectInfo(ctx, id)
	wantErr(t, "ObjectInfo", err, backend.ErrClosed)
	_, err = b.OpenReader(ctx, id, 0, -1)
	wantErr(t, "OpenReader", err, backend.ErrClosed)
	_, err = b.OpenWriter(ctx, newID("x"), 1, backend.PutOptions{})
	wantErr(t, "OpenWriter", err, backend.ErrClosed)
	_, err = b.List(ctx, backend.ListOptions{})
	wantErr(t, "List", err, backend.ErrClosed)
	wantErr(t, "Delete", b.Delete(ctx, id), backend.ErrClosed)
	wantErr(t, "Pin", b.Pin(ctx, id), backend.ErrClosed)
	wantErr(t, "Unpin", b.Unpin(ctx, id), backend.ErrClosed)
	wantErr(t, "Prefetch", b.Prefetch(ctx, id), backend.ErrClosed)
	_, err = b.Stats(ctx)
	wantErr(t, "Stats", err, backend.ErrClosed)
	if err := b.Teardown(ctx); err != nil && !errors.Is(err, backend.ErrClosed) {
		t.Errorf("second Teardown: %v", err)
	}
}

func (s *suite) concurrent(t *testing.T) {
	b := s.open(t, 64<<20)
	ctx := context.Background()
	const workers, ops = 8, 150
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 99))
			live := map[backend.ID][]byte{}
			shared := backend.ID(fmt.Sprintf("shared-%d", w%2))
			for i := range ops {
				switch op := r.IntN(10); {
				case op < 4 || len(live) == 0:
					id := newID(fmt.Sprintf("c%d", w))
					data := Payload(int64(r.IntN(64<<10)), uint64(w*ops+i))
					var err error
					if op == 0 {
						err = writeStream(ctx, b, id, data, backend.PutOptions{Importance: r.IntN(5)})
					} else {
						_, err = b.Put(ctx, id, data, backend.PutOptions{Importance: r.IntN(5)})
					}
					if err != nil {
						t.Errorf("put: %v", err)
						return
					}
					live[id] = data
				case op < 7:
					for id, data := range live {
						obj, err := b.Get(ctx, id)
						if err != nil {
							t.Errorf("get %s: %v", id, err)
							return
						}
						if !bytes.Equal(obj.Bytes(), data) {
							t.Errorf("get %s: bytes differ", id)
						}
						obj.Close()
						break
					}
				case op == 7:
					for id := range live {
						if err := b.Pin(ctx, id); err != nil {
							t.Errorf("pin %s: %v", id, err)
						}
						if err := b.Unpin(ctx, id); err != nil {
							t.Errorf("unpin %s: %v", id, err)
						}
						if err := b.Delete(ctx, id); err != nil {
							t.Errorf("delete %s: %v", id, err)
						}
						delete(live, id)
						break
					}
				case op == 8:
					// Writers race on shared IDs: exactly one wins at a time.
					_, err := b.Put(ctx, shared, []byte("shared"), backend.PutOptions{})
					if err != nil && !errors.Is(err, backend.ErrExists) {
						t.Errorf("put shared: %v", err)
					}
					if err := b.Delete(ctx, shared); err != nil && !errors.Is(err, backend.ErrNotFound) {
						t.Errorf("delete shared: %v", err)
					}
				default:
					if _, err := b.List(ctx, backend.ListOptions{Prefix: fmt.Sprintf("c%d-", w), Limit: 5}); err != nil {
						t.Errorf("list: %v", err)
					}
					if _, err := b.Stats(ctx); err != nil {
						t.Errorf("stats: %v", err)
					}
				}
			}
			for id, data := range live {
				checkGetNoFatal(t, b, id, data)
			}
		}()
	}
	wg.Wait()
}

func checkGetNoFatal(t *testing.T, b backend.Backend, id backend.ID, want []byte) {
	obj, err := b.Get(context.Background(), id)
	if err != nil {
		t.Errorf("Get(%s): %v", id, err)
		return
	}
	defer obj.Close()
	if !bytes.Equal(obj.Bytes(), want) {
		t.Errorf("Get(%s): bytes differ", id)
	}
}
