package spill

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"distore/backend"
	_ "distore/gpu"
)

// TestGPUStack: a gpu,memory,disk stack spills from device memory down and
// promotes back. It needs an NVIDIA GPU and driver; elsewhere it skips with
// the reason the GPU tier gives.
func TestGPUStack(t *testing.T) {
	const gpuCap, memCap, size = 32 << 20, 64 << 20, 2 << 20
	cfgs := tierCfg(memCap, 0, t.TempDir())
	cfgs["gpu"] = backend.Config{"capacity": fmt.Sprint(gpuCap)}
	tiers, err := ParseTiers("gpu,memory,disk", cfgs)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := Open(ctx, Options{Tiers: tiers})
	if errors.Is(err, backend.ErrUnavailable) {
		t.Skipf("no GPU here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Teardown(context.Background()) })

	// Four times the GPU's capacity, every object as important as the next.
	const n = 4 * gpuCap / size
	for i := range n {
		if _, err := s.Put(ctx, backend.ID(fmt.Sprintf("g-%03d", i)), payload(size, uint64(i)), backend.PutOptions{Importance: 1}); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	settle(t, s)
	where := map[string]int{}
	var cold backend.ID
	for i := range n {
		id := backend.ID(fmt.Sprintf("g-%03d", i))
		tier := tierOf(t, s, id)
		where[tier]++
		if tier != "gpu" && cold == "" {
			cold = id
		}
		checkBytes(t, s, id, payload(size, uint64(i)))
	}
	if where["gpu"] == 0 || where["gpu"] == n || cold == "" {
		t.Fatalf("objects by tier %v: want some in gpu and some spilled below", where)
	}
	if err := s.Prefetch(ctx, cold); err != nil {
		t.Fatalf("Prefetch(%s): %v", cold, err)
	}
	if tier := tierOf(t, s, cold); tier != "gpu" {
		t.Fatalf("after Prefetch %s is in %s, want gpu", cold, tier)
	}
	var i int
	fmt.Sscanf(string(cold), "g-%d", &i)
	checkBytes(t, s, cold, payload(size, uint64(i)))
	if c := copies(t, s, cold); c != 1 {
		t.Fatalf("%s is in %d tiers after Prefetch", cold, c)
	}
}
