package backendtest

import (
	"context"
	"fmt"
	"io"
	"testing"

	"distore/backend"
)

// BenchSizes are the object sizes Bench measures.
var BenchSizes = []int64{4 << 10, 1 << 20, 64 << 20}

// Bench runs the standard benchmarks on a backend made by f: Put, Get,
// Put+Get+Delete, and streamed write and read, at each of BenchSizes. The
// backend is made with BigCapacity; objects are deleted as they go so the
// capacity is never the limit.
func Bench(b *testing.B, f Factory) {
	f = f.withNew()
	for _, size := range BenchSizes {
		data := Payload(size, uint64(size))
		b.Run(fmt.Sprintf("Put/%s", sizeLabel(size)), func(b *testing.B) {
			be := openBench(b, f)
			ctx := context.Background()
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				id := backend.ID(fmt.Sprintf("bput-%d", i))
				if _, err := be.Put(ctx, id, data, backend.PutOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := be.Delete(ctx, id); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
		b.Run(fmt.Sprintf("Get/%s", sizeLabel(size)), func(b *testing.B) {
			be := openBench(b, f)
			ctx := context.Background()
			id := backend.ID("bget")
			if _, err := be.Put(ctx, id, data, backend.PutOptions{}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			b.ResetTimer()
			for b.Loop() {
				obj, err := be.Get(ctx, id)
				if err != nil {
					b.Fatal(err)
				}
				_ = obj.Bytes()
				obj.Close()
			}
		})
		b.Run(fmt.Sprintf("PutGetDelete/%s", sizeLabel(size)), func(b *testing.B) {
			be := openBench(b, f)
			ctx := context.Background()
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				id := backend.ID(fmt.Sprintf("bpgd-%d", i))
				if _, err := be.Put(ctx, id, data, backend.PutOptions{}); err != nil {
					b.Fatal(err)
				}
				obj, err := be.Get(ctx, id)
				if err != nil {
					b.Fatal(err)
				}
				obj.Close()
				if err := be.Delete(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("Stream/%s", sizeLabel(size)), func(b *testing.B) {
			be := openBench(b, f)
			ctx := context.Background()
			b.SetBytes(2 * size)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				id := backend.ID(fmt.Sprintf("bstream-%d", i))
				w, err := be.OpenWriter(ctx, id, size, backend.PutOptions{})
				if err != nil {
					b.Fatal(err)
				}
				for off := int64(0); off < size; off += 1 << 20 {
					if _, err := w.Write(data[off:min(off+1<<20, size)]); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				r, err := be.OpenReader(ctx, id, 0, -1)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
				r.Close()
				if err := be.Delete(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func openBench(b *testing.B, f Factory) backend.Backend {
	be := f.New(b, BigCapacity)
	b.Cleanup(func() { _ = be.Teardown(context.Background()) })
	return be
}

func sizeLabel(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
