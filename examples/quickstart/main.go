// Command quickstart shows distore's memory tier in a few steps: store an
// object, read it back without a copy, pin it so it cannot be deleted, unpin
// it and delete it.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"distore/backend"
	_ "distore/shmem" // registers the "memory" tier
)

func main() {
	ctx := context.Background()

	// Open the memory tier: 64 MiB of shared memory, off the Go heap.
	store, err := backend.Open(ctx, "memory", backend.Config{"capacity": "64MiB"})
	if err != nil {
		log.Fatalf("open the memory tier: %v", err)
	}
	defer store.Teardown(ctx)
	fmt.Println("Opened the memory tier with 64 MiB of shared memory.")

	// Put copies the bytes into shared memory once and records their checksum.
	id := backend.NewID()
	info, err := store.Put(ctx, id, []byte("trajectory #1: obs, action, reward"), backend.PutOptions{Importance: 5})
	if err != nil {
		log.Fatalf("put: %v", err)
	}
	fmt.Printf("Stored object %s: %d bytes, CRC-32C %08x, importance %d.\n", info.ID, info.Size, info.Checksum, info.Importance)

	// Get hands back the bytes where they lie in shared memory (no copy).
	obj, err := store.Get(ctx, id)
	if err != nil {
		log.Fatalf("get: %v", err)
	}
	fmt.Printf("Read it back without copying: %q.\n", obj.Bytes())
	obj.Close() // the bytes must not be used after Close

	// A pinned object stays where it is: no spill, no eviction, no delete.
	if err := store.Pin(ctx, id); err != nil {
		log.Fatalf("pin: %v", err)
	}
	fmt.Println("Pinned it.")
	err = store.Delete(ctx, id)
	if errors.Is(err, backend.ErrPinned) {
		fmt.Printf("Deleting it while pinned is refused, as it should be:\n  %v\n", err)
	} else {
		log.Fatalf("delete of a pinned object: got %v, want ErrPinned", err)
	}

	// Pins are counted; after the last Unpin the object can go.
	if err := store.Unpin(ctx, id); err != nil {
		log.Fatalf("unpin: %v", err)
	}
	fmt.Println("Unpinned it.")
	if err := store.Delete(ctx, id); err != nil {
		log.Fatalf("delete: %v", err)
	}
	fmt.Println("Deleted it.")
	if _, err := store.Get(ctx, id); errors.Is(err, backend.ErrNotFound) {
		fmt.Println("A Get now says it is gone:", err)
	}

	st, err := store.Stats(ctx)
	if err != nil {
		log.Fatalf("stats: %v", err)
	}
	fmt.Printf("The tier now holds %d objects, %s used of %s.\n", st.Objects, backend.FormatBytes(st.Used), backend.FormatBytes(st.Capacity))
}
