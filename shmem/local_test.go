package shmem

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"distore/backend"
)

func TestLocalArenaFileAndOffset(t *testing.T) {
	ctx := context.Background()
	s := open(t, backend.Config{"capacity": "4MiB"})
	data := bytes.Repeat([]byte("local!"), 1000)
	if _, err := s.Put(ctx, "obj", data, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Get(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	off, ok := s.ArenaOffset(obj.Bytes())
	if !ok {
		t.Fatal("Get's bytes are not in the arena")
	}
	if _, ok := s.ArenaOffset(make([]byte, 10)); ok {
		t.Fatal("heap bytes reported in the arena")
	}
	ro, err := s.ArenaFile(false)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	size := int(s.ArenaSize())
	if _, err := unix.Mmap(int(ro.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
		t.Fatal("a read-only arena descriptor was mapped writable")
	}
	mem, err := unix.Mmap(int(ro.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if !bytes.Equal(mem[off:off+int64(len(data))], data) {
		t.Fatal("the other mapping does not hold the object at its offset")
	}
}

func TestLocalFillInPlace(t *testing.T) {
	ctx := context.Background()
	s := open(t, backend.Config{"capacity": "16MiB", "copy_threads": "2"})
	rw, err := s.ArenaFile(true)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	mem, err := unix.Mmap(int(rw.Fd()), 0, int(s.ArenaSize()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	for _, tc := range []struct {
		name    string
		size    int
		corrupt bool
	}{{"small", 1000, false}, {"large", 5 << 20, false}, {"corrupt", 3 << 20, true}} {
		t.Run(tc.name, func(t *testing.T) {
			id := backend.ID(tc.name)
			w, err := s.OpenWriter(ctx, id, int64(tc.size), backend.PutOptions{})
			if err != nil {
				t.Fatal(err)
			}
			region, ok := s.PendingRegion(id)
			if !ok || len(region) != tc.size {
				t.Fatalf("PendingRegion: %d bytes, %v", len(region), ok)
			}
			off, _ := s.ArenaOffset(region)
			data := bytes.Repeat([]byte{byte(tc.size)}, tc.size)
			data[tc.size/2] = 7
			copy(mem[off:], data) // the other process's write
			want := backend.Checksum(data)
			if tc.corrupt {
				want++
			}
			w.(*writer).ExpectChecksum(want)
			if _, err := w.Write(region); err != nil {
				t.Fatal(err)
			}
			err = w.Close()
			if tc.corrupt {
				if !errors.Is(err, backend.ErrCorrupt) {
					t.Fatalf("corrupt seal: %v", err)
				}
				if _, err := s.ObjectInfo(ctx, id); !errors.Is(err, backend.ErrNotFound) {
					t.Fatalf("a corrupt put left %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.ObjectInfo(ctx, id)
			if err != nil || info.Checksum != backend.Checksum(data) {
				t.Fatalf("info %+v, %v", info, err)
			}
			obj, _ := s.Get(ctx, id)
			defer obj.Close()
			if !bytes.Equal(obj.Bytes(), data) {
				t.Fatal("bytes differ")
			}
		})
	}
}
