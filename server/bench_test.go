package server

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"distore/backend"
	"distore/client"
	_ "distore/shmem"
)

// BenchmarkServer measures put and get of small and large objects through
// the server (Serve: net/http and the handler chain) and the Go client over
// loopback, on the real memory tier.
func BenchmarkServer(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{4 << 10, 1 << 20, 64 << 20} {
		mem, err := backend.Open(ctx, "memory", backend.Config{"capacity": "1GiB"})
		if err != nil {
			b.Fatal(err)
		}
		s, _ := New(mem, Options{Logger: quietLogger()})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Serve(sctx, ln, time.Second) }()
		c, _ := client.New("http://" + ln.Addr().String())
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
		stop()
		<-done
		mem.Teardown(ctx)
	}
}

// BenchmarkHandler measures the handler chain and routes of a 4 KiB get
// and put without a network: what the server adds to net/http.
func BenchmarkHandler(b *testing.B) {
	mem := newMemory(b, 64<<20)
	s, _ := New(mem, Options{Logger: quietLogger()})
	data := randBytes(4096)
	mem.Put(context.Background(), "g", data, backend.PutOptions{})
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("GET", "/v1/objects/g", nil)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
	b.Run("put", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("PUT", "/v1/objects/p", bytes.NewReader(data))
			r.Header.Set("Content-Length", "4096")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != 201 {
				b.Fatal(w.Code, w.Body.String())
			}
			mem.Delete(context.Background(), "p")
		}
	})
}
