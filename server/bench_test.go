package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"distore/backend"
	"distore/client"
	_ "distore/shmem"
)

// BenchmarkServer measures put and get of small and large objects through
// the server and the Go client over loopback, on the real memory tier.
func BenchmarkServer(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{4 << 10, 1 << 20, 64 << 20} {
		mem, err := backend.Open(ctx, "memory", backend.Config{"capacity": "1GiB"})
		if err != nil {
			b.Fatal(err)
		}
		s, _ := New(mem, Options{Logger: quietLogger()})
		ts := httptest.NewServer(s)
		c, _ := client.New(ts.URL)
		data := randBytes(size)
		var seq atomic.Int64
		b.Run(fmt.Sprintf("put-%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := backend.ID(fmt.Sprintf("o%d", seq.Add(1)))
					if _, err := c.Put(ctx, data, client.PutOptions{ID: id}); err != nil {
						b.Error(err)
						return
					}
					if err := mem.Delete(ctx, id); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		if _, err := c.Put(ctx, data, client.PutOptions{ID: "g"}); err != nil {
			b.Fatal(err)
		}
		for _, zc := range []bool{true, false} {
			zeroCopyGet = zc
			b.Run(fmt.Sprintf("get-%d-zerocopy=%v", size, zc), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.RunParallel(func(pb *testing.PB) {
					buf := make([]byte, size)
					for pb.Next() {
						if _, err := c.GetInto(ctx, "g", buf); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
		zeroCopyGet = true
		c.Close()
		ts.Close()
		mem.Teardown(ctx)
	}
}
