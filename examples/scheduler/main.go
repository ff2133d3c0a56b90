// Command scheduler shows how a task scheduler uses a distore stack: it pins
// the inputs of its next tasks (so the spill policy keeps them, and with
// PromoteOnPin brings them up from disk), prefetches them, runs each task,
// then unpins and drops what the task consumed. Meanwhile the tasks' outputs
// keep the memory tier under pressure, so unpinned data spills to disk.
//
//	go run ./examples/scheduler
package main

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

const (
	tasks     = 8
	perTask   = 3        // inputs per task
	inputSize = 1 << 20  // bytes per input
	lookahead = 2        // tasks whose inputs are pinned ahead of time
	memCap    = 12 << 20 // the memory tier holds 12 inputs; there are 24
)

func inputID(task, i int) backend.ID { return backend.ID(fmt.Sprintf("in-%d-%d", task, i)) }

func main() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "distore-scheduler")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	tiers, err := spill.ParseTiers("memory,disk", map[string]backend.Config{
		"memory": {"capacity": fmt.Sprint(memCap)},
		"disk":   {"dir": dir, "sync": "false"},
	})
	if err != nil {
		log.Fatal(err)
	}
	s, err := spill.Open(ctx, spill.Options{Tiers: tiers, PromoteOnPin: true})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Teardown(ctx)

	// The data engine produces every task's inputs up front: twice what
	// memory holds, so the early ones spill to disk.
	for task := range tasks {
		for i := range perTask {
			data := make([]byte, inputSize)
			data[0], data[1] = byte(task), byte(i)
			if _, err := s.Put(ctx, inputID(task, i), data, backend.PutOptions{}); err != nil {
				log.Fatal(err)
			}
		}
	}
	_ = s.Settle(ctx)
	fmt.Printf("produced %d inputs of %s; memory holds %d of them\n", tasks*perTask, backend.FormatBytes(inputSize), where(ctx, s)["memory"])

	pin := func(task int) {
		was := ""
		for i := range perTask {
			if info, err := s.ObjectInfo(ctx, inputID(task, i)); err == nil {
				was += " " + info.Tier
			}
			if err := s.Pin(ctx, inputID(task, i)); err != nil {
				log.Fatal(err)
			}
		}
		fmt.Printf("pinned the inputs of task %d (they were in:%s)\n", task, was)
	}
	for task := 0; task < min(lookahead, tasks); task++ {
		pin(task)
	}
	for task := range tasks {
		// Keep the next tasks' inputs pinned: they cannot be spilled, and
		// Prefetch brings them to memory before they are needed.
		if next := task + lookahead; next < tasks {
			pin(next)
		}
		for i := range perTask {
			if err := s.Prefetch(ctx, inputID(task, i)); err != nil {
				log.Fatal(err)
			}
		}

		// Run the task: read its inputs (zero-copy from memory).
		sum, locs := 0, ""
		for i := range perTask {
			obj, err := s.Get(ctx, inputID(task, i))
			if err != nil {
				log.Fatal(err)
			}
			b := obj.Bytes()
			if b[0] != byte(task) || b[1] != byte(i) {
				log.Fatalf("task %d: input %d has the wrong bytes", task, i)
			}
			sum += len(b)
			locs += fmt.Sprintf(" %s:%s/pins=%d", obj.Info().ID, obj.Info().Tier, obj.Info().Pins)
			obj.Close()
		}
		// Its output adds to memory pressure; the policy spills unpinned data.
		out := backend.ID(fmt.Sprintf("out-%d", task))
		if _, err := s.Put(ctx, out, make([]byte, 2*inputSize), backend.PutOptions{Importance: 1}); err != nil {
			log.Fatal(err)
		}
		// Done with the inputs: unpin and drop them.
		for i := range perTask {
			if err := s.Unpin(ctx, inputID(task, i)); err != nil {
				log.Fatal(err)
			}
			if err := s.Delete(ctx, inputID(task, i)); err != nil {
				log.Fatal(err)
			}
		}
		fmt.Printf("task %d read %s from%s; wrote %s\n", task, backend.FormatBytes(int64(sum)), locs, out)
	}
	_ = s.Settle(ctx)
	m := s.Metrics()
	fmt.Printf("done: %d objects spilled, %d promoted (by pins and prefetches); now %v\n",
		m.SpilledObjects, m.PromotedObjects, where(ctx, s))
}

// where counts the stack's objects per tier.
func where(ctx context.Context, s *spill.Stack) map[string]int {
	out := map[string]int{}
	list, err := s.List(ctx, backend.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, info := range list {
		out[info.Tier]++
	}
	return out
}
