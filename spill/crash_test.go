package spill

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"distore/backend"
)

// Crash test: a child process (this test binary, running TestCrashChild) runs
// a spilling and promoting workload on a memory,disk stack whose memory tier
// is a file under /dev/shm, logging each acknowledged Put; the parent kills it
// with SIGKILL at a random moment, reopens the stack and checks that every
// acknowledged object is there, readable, and in exactly one tier.

const (
	crashEnvDir   = "SPILL_CRASH_DIR"
	crashEnvShm   = "SPILL_CRASH_SHM"
	crashEnvRound = "SPILL_CRASH_ROUND"
	crashMemCap   = 1 << 20
)

func crashSpecs(dir, shm string) []TierSpec {
	return []TierSpec{
		{Name: "memory", Config: backend.Config{"capacity": fmt.Sprint(crashMemCap), "path": shm, "keep": "true"}},
		{Name: "disk", Config: backend.Config{"dir": filepath.Join(dir, "disk"), "sync": "false", "gc_interval": "1h"}},
	}
}

// crashSize and crashSeed derive an object's size and contents from its ID.
func crashData(round, i int) []byte {
	r := rand.New(rand.NewPCG(uint64(round), uint64(i)))
	return payload(8<<10+r.IntN(56<<10), uint64(round)<<32|uint64(i))
}

func TestCrash(t *testing.T) {
	if _, err := os.Stat("/dev/shm"); err != nil {
		t.Skip("no /dev/shm here:", err)
	}
	dir := t.TempDir()
	shm := fmt.Sprintf("/dev/shm/distore-spill-crash-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() { os.Remove(shm) })
	ackPath := filepath.Join(dir, "acked")
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	killedMidWork, dups := 0, int64(0)
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvShm+"="+shm, crashEnvRound+"="+strconv.Itoa(round))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-time.After(time.Duration(100+rng.IntN(600)) * time.Millisecond):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			killedMidWork++
		case err := <-exited:
			if err != nil {
				t.Fatalf("round %d: child failed before the kill: %v\n%s", round, err, out.String())
			}
		}
		if t.Failed() {
			t.Fatalf("round %d: child output:\n%s", round, out.String())
		}
		dups += crashVerify(t, dir, shm, ackPath, round)
		if t.Failed() {
			t.Fatalf("round %d: child output:\n%s", round, out.String())
		}
	}
	t.Logf("%d rounds, %d killed while working, %d interrupted moves resolved", rounds, killedMidWork, dups)
	if killedMidWork < rounds/2 {
		t.Errorf("only %d of %d children were killed while working", killedMidWork, rounds)
	}
}

// crashVerify reopens the stack and checks every acknowledged object.
// It returns the duplicates resolved by the reopen.
func crashVerify(t *testing.T, dir, shm, ackPath string, round int) int64 {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, Options{Tiers: crashSpecs(dir, shm)})
	if err != nil {
		t.Fatalf("round %d: reopen: %v", round, err)
	}
	defer s.Teardown(ctx)
	f, err := os.Open(ackPath)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	acked := map[backend.ID]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r, i int
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &r, &i); err != nil {
			continue // a line cut by the kill
		}
		id := backend.ID(fmt.Sprintf("c-%d-%d", r, i))
		acked[id] = true
		want := crashData(r, i)
		obj, err := s.Get(ctx, id)
		if err != nil {
			t.Errorf("round %d: acknowledged %s lost: %v", round, id, err)
			return 0
		}
		if !bytes.Equal(obj.Bytes(), want) {
			t.Fatalf("round %d: acknowledged %s reads back different bytes", round, id)
		}
		obj.Close()
		if c := copies(t, s, id); c != 1 {
			t.Fatalf("round %d: %s is in %d tiers after recovery", round, id, c)
		}
	}
	list, err := s.List(ctx, backend.ListOptions{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[backend.ID]bool{}
	for _, info := range list {
		if seen[info.ID] {
			t.Fatalf("round %d: %s listed twice", round, info.ID)
		}
		seen[info.ID] = true
	}
	for id := range acked {
		if !seen[id] {
			t.Fatalf("round %d: acknowledged %s not listed", round, id)
		}
	}
	dups := s.Metrics().DuplicatesResolved
	if round%5 == 4 {
		t.Logf("round %d: %d acknowledged objects verified, %d listed; duplicates resolved at open: %d",
			round, len(acked), len(list), dups)
	}
	return dups
}

// TestCrashChild is the workload TestCrash kills; it does nothing unless run
// by TestCrash.
func TestCrashChild(t *testing.T) {
	dir, shm := os.Getenv(crashEnvDir), os.Getenv(crashEnvShm)
	if dir == "" || shm == "" {
		t.Skip("run by TestCrash")
	}
	round, _ := strconv.Atoi(os.Getenv(crashEnvRound))
	// Widen the window in which an object is in two tiers, so that kills
	// land in it.
	testHookCopied = func() { time.Sleep(5 * time.Millisecond) }
	ctx := context.Background()
	s, err := Open(ctx, Options{Tiers: crashSpecs(dir, shm), PromoteOnGet: true, MaxConcurrentMoves: 3})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := os.OpenFile(filepath.Join(dir, "acked"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(round), 2))
	var mine []backend.ID
	for i := 0; i < 40; i++ {
		id := backend.ID(fmt.Sprintf("c-%d-%d", round, i))
		if _, err := s.Put(ctx, id, crashData(round, i), backend.PutOptions{Importance: rng.IntN(4)}); err != nil {
			t.Fatal(err)
		}
		// Acknowledged: one write(2), which a SIGKILL cannot cut in half.
		if _, err := ack.WriteString(fmt.Sprintf("%d %d\n", round, i)); err != nil {
			t.Fatal(err)
		}
		mine = append(mine, id)
		if obj, err := s.Get(ctx, mine[rng.IntN(len(mine))]); err == nil { // promotes from disk
			obj.Close()
		}
	}
	// Keep moving objects up and down until killed.
	for i := 0; i < 2000; i++ {
		id := mine[rng.IntN(len(mine))]
		if i%3 == 0 {
			_ = s.Prefetch(ctx, id)
		} else if obj, err := s.Get(ctx, id); err == nil {
			obj.Close()
		}
	}
	_ = s.Teardown(ctx)
}
