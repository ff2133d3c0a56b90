package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"distore/backend"
	"distore/backend/backendtest"
)

// fullFSConfig keeps Badger's files small, so a small tmpfs holds a few of them.
func fullFSConfig(dir string) backend.Config {
	return backend.Config{"dir": dir, "vlog_file_size": "16MiB", "memtable_size": "4MiB",
		"reserve": "24MiB", "gc_interval": "1h"}
}

// wantSpaceErr checks err is ErrFull from the file-system check, naming dir.
func wantSpaceErr(t *testing.T, what string, err error, dir string) {
	t.Helper()
	var se *backend.SpaceError
	if !errors.Is(err, backend.ErrFull) || !errors.As(err, &se) || se.Path != dir {
		t.Fatalf("%s: %v; want a *backend.SpaceError (ErrFull) naming %s", what, err, dir)
	}
}

// TestFullFileSystem fills the tier's file system from outside (dd) while
// puts run: the process survives (no SIGBUS), puts fail with ErrFull naming
// the file system, every acknowledged object stays intact, and writes resume
// once the space is freed. Then the same with the file system full at Setup.
func TestFullFileSystem(t *testing.T) {
	mnt := backendtest.TmpFS(t, 128<<20)
	dir := filepath.Join(mnt, "db")
	tier := open(t, fullFSConfig(dir))
	ctx := context.Background()

	var mu sync.Mutex
	acked := map[backend.ID][]byte{}
	var fullErrs []error
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := backend.ID(fmt.Sprintf("obj-%05d", i))
			data := backendtest.Payload(int64(64<<10+i*4096%(256<<10)), uint64(i))
			_, err := tier.Put(ctx, id, data, backend.PutOptions{})
			mu.Lock()
			if err == nil {
				acked[id] = data
			} else {
				fullErrs = append(fullErrs, err)
			}
			mu.Unlock()
			if err != nil {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				close(stop)
				<-done
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("puts before the fill", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 20 })
	fill := backendtest.FillFS(t, mnt, "fill")
	waitFor("puts refused", func() bool { mu.Lock(); defer mu.Unlock(); return len(fullErrs) >= 20 })
	close(stop)
	<-done
	for i, err := range fullErrs {
		wantSpaceErr(t, fmt.Sprintf("put %d after the fill", i), err, dir)
	}
	t.Logf("%d puts acknowledged, %d refused; last refusal: %v", len(acked), len(fullErrs), fullErrs[len(fullErrs)-1])
	checkAll := func(tier backend.Backend) {
		t.Helper()
		for id, want := range acked {
			obj, err := tier.Get(ctx, id)
			if err != nil {
				t.Fatalf("Get(%s) of an acknowledged object: %v", id, err)
			}
			if !bytes.Equal(obj.Bytes(), want) {
				t.Fatalf("Get(%s): bytes differ", id)
			}
			obj.Close()
		}
	}
	checkAll(tier)
	_, err := tier.Put(ctx, "while-full", []byte("x"), backend.PutOptions{})
	wantSpaceErr(t, "Put on the full file system", err, dir)

	// Space freed: writes resume.
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Put(ctx, "after-free", []byte("back"), backend.PutOptions{}); err != nil {
		t.Fatalf("Put after the space was freed: %v", err)
	}
	acked["after-free"] = []byte("back")

	// Full at start: Setup succeeds read-only and serves reads; writes are
	// ErrFull until space comes back, then resume without a restart.
	if err := tier.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	fill = backendtest.FillFS(t, mnt, "fill")
	tier = open(t, fullFSConfig(dir))
	checkAll(tier)
	_, err = tier.Put(ctx, "full-at-start", []byte("x"), backend.PutOptions{})
	wantSpaceErr(t, "Put after a Setup on a full file system", err, dir)
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Put(ctx, "full-at-start", []byte("x"), backend.PutOptions{}); err != nil {
		t.Fatalf("Put once space came back: %v", err)
	}
	if err := tier.Delete(ctx, "after-free"); err != nil {
		t.Fatalf("Delete once space came back: %v", err)
	}
	delete(acked, "after-free")
	checkAll(tier)
}
