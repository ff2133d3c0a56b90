package spill_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"distore/backend"
	_ "distore/disk"
	_ "distore/shmem"
	"distore/spill"
)

// A memory,disk stack: objects spill to disk as the memory tier fills, the
// important ones stay in memory, and Prefetch brings a cold one back.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "spill-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	tiers, err := spill.ParseTiers("memory,disk", map[string]backend.Config{
		"memory": {"capacity": "1MiB"},
		"disk":   {"dir": dir, "sync": "false"},
	})
	if err != nil {
		log.Fatal(err)
	}
	s, err := spill.Open(ctx, spill.Options{Tiers: tiers})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Teardown(ctx)

	// 3 MiB into a 1 MiB memory tier: one important object, then eleven others.
	data := make([]byte, 256<<10)
	if _, err := s.Put(ctx, "model-weights", data, backend.PutOptions{Importance: 10}); err != nil {
		log.Fatal(err)
	}
	for i := range 11 {
		if _, err := s.Put(ctx, backend.ID(fmt.Sprintf("batch-%02d", i)), data, backend.PutOptions{}); err != nil {
			log.Fatal(err)
		}
	}
	if err := s.Settle(ctx); err != nil { // wait for the mover, for a stable printout
		log.Fatal(err)
	}
	info, _ := s.ObjectInfo(ctx, "model-weights")
	fmt.Println("model-weights is in", info.Tier)
	info, _ = s.ObjectInfo(ctx, "batch-00")
	fmt.Println("batch-00 is in", info.Tier)

	// A scheduler about to use batch-00 brings it back to memory.
	if err := s.Prefetch(ctx, "batch-00"); err != nil {
		log.Fatal(err)
	}
	info, _ = s.ObjectInfo(ctx, "batch-00")
	fmt.Println("after Prefetch batch-00 is in", info.Tier)

	m := s.Metrics()
	fmt.Println("spilled some:", m.SpilledObjects > 0, "promoted:", m.PromotedObjects)
	// Output:
	// model-weights is in memory
	// batch-00 is in disk
	// after Prefetch batch-00 is in memory
	// spilled some: true promoted: 1
}
