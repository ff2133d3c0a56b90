package disk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"distore/backend"
	"distore/backend/backendtest"
)

// The crash test re-executes the test binary as a child that writes and
// deletes objects until it is killed with SIGKILL at a random moment.
const crashEnv = "DISTORE_DISK_CRASH_CHILD"

// crashSize is the size of the object with sequence number seq: mostly small,
// some over putGroup so the pipelined path is cut too.
func crashSize(seq uint64) int64 {
	switch seq % 7 {
	case 0:
		return 0
	case 3:
		return 6<<20 + int64(seq%1000)
	case 5:
		return 1<<20 + 3
	}
	return int64((seq * 7919) % (64 << 10))
}

// TestCrashChild is the child: it is skipped unless run by TestCrash.
func TestCrashChild(t *testing.T) {
	spec := os.Getenv(crashEnv)
	if spec == "" {
		t.Skip("run by TestCrash")
	}
	dir, round, _ := strings.Cut(spec, ",")
	putGroup = 2 << 20 // 6 MiB objects take the pipelined path
	ack, err := os.OpenFile(filepath.Join(dir, "ack"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	logLine := func(format string, args ...any) {
		fmt.Fprintf(ack, format+"\n", args...)
		if err := ack.Sync(); err != nil {
			panic(err)
		}
	}
	// sync=false: a SIGKILL leaves the page cache intact, so what is tested
	// here is the tier's commit order, not fsync; it makes each round quicker.
	b, err := backend.Open(context.Background(), Name, backend.Config{"dir": filepath.Join(dir, "db"), "sync": "false"})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("READY")
	ctx := context.Background()
	var live []backend.ID
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := 0; ; i++ {
		seq := r.Uint64() >> 1
		id := backend.ID(fmt.Sprintf("r%s-%d-%d", round, i, seq))
		switch op := r.IntN(10); {
		case op < 6 || len(live) == 0:
			d := backendtest.Payload(crashSize(seq), seq)
			logLine("start %s", id)
			if op == 0 {
				w, err := b.OpenWriter(ctx, id, int64(len(d)), backend.PutOptions{})
				if err != nil {
					panic(err)
				}
				for off := 0; off < len(d); off += 300 << 10 {
					if _, err := w.Write(d[off:min(off+300<<10, len(d))]); err != nil {
						panic(err)
					}
				}
				if err := w.Close(); err != nil {
					panic(err)
				}
			} else if _, err := b.Put(ctx, id, d, backend.PutOptions{}); err != nil {
				panic(err)
			}
			logLine("put %s %d %d", id, seq, backend.Checksum(d))
			live = append(live, id)
		case op < 8:
			k := r.IntN(len(live))
			id := live[k]
			live = append(live[:k], live[k+1:]...)
			logLine("deleting %s", id)
			if err := b.Delete(ctx, id); err != nil {
				panic(err)
			}
			logLine("deleted %s", id)
		default:
			// A write that is abandoned half-way: its chunks are orphans.
			w, err := b.OpenWriter(ctx, id, 8<<20, backend.PutOptions{})
			if err != nil {
				panic(err)
			}
			_, _ = w.Write(backendtest.Payload(5<<20, seq))
			if r.IntN(2) == 0 {
				_ = w.Abort()
			}
		}
	}
}

// TestCrash kills a writing child at random moments and checks after each
// kill that every acknowledged object is there byte for byte, every
// acknowledged delete happened, and nothing uncommitted is visible.
func TestCrash(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("child")
	}
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	dir := t.TempDir()
	tier, err := New(backend.Config{"dir": filepath.Join(dir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	ctx := context.Background()
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", crashEnv, dir, round))
		var out bytes.Buffer
		cmd.Stderr = &out
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill at a random moment once the child has the tier open.
		sc := bufio.NewScanner(stdout)
		for sc.Scan() && sc.Text() != "READY" {
			out.WriteString(sc.Text() + "\n")
		}
		time.Sleep(time.Duration(20+r.IntN(400)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child ended before the kill (%v):\n%s", round, err, out.String())
		}
		checkAfterCrash(t, ctx, backend.Unwrap(tier).(*Tier), dir, round)
	}
}

func checkAfterCrash(t *testing.T, ctx context.Context, tier *Tier, dir string, round int) {
	t.Helper()
	if err := tier.Setup(ctx); err != nil {
		t.Fatalf("round %d: Setup after kill: %v", round, err)
	}
	defer tier.Teardown(ctx)
	f, err := os.Open(filepath.Join(dir, "ack"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type acked struct {
		seq uint64
		crc uint32
	}
	put := map[backend.ID]acked{}
	deleted := map[backend.ID]bool{}
	maybe := map[backend.ID]bool{} // started or being deleted when killed: either way
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue // the kill cut the line
		}
		id := backend.ID(fields[1])
		switch fields[0] {
		case "start", "deleting":
			maybe[id] = true
		case "put":
			if len(fields) != 4 {
				continue
			}
			seq, _ := strconv.ParseUint(fields[2], 10, 64)
			crc, _ := strconv.ParseUint(fields[3], 10, 32)
			put[id] = acked{seq, uint32(crc)}
			delete(maybe, id)
		case "deleted":
			deleted[id] = true
			delete(maybe, id)
		}
	}
	check := func(id backend.ID, seq uint64) {
		obj, err := tier.Get(ctx, id)
		if err != nil {
			t.Fatalf("round %d: Get(%s): %v", round, id, err)
		}
		defer obj.Close()
		if want := backendtest.Payload(crashSize(seq), seq); !bytes.Equal(obj.Bytes(), want) || obj.Info().Checksum != backend.Checksum(want) {
			t.Fatalf("round %d: %s differs from what was put (%d bytes, want %d)", round, id, len(obj.Bytes()), len(want))
		}
	}
	present := 0
	for id, a := range put {
		_, err := tier.ObjectInfo(ctx, id)
		switch {
		case deleted[id]:
			if !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("round %d: %s was deleted (Delete returned) but is there: %v", round, id, err)
			}
		case maybe[id] && errors.Is(err, backend.ErrNotFound):
			// killed during its Delete
		default:
			check(id, a.seq)
			present++
		}
	}
	// Nothing else is visible but a write that may have committed just
	// before the kill; such an object must be whole.
	list, err := tier.List(ctx, backend.ListOptions{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range list {
		if _, ok := put[info.ID]; ok {
			continue
		}
		if !maybe[info.ID] {
			t.Fatalf("round %d: %s is visible but its write never finished", round, info.ID)
		}
		parts := strings.Split(string(info.ID), "-")
		seq, _ := strconv.ParseUint(parts[len(parts)-1], 10, 64)
		check(info.ID, seq)
	}
	if n, err := tier.orphanChunks(); err != nil || n != 0 {
		t.Fatalf("round %d: %d orphan chunks after Setup (%v)", round, n, err)
	}
	st, _ := tier.Stats(ctx)
	t.Logf("round %d: %d acknowledged objects present, %d deleted, %d listed, %s used", round, present, len(deleted), len(list), backend.FormatBytes(st.Used))
}
