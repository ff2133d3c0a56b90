package disk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"distore/backend"
	"distore/backend/backendtest"
)

// orphanChunks counts chunk keys whose write token no manifest names.
func (t *Tier) orphanChunks() (int, error) {
	db, err := t.acquire("test", "")
	if err != nil {
		return 0, err
	}
	defer t.release()
	t.mu.Lock()
	live := map[uint64]bool{}
	for _, o := range t.objs {
		live[o.token] = true
	}
	t.mu.Unlock()
	n := 0
	err = db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix, opts.PrefetchValues = []byte{kindChunk}, false
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if !live[binary.BigEndian.Uint64(it.Item().Key()[1:])] {
				n++
			}
		}
		return nil
	})
	return n, err
}

func TestPersistence(t *testing.T) {
	tier := open(t, nil)
	ctx := context.Background()
	type obj struct {
		data       []byte
		importance int
		created    time.Time
	}
	want := map[backend.ID]obj{}
	created := time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
	for i, size := range []int64{0, 1, 4 << 10, 1 << 20, 1<<20 + 1, 6<<20 + 7} {
		id := backend.ID("put-" + string(rune('a'+i)))
		d := backendtest.Payload(size, uint64(i))
		if _, err := tier.Put(ctx, id, d, backend.PutOptions{Importance: i - 2, Created: created}); err != nil {
			t.Fatal(err)
		}
		want[id] = obj{d, i - 2, created}
		id = backend.ID("stream-" + string(rune('a'+i)))
		w, err := tier.OpenWriter(ctx, id, size, backend.PutOptions{Importance: i})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(d); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		info, _ := tier.ObjectInfo(ctx, id)
		want[id] = obj{d, i, info.Created}
	}
	if err := tier.Pin(ctx, "put-b"); err != nil {
		t.Fatal(err)
	}
	before, _ := tier.Stats(ctx)
	// A write in flight at Teardown leaves chunks without a manifest.
	w, err := tier.OpenWriter(ctx, "unfinished", 5<<20, backend.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(backendtest.Payload(3<<20, 9)); err != nil {
		t.Fatal(err)
	}
	if err := tier.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, backend.ErrInvalidArgument) && !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Close of a writer after Teardown = %v", err)
	}

	if err := tier.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := tier.orphanChunks(); err != nil || n != 0 {
		t.Fatalf("%d orphan chunks after Setup (%v)", n, err)
	}
	after, _ := tier.Stats(ctx)
	if after.Objects != before.Objects || after.Used != before.Used || after.Pinned != 0 {
		t.Fatalf("Stats before %+v, after restart %+v (pins are not persisted)", before, after)
	}
	if _, err := tier.ObjectInfo(ctx, "unfinished"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("unfinished write visible after restart: %v", err)
	}
	list, err := tier.List(ctx, backend.ListOptions{})
	if err != nil || len(list) != len(want) {
		t.Fatalf("List after restart: %d objects, %v; want %d", len(list), err, len(want))
	}
	for id, o := range want {
		obj, err := tier.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get(%s) after restart: %v", id, err)
		}
		info := obj.Info()
		if !bytes.Equal(obj.Bytes(), o.data) || info.Importance != o.importance || !info.Created.Equal(o.created) ||
			info.Checksum != backend.Checksum(o.data) || info.Pins != 0 {
			t.Fatalf("%s after restart: info %+v, bytes equal %v; want importance %d created %v",
				id, info, bytes.Equal(obj.Bytes(), o.data), o.importance, o.created)
		}
		obj.Close()
	}
}

// vlogFiles returns the value-log files of dir.
func vlogFiles(t *testing.T, dir string) []string {
	files, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no value-log files in %s: %v", dir, err)
	}
	return files
}

// flipBytes finds needle in the value-log files of dir and inverts n bytes
// at its middle.
func flipBytes(t *testing.T, dir string, needle []byte, n int) {
	t.Helper()
	for _, f := range vlogFiles(t, dir) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, needle)
		if i < 0 {
			continue
		}
		fh, err := os.OpenFile(f, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		at := int64(i + len(needle)/2)
		bad := make([]byte, n)
		copy(bad, b[at:])
		for j := range bad {
			bad[j] ^= 0xff
		}
		if _, err := fh.WriteAt(bad, at); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("object bytes not found in the value log")
}

func TestCorruptionIsDetected(t *testing.T) {
	dir := t.TempDir()
	tier := open(t, backend.Config{"dir": dir, "vlog_file_size": "16MiB"})
	ctx := context.Background()
	d := backendtest.Payload(8<<20, 3)
	small := backendtest.Payload(10000, 4)
	if _, err := tier.Put(ctx, "victim", d, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Put(ctx, "small", small, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	checkCorrupt := func(id backend.ID, chunk string) {
		t.Helper()
		obj, err := tier.Get(ctx, id)
		if err == nil {
			obj.Close()
		}
		if !errors.Is(err, backend.ErrCorrupt) || !strings.Contains(err.Error(), string(id)) || !strings.Contains(err.Error(), chunk) {
			t.Fatalf("Get of damaged %s = %v; want ErrCorrupt naming it and %q", id, err, chunk)
		}
	}

	// Damage the files under the open tier (its mmap sees the page cache):
	// the middle of chunk 5 of victim, and one byte of small. Each needle
	// starts at a 4 KiB page, whose first 16 bytes make it unique.
	flipBytes(t, dir, d[5<<20+8192:5<<20+8192+64], 16)
	flipBytes(t, dir, small[4096:4096+64], 1)
	checkCorrupt("victim", "chunk 5 of 8")
	checkCorrupt("small", "chunk 0 of 1")
	r, err := tier.OpenReader(ctx, "victim", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if !errors.Is(err, backend.ErrCorrupt) || !bytes.Equal(got, d[:5<<20]) {
		t.Fatalf("streamed read of damaged object: %d good bytes, err %v; want the 5 MiB before chunk 5, then ErrCorrupt", len(got), err)
	}
	// A read of undamaged bytes of chunk 5 into a buffer that takes them
	// all (copied straight from the value log) still checks the whole chunk.
	for _, rg := range [][2]int64{{5 << 20, 100}, {5<<20 + 1<<19, 1 << 19}, {4<<20 + 1000, 1 << 20}} {
		r, err = tier.OpenReader(ctx, "victim", rg[0], rg[1])
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadFull(r, make([]byte, rg[1]))
		r.Close()
		if !errors.Is(err, backend.ErrCorrupt) || !strings.Contains(err.Error(), "chunk 5 of 8") {
			t.Fatalf("read of %d bytes at %d, in damaged chunk 5: %v; want ErrCorrupt naming it", rg[1], rg[0], err)
		}
	}
	r, err = tier.OpenReader(ctx, "victim", 6<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, d[6<<20:7<<20]) {
		t.Fatalf("read of an undamaged chunk: %v", err)
	}

	// After a restart Badger may notice first (it checks the entries at the
	// end of the newest value-log file and cuts them): either way the damaged
	// objects are ErrCorrupt, never bad bytes.
	if err := tier.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tier.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	checkCorrupt("victim", "chunk ")
	checkCorrupt("small", "chunk ")
}
