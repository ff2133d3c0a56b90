package spill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"distore/backend"
	"distore/backend/backendtest"
)

// openFullFSStack opens a memory,disk stack whose disk tier is in dir and
// whose memory arena is the file arena, kept across restarts.
func openFullFSStack(t *testing.T, arena, dir string) *Stack {
	t.Helper()
	cfgs := map[string]backend.Config{
		"memory": {"capacity": "2MiB", "path": arena, "keep": "true"},
		"disk": {"dir": dir, "vlog_file_size": "16MiB", "memtable_size": "4MiB",
			"reserve": "24MiB", "gc_interval": "1h"},
	}
	tiers, err := ParseTiers("memory,disk", cfgs)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), Options{Tiers: tiers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Teardown(context.Background()) })
	return s
}

// TestFullFileSystem fills the disk tier's file system (a tmpfs) from outside
// while puts run on a memory,disk stack: puts end in ErrFull naming the file
// system within their deadline, never hang or crash, every acknowledged
// object stays readable, and writes resume once space is freed; then the same
// with the file system full when the stack opens.
func TestFullFileSystem(t *testing.T) {
	mnt := backendtest.TmpFS(t, 128<<20)
	dir := filepath.Join(mnt, "disk")
	arena := filepath.Join(backendtest.TmpFS(t, 8<<20), "arena") // a file system of its own, never filled
	s := openFullFSStack(t, arena, dir)
	acked := map[backend.ID][]byte{}
	put := func(i int) error {
		id := backend.ID(fmt.Sprintf("obj-%05d", i))
		data := payload(256<<10, uint64(i))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := s.Put(ctx, id, data, backend.PutOptions{})
		if err == nil {
			acked[id] = data
		}
		return err
	}
	// resume puts object i once space is back: the stack tries a tier that
	// refused for lack of space again after noSpaceBackoff.
	resume := func(i int) error {
		deadline := time.Now().Add(noSpaceBackoff + 10*time.Second)
		for {
			err := put(i)
			if err == nil || !errors.Is(err, backend.ErrFull) || time.Now().After(deadline) {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	i := 0
	for ; i < 40; i++ { // 10 MiB: memory spills to disk
		if err := put(i); err != nil {
			t.Fatalf("put %d before the fill: %v", i, err)
		}
	}
	fill := backendtest.FillFS(t, mnt, "fill")
	var last error
	refused := 0
	for deadline := time.Now().Add(60 * time.Second); refused < 5; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("puts still accepted 60s after the file system filled (%d acknowledged)", len(acked))
		}
		if err := put(i); err != nil {
			var se *backend.SpaceError
			if !errors.Is(err, backend.ErrFull) || !errors.As(err, &se) || se.Path != dir {
				t.Fatalf("put %d on a full file system: %v; want ErrFull naming %s", i, err, dir)
			}
			refused, last = refused+1, err
		}
	}
	t.Logf("%d acknowledged; refusal: %v", len(acked), last)
	checkAll := func() {
		t.Helper()
		for id, want := range acked {
			obj, err := s.Get(context.Background(), id)
			if err != nil {
				t.Fatalf("Get(%s): %v", id, err)
			}
			if !bytes.Equal(obj.Bytes(), want) {
				t.Fatalf("Get(%s): bytes differ", id)
			}
			obj.Close()
		}
	}
	checkAll()
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	for j := 0; j < 8; j, i = j+1, i+1 {
		if err := resume(i); err != nil {
			t.Fatalf("put after the space was freed: %v", err)
		}
	}
	checkAll()

	// Full at start: the stack opens, reads work, writes resume once freed.
	if err := s.Teardown(context.Background()); err != nil {
		t.Fatal(err)
	}
	fill = backendtest.FillFS(t, mnt, "fill")
	s = openFullFSStack(t, arena, dir)
	checkAll()
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	for j := 0; j < 8; j, i = j+1, i+1 {
		if err := resume(i); err != nil {
			t.Fatalf("put after the space was freed (stack opened on a full file system): %v", err)
		}
	}
	checkAll()
}
