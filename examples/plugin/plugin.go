// Command plugin shows a user-defined tier in a distore stack: the map-backed
// tier of package mytier, registered by name as "mytier" when imported, used
// below the memory tier with the stack string "memory,mytier". Objects that
// do not fit in memory spill into it; Prefetch brings them back.
//
//	go run ./examples/plugin
package main

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"distore/backend"
	_ "distore/examples/mytier" // registers the tier "mytier"
	_ "distore/shmem"           // registers the tier "memory"
	"distore/spill"
)

func main() {
	ctx := context.Background()
	tiers, err := spill.ParseTiers("memory,mytier", map[string]backend.Config{
		"memory": {"capacity": "4MiB"},
		"mytier": {"capacity": "64MiB"},
	})
	if err != nil {
		log.Fatal(err)
	}
	s, err := spill.Open(ctx, spill.Options{Tiers: tiers})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Teardown(ctx)
	fmt.Printf("stack %q, levels %v\n", s.Name(), s.Level())

	// 12 MiB into a 4 MiB memory tier: the rest spills into mytier.
	const n, size = 48, 256 << 10
	for i := range n {
		data := bytes.Repeat([]byte{byte(i)}, size)
		if _, err := s.Put(ctx, backend.ID(fmt.Sprintf("obj-%02d", i)), data, backend.PutOptions{Importance: i % 4}); err != nil {
			log.Fatal(err)
		}
	}
	if err := s.Settle(ctx); err != nil {
		log.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range st.Tiers {
		fmt.Printf("  %-7s %2d objects, %s of %s\n", t.Tier, t.Objects, backend.FormatBytes(t.Used), backend.FormatBytes(t.Capacity))
	}

	// Every object reads back, wherever it is.
	for i := range n {
		obj, err := s.Get(ctx, backend.ID(fmt.Sprintf("obj-%02d", i)))
		if err != nil {
			log.Fatal(err)
		}
		if b := obj.Bytes(); len(b) != size || b[0] != byte(i) || b[size-1] != byte(i) {
			log.Fatalf("obj-%02d reads back wrong", i)
		}
		obj.Close()
	}
	fmt.Printf("all %d objects read back\n", n)

	// Bring a spilled object back up.
	info, _ := s.ObjectInfo(ctx, "obj-00")
	fmt.Printf("obj-00 (importance %d) is in %s\n", info.Importance, info.Tier)
	if err := s.Prefetch(ctx, "obj-00"); err != nil {
		log.Fatal(err)
	}
	info, _ = s.ObjectInfo(ctx, "obj-00")
	fmt.Printf("after Prefetch obj-00 is in %s\n", info.Tier)
	m := s.Metrics()
	fmt.Printf("spilled %d objects (%s), promoted %d\n", m.SpilledObjects, backend.FormatBytes(m.SpilledBytes), m.PromotedObjects)
}
