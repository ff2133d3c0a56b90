package disk

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"distore/backend"
)

func expDrop() {
	syscall.Sync()
	maps, _ := os.ReadFile("/proc/self/maps")
	for _, line := range strings.Split(string(maps), "\n") {
		if !strings.HasSuffix(line, ".vlog") && !strings.HasSuffix(line, ".mem") {
			continue
		}
		lo, hi, _ := strings.Cut(strings.Fields(line)[0], "-")
		a, _ := strconv.ParseUint(lo, 16, 64)
		b, _ := strconv.ParseUint(hi, 16, 64)
		syscall.Syscall(syscall.SYS_MADVISE, uintptr(a), uintptr(b-a), syscall.MADV_DONTNEED)
	}
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0)
}

func TestExpColdRead(t *testing.T) {
	if os.Getenv("EXP") == "" {
		t.Skip()
	}
	ctx := context.Background()
	d := data(64<<20, 1)
	const n = 16
	for _, mode := range []string{"tierg", "tierr", "tierv", "badger", "tierv", "tierr", "tierg", "badger"} {
		dir := t.TempDir()
		var read time.Duration
		if mode == "badger" {
			opts := badger.DefaultOptions(dir).WithLogger(nil)
			db, _ := badger.Open(opts)
			for i := range n * 64 {
				db.Update(func(txn *badger.Txn) error {
					return txn.Set([]byte(fmt.Sprintf("%08d", i)), d[(i%64)<<20:(i%64+1)<<20])
				})
			}
			db.Close()
			db, _ = badger.Open(opts)
			expDrop()
			buf := make([]byte, 0, 1<<20)
			start := time.Now()
			for i := range n * 64 {
				db.View(func(txn *badger.Txn) error {
					item, _ := txn.Get([]byte(fmt.Sprintf("%08d", i)))
					buf, _ = item.ValueCopy(buf[:0])
					return nil
				})
			}
			read = time.Since(start)
			db.Close()
		} else {
			readParallel = 1
			b, _ := backend.Open(ctx, Name, backend.Config{"dir": dir, "sync": "false", "vlog_file_size": os.Getenv("VLOG")})
			for i := range n {
				b.Put(ctx, backend.ID("o"+strconv.Itoa(i)), d, backend.PutOptions{})
			}
			b.Teardown(ctx)
			b, _ = backend.Open(ctx, Name, backend.Config{"dir": dir, "sync": "false", "vlog_file_size": os.Getenv("VLOG")})
			expDrop()
			tier := b.(*Tier)
			big := make([]byte, 64<<20)
			for i := range big {
				big[i] = 1
			}
			bufc := make([]byte, 0, 1<<20)
			start := time.Now()
			for i := range n {
				id := backend.ID("o" + strconv.Itoa(i))
				switch mode[:5] {
				case "tierg":
					o, err := b.Get(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					o.Close()
				case "tierr": // reused destination
					db, _ := tier.acquire("x", "")
					tier.mu.Lock()
					o := tier.objs[id]
					tier.mu.Unlock()
					for c := range 64 {
						if err := tier.readChunk(db, "x", o, c, big[c<<20:(c+1)<<20]); err != nil {
							t.Fatal(err)
						}
					}
					tier.release()
				case "tierv": // plain ValueCopy of the chunk keys
					db, _ := tier.acquire("x", "")
					tier.mu.Lock()
					o := tier.objs[id]
					tier.mu.Unlock()
					for c := range 64 {
						db.View(func(txn *badger.Txn) error {
							item, _ := txn.Get(chunkKey(o.token, uint32(c)))
							bufc, _ = item.ValueCopy(bufc[:0])
							return nil
						})
					}
					tier.release()
				}
			}
			read = time.Since(start)
			b.Teardown(ctx)
		}
		os.RemoveAll(dir)
		t.Logf("%s: %.2f GB/s", mode, float64(n*len(d))/read.Seconds()/1e9)
	}
}
