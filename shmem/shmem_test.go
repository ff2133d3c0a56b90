package shmem

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"distore/backend"
	"distore/backend/backendtest"
)

// open returns a set-up store with cfg, torn down at cleanup.
func open(t testing.TB, cfg backend.Config) *Store {
	t.Helper()
	b, err := backend.Open(context.Background(), Name, cfg)
	if err != nil {
		t.Fatalf("open memory tier %v: %v", cfg, err)
	}
	t.Cleanup(func() { _ = b.Teardown(context.Background()) })
	return backend.Unwrap(b).(*Store)
}

// factory makes stores that hold at least capacity bytes of objects: the
// capacity plus room for the records' headers.
var factory = backendtest.Factory{Make: func(t testing.TB, capacity int64) backend.Backend {
	b, err := backend.New(Name, backend.Config{
		"capacity": fmt.Sprint(capacity + capacity/16 + 64<<10)})
	if err != nil {
		t.Fatalf("make memory tier: %v", err)
	}
	return b
}}

func TestConformance(t *testing.T) { backendtest.Run(t, factory) }

// TestRestartConformance: with a kept arena file, objects and importance
// survive a restart, pins do not.
func TestRestartConformance(t *testing.T) {
	cfg := backend.Config{"capacity": "8MiB", "path": filepath.Join(t.TempDir(), "arena"), "keep": "true"}
	t.Cleanup(func() { os.Remove(cfg["path"]) })
	open := func(t testing.TB) backend.Backend {
		b, err := backend.Open(context.Background(), Name, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	backendtest.RunRestart(t, backendtest.Factory{
		New:     func(t testing.TB, _ int64) backend.Backend { return open(t) },
		Restart: func(t testing.TB, _ backend.Backend) backend.Backend { return open(t) },
	})
}

func BenchmarkBackend(b *testing.B) { backendtest.Bench(b, factory) }

func TestConfig(t *testing.T) {
	for _, cfg := range []backend.Config{
		{"capacty": "1GiB"},
		{"capacity": "lots"},
		{"capacity": "10"},
		{"prefault": "maybe"},
		{"max_objects": "-1"},
	} {
		if _, err := backend.New(Name, cfg); !errors.Is(err, backend.ErrInvalidArgument) {
			t.Errorf("New(%v) = %v, want ErrInvalidArgument", cfg, err)
		}
	}
	b, err := backend.New(Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := backend.Unwrap(b).(*Store); s.capacity != DefaultCapacity || !s.prefault || s.keep || !s.verify || s.maxObjects != DefaultCapacity>>10 {
		t.Fatalf("defaults: %+v", s)
	}
	b, err = backend.New(Name, backend.Config{"capacity": "1MiB"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Teardown(context.Background())
	if err := b.Setup(context.Background()); err == nil {
		t.Fatal("second Setup succeeded")
	}
}

// TestZeroCopy checks that Get's bytes are the mapping itself, not a copy.
func TestZeroCopy(t *testing.T) {
	s := open(t, backend.Config{"capacity": "4MiB"})
	ctx := context.Background()
	want := backendtest.Payload(100000, 1)
	if _, err := s.Put(ctx, "z", want, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	o1, err := s.Get(ctx, "z")
	if err != nil {
		t.Fatal(err)
	}
	defer o1.Close()
	o2, _ := s.Get(ctx, "z")
	defer o2.Close()
	p1, p2 := unsafe.SliceData(o1.Bytes()), unsafe.SliceData(o2.Bytes())
	lo, hi := uintptr(unsafe.Pointer(unsafe.SliceData(s.m.mem))), uintptr(unsafe.Pointer(unsafe.SliceData(s.m.mem)))+uintptr(len(s.m.mem))
	if p1 != p2 || uintptr(unsafe.Pointer(p1)) < lo || uintptr(unsafe.Pointer(p1)) >= hi {
		t.Fatalf("Get bytes at %p and %p, mapping [%#x, %#x): not zero-copy", p1, p2, lo, hi)
	}
	if uintptr(unsafe.Pointer(p1))%dataAlign != 0 {
		t.Errorf("object bytes at %p not %d-byte aligned", p1, dataAlign)
	}
	if !bytes.Equal(o1.Bytes(), want) {
		t.Fatal("bytes differ")
	}
}

func TestFullAndTooLarge(t *testing.T) {
	s := open(t, backend.Config{"capacity": "1MiB"})
	ctx := context.Background()
	_, err := s.Put(ctx, "huge", make([]byte, 2<<20), backend.PutOptions{})
	var fe *backend.FullError
	if !errors.Is(err, backend.ErrTooLarge) || !errors.As(err, &fe) || fe.Requested != 2<<20 || fe.Capacity != 1<<20 {
		t.Fatalf("2 MiB into 1 MiB: %v", err)
	}
	// Exactly the capacity can never fit either: the record header needs room.
	_, err = s.Put(ctx, "exact", make([]byte, 1<<20), backend.PutOptions{})
	if !errors.Is(err, backend.ErrTooLarge) {
		t.Fatalf("capacity-sized object: %v, want ErrTooLarge", err)
	}
	if _, err := s.Put(ctx, "a", make([]byte, 600<<10), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Put(ctx, "b", make([]byte, 600<<10), backend.PutOptions{})
	if !errors.Is(err, backend.ErrFull) || errors.Is(err, backend.ErrTooLarge) || !errors.As(err, &fe) {
		t.Fatalf("second 600 KiB: %v, want ErrFull", err)
	}
	if fe.Requested != 600<<10 || fe.Pinned < 600<<10 || fe.Free > 1<<20-600<<10 || fe.Capacity != 1<<20 {
		t.Fatalf("FullError sizes %+v", fe)
	}
	for _, w := range []string{`"b"`, "memory", "pinned", "free"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	_, err = s.OpenWriter(ctx, "w", 600<<10, backend.PutOptions{})
	if !errors.Is(err, backend.ErrFull) {
		t.Fatalf("OpenWriter beyond the free space: %v, want ErrFull", err)
	}
}

// TestFragmentation fills the store, frees every other object and asks for an
// object that fits in the free total but in no hole.
func TestFragmentation(t *testing.T) {
	s := open(t, backend.Config{"capacity": "1MiB"})
	ctx := context.Background()
	chunk := make([]byte, 64<<10-dataStart(2)) // records of exactly 64 KiB
	var ids []backend.ID
	for i := 0; ; i++ {
		id := backend.ID(fmt.Sprintf("%02d", i))
		if _, err := s.Put(ctx, id, chunk, backend.PutOptions{}); err != nil {
			if !errors.Is(err, backend.ErrFull) {
				t.Fatal(err)
			}
			break
		}
		ids = append(ids, id)
	}
	if len(ids) != 16 {
		t.Fatalf("%d 64 KiB records fit in 1 MiB, want 16", len(ids))
	}
	for i := 0; i < len(ids); i += 2 {
		if err := s.Delete(ctx, ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := s.Stats(ctx)
	if st.Free() != 512<<10 || s.LargestFree() != 64<<10-dataStart(1) {
		t.Fatalf("free %d largest %d", st.Free(), s.LargestFree())
	}
	_, err := s.Put(ctx, "big", make([]byte, 128<<10), backend.PutOptions{})
	var fe *backend.FullError
	if !errors.Is(err, backend.ErrFull) || !errors.As(err, &fe) || fe.Free != 512<<10 {
		t.Fatalf("128 KiB into 512 KiB of 64 KiB holes: %v, want ErrFull", err)
	}
	for _, w := range []string{"fragmentation", "largest hole is 64.0 KiB", "512.0 KiB free"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	// Freeing a neighbour merges the holes and the object fits.
	if err := s.Delete(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "big", make([]byte, 128<<10), backend.PutOptions{}); err != nil {
		t.Fatalf("after coalescing: %v", err)
	}
}

func TestTableFull(t *testing.T) {
	s := open(t, backend.Config{"capacity": "1MiB", "max_objects": "3"})
	ctx := context.Background()
	n := 0
	for ; n < 1000; n++ {
		if _, err := s.Put(ctx, backend.ID(fmt.Sprint("t", n)), []byte("x"), backend.PutOptions{}); err != nil {
			if !errors.Is(err, backend.ErrFull) || !strings.Contains(err.Error(), "object table full") {
				t.Fatalf("put %d: %v", n, err)
			}
			break
		}
	}
	if n != 3 {
		t.Fatalf("%d objects fit in a 3-slot table", n)
	}
	if err := s.Delete(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "again", []byte("x"), backend.PutOptions{}); err != nil {
		t.Fatalf("slot not reused: %v", err)
	}
}

// TestDeferredFree: a deleted object's space is reused only after its last
// reader closes, and the open reader keeps its bytes.
func TestDeferredFree(t *testing.T) {
	s := open(t, backend.Config{"capacity": "1MiB"})
	ctx := context.Background()
	want := backendtest.Payload(700<<10, 2)
	if _, err := s.Put(ctx, "d", want, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Get(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.OpenReader(ctx, "d", 100, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats(ctx)
	if st.Objects != 0 || st.Used < 700<<10 {
		t.Fatalf("after Delete with readers open: %+v", st)
	}
	if _, err := s.Put(ctx, "e", want, backend.PutOptions{}); !errors.Is(err, backend.ErrFull) {
		t.Fatalf("space of an open deleted object reused: %v", err)
	}
	obj.Close()
	if st, _ := s.Stats(ctx); st.Used == 0 {
		t.Fatal("space freed while a reader is open")
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, want[100:1100]) {
		t.Fatal("reader bytes differ")
	}
	if st, _ := s.Stats(ctx); st.Used != 0 {
		t.Fatalf("space not freed after the last reader closed: %+v", st)
	}
	if _, err := s.Put(ctx, "e", want, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestWriterCancelFrees: a writer whose context is cancelled gives its space
// back without a Close.
func TestWriterCancelFrees(t *testing.T) {
	s := open(t, backend.Config{"capacity": "1MiB"})
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.OpenWriter(ctx, "c", 500<<10, backend.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stats(context.Background()); st.Used < 500<<10 {
		t.Fatalf("writer did not reserve its space: %+v", st)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := s.Stats(context.Background())
		if st.Used == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cancelled writer still holds %d bytes", st.Used)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write after cancel = %v", err)
	}
	if err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close after cancel = %v", err)
	}
	if _, err := s.ObjectInfo(context.Background(), "c"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("cancelled write visible: %v", err)
	}
}

// TestTeardownWithWriter: a write in progress at Teardown fails with ErrClosed.
func TestTeardownWithWriter(t *testing.T) {
	b, err := backend.Open(context.Background(), Name, backend.Config{"capacity": "1MiB"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := b.OpenWriter(ctx, "w", 10, backend.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 10)); err != nil {
		t.Fatalf("Write into the still-mapped space after Teardown: %v", err)
	}
	if err := w.Close(); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Close after Teardown = %v, want ErrClosed", err)
	}
}

// TestHeapStaysSmall: the objects' bytes are not on the Go heap.
func TestHeapStaysSmall(t *testing.T) {
	const total = 256 << 20
	s := open(t, backend.Config{"capacity": fmt.Sprint(total + 1<<20)})
	ctx := context.Background()
	chunk := backendtest.Payload(1<<20-256, 3)
	before := heapInuse()
	for i := range total >> 20 {
		if _, err := s.Put(ctx, backend.ID(fmt.Sprint("h", i)), chunk, backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	after := heapInuse()
	if st, _ := s.Stats(ctx); st.Used < total-(total>>8) {
		t.Fatalf("store holds only %d bytes", st.Used)
	}
	if grew := int64(after) - int64(before); grew > 4<<20 {
		t.Fatalf("Go heap grew by %s holding %s of objects", backend.FormatBytes(grew), backend.FormatBytes(total))
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func TestConcurrentGetDelete(t *testing.T) {
	s := open(t, backend.Config{"capacity": "8MiB"})
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id := backend.ID(fmt.Sprintf("g%d-%d", w, i))
				want := backendtest.Payload(int64(1000+i), uint64(w*1000+i))
				if _, err := s.Put(ctx, id, want, backend.PutOptions{}); err != nil {
					t.Error(err)
					return
				}
				obj, err := s.Get(ctx, id)
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.Delete(ctx, id); err != nil {
					t.Error(err)
				}
				// Other goroutines reuse the space; the open object must not change.
				runtime.Gosched()
				if !bytes.Equal(obj.Bytes(), want) {
					t.Errorf("%s changed after delete", id)
				}
				obj.Close()
			}
		}()
	}
	wg.Wait()
	if st, _ := s.Stats(ctx); st.Used != 0 || st.Objects != 0 {
		t.Fatalf("leak: %+v", st)
	}
}

// TestReopenKeep: with keep=true a cleanly torn-down file is re-opened with
// its objects, metadata and free space.
func TestReopenKeep(t *testing.T) {
	path := filepath.Join(shmDir(t), "keep.shm")
	cfg := backend.Config{"capacity": "2MiB", "path": path, "keep": "true"}
	ctx := context.Background()
	created := time.Date(2025, 5, 6, 7, 8, 9, 10, time.UTC)
	b, err := backend.Open(ctx, Name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := backendtest.Payload(300<<10, 4)
	if _, err := b.Put(ctx, "k1", want, backend.PutOptions{Importance: 5, Created: created}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "k2", want[:10], backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "k2"); err != nil {
		t.Fatal(err)
	}
	st1, _ := b.Stats(ctx)
	if err := b.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("keep=true removed the file: %v", err)
	}
	cfg["keep"] = "false"
	s := open(t, cfg)
	info, err := s.ObjectInfo(ctx, "k1")
	if err != nil || info.Importance != 5 || !info.Created.Equal(created) || info.Checksum != backend.Checksum(want) {
		t.Fatalf("re-opened k1: %+v, %v", info, err)
	}
	if _, err := s.ObjectInfo(ctx, "k2"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("deleted k2 came back: %v", err)
	}
	if st, _ := s.Stats(ctx); st.Used != st1.Used || st.Objects != 1 {
		t.Fatalf("stats after reopen %+v, before %+v", st, st1)
	}
	if err := s.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("keep=false left the file: %v", err)
	}
}

func TestReopenBadFile(t *testing.T) {
	path := filepath.Join(shmDir(t), "bad.shm")
	if err := os.WriteFile(path, []byte("not a store"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := backend.Open(context.Background(), Name, backend.Config{"capacity": "1MiB", "path": path})
	if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), "magic") {
		t.Fatalf("open of a foreign file = %v", err)
	}
}

// TestRecoverDropsCorrupt: a kept store whose object bytes were damaged
// re-opens without that object.
func TestRecoverDropsCorrupt(t *testing.T) {
	path := filepath.Join(shmDir(t), "corrupt.shm")
	cfg := backend.Config{"capacity": "1MiB", "path": path, "keep": "true"}
	ctx := context.Background()
	b, err := backend.Open(ctx, Name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []backend.ID{"good", "bad"} {
		if _, err := b.Put(ctx, id, backendtest.Payload(5000, 5), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	obj, _ := b.Get(ctx, "bad")
	off := int64(uintptr(unsafe.Pointer(unsafe.SliceData(obj.Bytes()))) - uintptr(unsafe.Pointer(unsafe.SliceData(backend.Unwrap(b).(*Store).m.mem))))
	obj.Close()
	b.Teardown(ctx)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0xfe}, off+10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg["keep"] = "false"
	s := open(t, cfg)
	if _, err := s.ObjectInfo(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ObjectInfo(ctx, "bad"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("corrupt object recovered: %v", err)
	}
	if st, _ := s.Stats(ctx); st.Objects != 1 || st.Used != s.arena.RoundUp(dataStart(4)+5000) {
		t.Fatalf("stats %+v", st)
	}
}

func shmDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "distore-test-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

const crashEnv = "DISTORE_SHMEM_CRASH_PATH"

// startChild runs test in a child process of this test binary with env set
// to path, and returns it and its standard output; it is killed when t ends.
func startChild(t *testing.T, test, env, path string, args ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^" + test + "$"}, args...)...)
	cmd.Env = append(os.Environ(), env+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, out
}

// childStore is the set-up store of a crash test's child process, at the
// path its parent put in env; the test skips unless parent started it.
func childStore(t *testing.T, env, parent, capacity string) backend.Backend {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		t.Skip("run by " + parent + " in a child process")
	}
	b, err := backend.New(Name, backend.Config{"capacity": capacity, "path": path})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCrashChild is the child of TestCrashRecovery: it fills a store, reports
// what it acknowledged, and waits to be killed.
func TestCrashChild(t *testing.T) {
	b := childStore(t, crashEnv, "TestCrashRecovery", "8MiB")
	ctx := context.Background()
	for i := range 40 {
		id := backend.ID(fmt.Sprint("obj-", i))
		if i%3 == 0 {
			w, err := b.OpenWriter(ctx, id, int64(1000*i), backend.PutOptions{Importance: i})
			if err != nil {
				t.Fatal(err)
			}
			w.Write(backendtest.Payload(int64(1000*i), uint64(i)))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		} else if _, err := b.Put(ctx, id, backendtest.Payload(int64(1000*i), uint64(i)), backend.PutOptions{Importance: i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 40; i += 5 {
		if err := b.Delete(ctx, backend.ID(fmt.Sprint("obj-", i))); err != nil {
			t.Fatal(err)
		}
	}
	// A write in progress when the process dies must not appear.
	w, err := b.OpenWriter(ctx, "unfinished", 5000, backend.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(backendtest.Payload(4000, 9))
	fmt.Println("READY")
	time.Sleep(time.Minute) // killed long before
	t.Fatal("not killed")
}

// TestCrashRecovery kills a process holding a file-backed store with SIGKILL
// and checks that every object it acknowledged is recovered, intact.
func TestCrashRecovery(t *testing.T) {
	path := filepath.Join(shmDir(t), "crash.shm")
	cmd, out := startChild(t, "TestCrashChild", crashEnv, path, "-test.v")
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if sc.Text() == "READY" {
				ok = true
				break
			}
			t.Logf("child: %s", sc.Text())
		}
		ready <- ok
		io.Copy(io.Discard, out)
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatal("child exited before it was ready")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("child not ready in 60s")
	}
	// While the child lives the file is locked.
	if _, err := backend.Open(context.Background(), Name, backend.Config{"capacity": "8MiB", "path": path}); !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("second process opened a locked store: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	s := open(t, backend.Config{"capacity": "8MiB", "path": path})
	ctx := context.Background()
	var wantUsed int64
	for i := range 40 {
		id := backend.ID(fmt.Sprint("obj-", i))
		if i%5 == 0 {
			if _, err := s.ObjectInfo(ctx, id); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("deleted %s recovered: %v", id, err)
			}
			continue
		}
		want := backendtest.Payload(int64(1000*i), uint64(i))
		obj, err := s.Get(ctx, id)
		if err != nil {
			t.Errorf("acknowledged %s lost: %v", id, err)
			continue
		}
		info := obj.Info()
		if !bytes.Equal(obj.Bytes(), want) || info.Importance != i || info.Checksum != backend.Checksum(want) {
			t.Errorf("%s recovered wrong: %+v", id, info)
		}
		obj.Close()
		wantUsed += s.arena.RoundUp(dataStart(len(id)) + int64(len(want)))
	}
	if _, err := s.ObjectInfo(ctx, "unfinished"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("unfinished write recovered: %v", err)
	}
	st, _ := s.Stats(ctx)
	if st.Objects != 32 || st.Used != wantUsed {
		t.Fatalf("recovered stats %+v, want 32 objects using %d bytes", st, wantUsed)
	}
	// The recovered store keeps working: new objects, deletes, reuse of freed space.
	for i := range 50 {
		id := backend.ID(fmt.Sprint("new-", i))
		if _, err := s.Put(ctx, id, backendtest.Payload(20000, uint64(i)), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.List(ctx, backend.ListOptions{Limit: 1000})
	if err != nil || len(list) != 82 {
		t.Fatalf("List = %d, %v", len(list), err)
	}
}

func Example() {
	ctx := context.Background()
	b, err := backend.Open(ctx, "memory", backend.Config{"capacity": "1MiB"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Teardown(ctx)
	if _, err := b.Put(ctx, "greeting", []byte("hello, shared memory"), backend.PutOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	obj, err := b.Get(ctx, "greeting")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s (%d bytes)\n", obj.Bytes(), obj.Info().Size)
	obj.Close()
	// An object larger than the whole tier can never fit.
	_, err = b.Put(ctx, "big", make([]byte, 2<<20), backend.PutOptions{})
	fmt.Println(errors.Is(err, backend.ErrTooLarge))
	// Output:
	// hello, shared memory (20 bytes)
	// true
}

// BenchmarkPutBatch4K puts 65536 objects of 4 KiB, then deletes them.
func BenchmarkPutBatch4K(b *testing.B) {
	s := open(b, backend.Config{"capacity": "512MiB"})
	ctx := context.Background()
	src := make([]byte, 4096)
	ids := make([]backend.ID, 65536)
	for i := range ids {
		ids[i] = backend.ID(fmt.Sprint("p", i))
	}
	b.SetBytes(4096)
	for i := 0; b.Loop(); {
		if _, err := s.Put(ctx, ids[i], src, backend.PutOptions{}); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(ids) {
			b.StopTimer()
			for _, id := range ids {
				s.Delete(ctx, id)
			}
			i = 0
			b.StartTimer()
		}
	}
}

func TestCopyChecksum(t *testing.T) {
	src := backendtest.Payload(9<<20+123, 6)
	dst := make([]byte, len(src))
	for _, threads := range []int{1, 2, 3, 4, 8} {
		for _, n := range []int{0, 100, parallelMin - 1, parallelMin, 3<<20 + 1, 3<<20 + 5, 4 << 20, 8<<20 + 1, len(src)} {
			clear(dst)
			if got, want := copyChecksum(dst[:n], src[:n], threads), backend.Checksum(src[:n]); got != want {
				t.Fatalf("threads %d, %d bytes: checksum %08x, want %08x", threads, n, got, want)
			}
			if !bytes.Equal(dst[:n], src[:n]) {
				t.Fatalf("threads %d, %d bytes: copy differs", threads, n)
			}
		}
	}
}

func TestSetupCancelled(t *testing.T) {
	b, err := backend.New(Name, backend.Config{"capacity": "2GiB"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = b.Setup(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		// A machine fast enough to pre-fault 2 GiB in 20ms passes too.
		if err != nil {
			t.Fatalf("Setup = %v, want DeadlineExceeded", err)
		}
		b.Teardown(context.Background())
		t.Skipf("pre-faulted 2 GiB in %v, before the deadline", time.Since(start))
	}
	if _, err := b.Stats(context.Background()); err == nil {
		t.Fatal("a store whose Setup failed answers Stats")
	}
}

func TestPendingInvisible(t *testing.T) {
	s := open(t, backend.Config{"capacity": "1MiB"})
	ctx := context.Background()
	if _, err := s.Put(ctx, "a", []byte("x"), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := s.OpenWriter(ctx, "b", 3, backend.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "c", []byte("x"), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	list, _ := s.List(ctx, backend.ListOptions{})
	if len(list) != 2 || list[0].ID != "a" || list[1].ID != "c" {
		t.Fatalf("List with a write in progress = %+v", list)
	}
	if st, _ := s.Stats(ctx); st.Objects != 2 {
		t.Fatalf("Stats counts a write in progress: %+v", st)
	}
	if err := s.Delete(ctx, "b"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Delete of a write in progress = %v", err)
	}
	if _, err := s.Put(ctx, "b", []byte("y"), backend.PutOptions{}); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("Put over a write in progress = %v", err)
	}
	w.Write([]byte("abc"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	list, _ = s.List(ctx, backend.ListOptions{After: "a", Limit: 1})
	if len(list) != 1 || list[0].ID != "b" {
		t.Fatalf("List after commit = %+v", list)
	}
}

// TestTeardownRace tears the store down while goroutines use it: every call
// either works or fails with ErrClosed, and Objects got before keep their bytes.
func TestTeardownRace(t *testing.T) {
	b, err := backend.Open(context.Background(), Name, backend.Config{"capacity": "4MiB"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := func(err error) bool {
				if err != nil && !errors.Is(err, backend.ErrClosed) && !errors.Is(err, backend.ErrFull) && !errors.Is(err, backend.ErrNotFound) {
					t.Errorf("worker %d: %v", w, err)
				}
				return err == nil
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := backend.ID(fmt.Sprintf("r%d-%d", w, i))
				want := backendtest.Payload(int64(100+i%5000), uint64(i))
				if _, err := b.Put(ctx, id, want, backend.PutOptions{}); !ok(err) {
					continue
				}
				obj, err := b.Get(ctx, id)
				if ok(err) {
					runtime.Gosched()
					if !bytes.Equal(obj.Bytes(), want) {
						t.Errorf("%s: bytes changed", id)
					}
					obj.Close()
				}
				if w%2 == 0 {
					ok(b.Delete(ctx, id))
				}
				_, err = b.List(ctx, backend.ListOptions{Limit: 3})
				ok(err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := b.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
}

const busyEnv = "DISTORE_SHMEM_BUSY_PATH"

// busySize is the size of object i in the busy crash test.
func busySize(i int) int { return 1 + (i*7919)%(200<<10) }

// busyData returns object i's bytes: a window of random bytes that differs
// with i, cheap to make so that the child spends its time in puts and deletes.
var busyData = func() func(i int) []byte {
	var once sync.Once
	var base []byte
	return func(i int) []byte {
		once.Do(func() { base = backendtest.Payload(200<<10+4096, 99) })
		return base[i%4096 : i%4096+busySize(i)]
	}
}()

// TestCrashChildBusy is the child of TestCrashWhileBusy: it puts and deletes
// objects without pause, reporting each acknowledged put and each delete.
func TestCrashChildBusy(t *testing.T) {
	b := childStore(t, busyEnv, "TestCrashWhileBusy", "16MiB")
	ctx := context.Background()
	out := bufio.NewWriter(os.Stdout)
	for i := 0; i < 1_000_000; i++ {
		id := backend.ID(fmt.Sprint("busy-", i))
		d := busyData(i)
		if i%4 == 0 {
			w, err := b.OpenWriter(ctx, id, int64(len(d)), backend.PutOptions{})
			if err != nil {
				t.Fatal(err)
			}
			w.Write(d[:len(d)/2])
			w.Write(d[len(d)/2:])
			err = w.Close()
			if err != nil {
				t.Fatal(err)
			}
		} else if _, err := b.Put(ctx, id, d, backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(out, "ACK", id)
		if i >= 20 {
			old := backend.ID(fmt.Sprint("busy-", i-20))
			fmt.Fprintln(out, "DELETING", old)
			out.Flush()
			if err := b.Delete(ctx, old); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(out, "DELETED", old)
		}
		out.Flush()
	}
}

// TestCrashWhileBusy kills a process in the middle of its puts and deletes:
// every put it acknowledged and did not start to delete is recovered intact,
// every delete it finished stays done, and nothing recovered is torn.
func TestCrashWhileBusy(t *testing.T) {
	path := filepath.Join(shmDir(t), "busy.shm")
	cmd, out := startChild(t, "TestCrashChildBusy", busyEnv, path)
	acked, deleting, deleted := map[backend.ID]bool{}, map[backend.ID]bool{}, map[backend.ID]bool{}
	sc := bufio.NewScanner(out)
	read := func() bool {
		if !sc.Scan() {
			return false
		}
		f := strings.Fields(sc.Text())
		if len(f) == 2 {
			id := backend.ID(f[1])
			switch f[0] {
			case "ACK":
				acked[id] = true
			case "DELETING":
				deleting[id] = true
			case "DELETED":
				deleted[id] = true
			}
		}
		return true
	}
	deadline := time.Now().Add(60 * time.Second)
	killAt := 400 + rand.IntN(300) // a different moment each run
	for len(acked) < killAt && read() {
		if time.Now().After(deadline) {
			t.Fatal("child too slow")
		}
	}
	if len(acked) < killAt {
		cmd.Wait()
		t.Fatalf("child stopped after %d puts", len(acked))
	}
	// Kill it mid-stream: it is still putting and deleting. Then read what it
	// reported before it died (it reports a delete before starting it).
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for read() {
	}
	cmd.Wait()

	s := open(t, backend.Config{"capacity": "16MiB", "path": path})
	ctx := context.Background()
	for id := range acked {
		_, err := s.ObjectInfo(ctx, id)
		switch {
		case deleted[id]:
			if !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("deleted %s came back: %v", id, err)
			}
		case !deleting[id] && err != nil:
			t.Errorf("acknowledged %s lost: %v", id, err)
		}
	}
	// Everything recovered, acknowledged or not, is whole.
	list, err := s.List(ctx, backend.ListOptions{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	var used int64
	for _, info := range list {
		var i int
		if _, err := fmt.Sscanf(string(info.ID), "busy-%d", &i); err != nil {
			t.Fatalf("unexpected object %s", info.ID)
		}
		obj, err := s.Get(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(obj.Bytes(), busyData(i)) {
			t.Errorf("%s recovered torn", info.ID)
		}
		obj.Close()
		used += s.arena.RoundUp(dataStart(len(info.ID)) + int64(busySize(i)))
	}
	if st, _ := s.Stats(ctx); st.Used != used || st.Objects != int64(len(list)) {
		t.Fatalf("stats %+v; the %d recovered objects take %d", st, len(list), used)
	}
	t.Logf("killed after %d acknowledged puts and %d deletes; recovered %d objects", len(acked), len(deleted), len(list))
}

// TestObjectsMapShrinks checks that the index is rebuilt small once most of
// a large store's objects are deleted, and that every survivor stays
// reachable across the rebuild.
func TestObjectsMapShrinks(t *testing.T) {
	s := open(t, backend.Config{"capacity": "64MiB", "max_objects": "40000"})
	ctx := context.Background()
	const n = shrinkMin + 100
	for i := range n {
		if _, err := s.Put(ctx, backend.ID(fmt.Sprint("m", i)), []byte{byte(i)}, backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if s.peakN < n {
		t.Fatalf("peak %d after %d puts", s.peakN, n)
	}
	keep := map[int]bool{}
	for i := range n {
		if i%100 == 0 {
			keep[i] = true
			continue
		}
		if err := s.Delete(ctx, backend.ID(fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	if s.peakN >= n/8 {
		t.Fatalf("objects map not rebuilt: peak still %d with %d objects", s.peakN, len(s.objects))
	}
	for i := range keep {
		obj, err := s.Get(ctx, backend.ID(fmt.Sprint("m", i)))
		if err != nil {
			t.Fatalf("object %d lost in the rebuild: %v", i, err)
		}
		if b := obj.Bytes(); len(b) != 1 || b[0] != byte(i) {
			t.Fatalf("object %d: bytes %v", i, b)
		}
		obj.Close()
	}
}

// TestEntryReuse checks that what a Get or a writer handed out keeps naming
// its own object after that object is deleted and its entry is reused by
// another put.
func TestEntryReuse(t *testing.T) {
	s := open(t, backend.Config{"capacity": "8MiB"})
	ctx := context.Background()
	if _, err := s.Put(ctx, "a", []byte("alpha"), backend.PutOptions{Importance: 3}); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.OpenWriter(ctx, "w", 2, backend.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("ww")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	obj.Close()
	for _, id := range []backend.ID{"a", "w"} {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.spare) == 0 {
		t.Fatal("deleted entries were not kept for reuse")
	}
	for _, id := range []backend.ID{"b", "c"} {
		if _, err := s.Put(ctx, id, []byte("bravo!"), backend.PutOptions{Importance: 9}); err != nil {
			t.Fatal(err)
		}
	}
	if info := obj.Info(); info.ID != "a" || info.Size != 5 || info.Importance != 3 || info.Checksum != backend.Checksum([]byte("alpha")) {
		t.Fatalf("closed object's info changed with the reused entry: %+v", info)
	}
	if _, err := obj.ReadAt(make([]byte, 1), 0); !errors.Is(err, backend.ErrClosed) || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("read after close: %v, want ErrClosed naming \"a\"", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, backend.ErrClosed) || !strings.Contains(err.Error(), `"w"`) {
		t.Fatalf("write after close: %v, want ErrClosed naming \"w\"", err)
	}
	for _, id := range []backend.ID{"b", "c"} {
		info, err := s.ObjectInfo(ctx, id)
		if err != nil || info.ID != id || info.Size != 6 || info.Importance != 9 || info.Pins != 0 {
			t.Fatalf("reused entry for %q: %+v, %v", id, info, err)
		}
	}
}
