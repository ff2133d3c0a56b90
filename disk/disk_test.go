package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"testing"

	"distore/backend"
	"distore/backend/backendtest"
)

// open returns a set-up tier in a fresh directory (or dir, if given), torn
// down at the end of the test unless the test does it.
func open(t testing.TB, cfg backend.Config) *Tier {
	t.Helper()
	if cfg == nil {
		cfg = backend.Config{}
	}
	if cfg["dir"] == "" {
		cfg["dir"] = t.TempDir()
	}
	b, err := backend.Open(context.Background(), Name, cfg)
	if err != nil {
		t.Fatalf("open disk tier: %v", err)
	}
	tier := backend.Unwrap(b).(*Tier)
	t.Cleanup(func() { _ = tier.Teardown(context.Background()) })
	return tier
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, backendtest.Factory{Make: func(t testing.TB, capacity int64) backend.Backend {
		b, err := backend.New(Name, backend.Config{"dir": t.TempDir(), "capacity": fmt.Sprint(capacity)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, Restart: func(t testing.TB, b backend.Backend) backend.Backend {
		tier := backend.Unwrap(b).(*Tier)
		b, err := backend.Open(context.Background(), Name, backend.Config{"dir": tier.Dir(), "capacity": fmt.Sprint(tier.capacityCfg)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}})
}

func BenchmarkConformance(b *testing.B) {
	backendtest.Bench(b, backendtest.Factory{New: func(t testing.TB, capacity int64) backend.Backend {
		return open(t, backend.Config{"capacity": fmt.Sprint(capacity)})
	}})
}

func TestConfig(t *testing.T) {
	for _, cfg := range []backend.Config{
		{},                                   // no dir
		{"dir": "x", "bogus": "1"},           // unknown key
		{"dir": "x", "sync": "maybe"},        // bad bool
		{"dir": "x", "chunk_size": "1KiB"},   // too small
		{"dir": "x", "chunk_size": "128MiB"}, // too big
		{"dir": "x", "vlog_file_size": "4GiB"},
		{"dir": "x", "chunk_size": "16MiB", "vlog_file_size": "32MiB"},
		{"dir": "x", "gc_interval": "0s"},
	} {
		if _, err := New(cfg); !errors.Is(err, backend.ErrInvalidArgument) {
			t.Errorf("New(%v) = %v, want ErrInvalidArgument", cfg, err)
		}
	}
	if _, err := New(backend.Config{"dir": "x", "capacity": "1GiB", "sync": "false", "chunk_size": "4MiB"}); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestRangeReadsTouchOnlyTheirChunks(t *testing.T) {
	tier := open(t, backend.Config{"sync": "false"})
	ctx := context.Background()
	d := backendtest.Payload(16<<20+3, 2)
	if _, err := tier.Put(ctx, "big", d, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ off, n, chunks int64 }{
		{0, 10, 1}, {5 << 20, 1 << 20, 1}, {5<<20 - 1, 2, 2}, {16 << 20, 3, 1}, {1 << 20, 3 << 20, 3},
	} {
		before := tier.chunkReads.Load()
		rd, err := tier.OpenReader(ctx, "big", r.off, r.n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rd)
		rd.Close()
		if err != nil || !bytes.Equal(got, d[r.off:r.off+r.n]) {
			t.Fatalf("range %d+%d: %v / bytes differ", r.off, r.n, err)
		}
		if read := tier.chunkReads.Load() - before; read != r.chunks {
			t.Errorf("range %d+%d read %d chunks, want %d", r.off, r.n, read, r.chunks)
		}
		// Into one buffer of the range's size: each chunk's part is copied
		// straight from the value log.
		before = tier.chunkReads.Load()
		if rd, err = tier.OpenReader(ctx, "big", r.off, r.n); err != nil {
			t.Fatal(err)
		}
		got = make([]byte, r.n)
		_, err = io.ReadFull(rd, got)
		rd.Close()
		if err != nil || !bytes.Equal(got, d[r.off:r.off+r.n]) {
			t.Fatalf("range %d+%d into one buffer: %v / bytes differ", r.off, r.n, err)
		}
		if read := tier.chunkReads.Load() - before; read != r.chunks {
			t.Errorf("range %d+%d into one buffer read %d chunks, want %d", r.off, r.n, read, r.chunks)
		}
	}
}

// BenchmarkPut4KiB measures 4 KiB puts with concurrent writers (sync=false:
// with sync the disk's fsync latency sets the rate).
func BenchmarkPut4KiB(b *testing.B) {
	tier := open(b, backend.Config{"sync": os.Getenv("SYNC")})
	ctx := context.Background()
	val := backendtest.Payload(4<<10, 1)
	var seq atomic.Int64
	b.SetParallelism(32)
	b.SetBytes(int64(len(val)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := backend.ID(fmt.Sprintf("p-%d", seq.Add(1)))
			if _, err := tier.Put(ctx, id, val, backend.PutOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
