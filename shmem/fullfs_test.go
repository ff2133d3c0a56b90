package shmem

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"distore/backend"
	"distore/backend/backendtest"
)

// TestArenaFileOnFullFileSystem: an arena file that does not fit its file
// system fails Setup with ErrFull naming the file system (it is allocated,
// not left sparse to die of SIGBUS on a later write); an arena file kept from
// before opens on a full file system and serves its objects.
func TestArenaFileOnFullFileSystem(t *testing.T) {
	mnt := backendtest.TmpFS(t, 32<<20)
	ctx := context.Background()

	tooBig := filepath.Join(mnt, "too-big")
	_, err := backend.Open(ctx, Name, backend.Config{"path": tooBig, "capacity": "64MiB"})
	var se *backend.SpaceError
	if !errors.Is(err, backend.ErrFull) || !errors.As(err, &se) || se.Path != tooBig {
		t.Fatalf("Setup of a 64 MiB arena on a 32 MiB tmpfs: %v; want a *backend.SpaceError naming %s", err, tooBig)
	}
	if _, err := os.Stat(tooBig); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the arena file that did not fit was left behind: %v", err)
	}

	path := filepath.Join(mnt, "arena")
	cfg := backend.Config{"path": path, "capacity": "8MiB", "keep": "true"}
	b, err := backend.Open(ctx, Name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := backendtest.Payload(1<<20, 7)
	if _, err := b.Put(ctx, "kept", data, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	backendtest.FillFS(t, mnt, "fill")
	b, err = backend.Open(ctx, Name, cfg)
	if err != nil {
		t.Fatalf("Setup over a kept arena on a full file system: %v", err)
	}
	defer b.Teardown(ctx)
	obj, err := b.Get(ctx, "kept")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if !bytes.Equal(obj.Bytes(), data) {
		t.Fatal("kept object differs")
	}
	// Writes into the allocated arena need no new blocks.
	if _, err := b.Put(ctx, "new", data, backend.PutOptions{}); err != nil {
		t.Fatalf("Put into the allocated arena on a full file system: %v", err)
	}
}
