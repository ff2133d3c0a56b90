package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"distore/backend"
	"distore/backend/backendtest"
	"distore/client"
	"distore/server"
	"distore/shmem"
)

// TestBackendConformance runs the conformance suite through the wire: each
// backend is a client of a real server on loopback over a real memory tier.
func TestBackendConformance(t *testing.T) {
	backendtest.Run(t, backendtest.Factory{New: func(t testing.TB, capacity int64) backend.Backend {
		ctx := context.Background()
		mem, err := backend.Open(ctx, shmem.Name, backend.Config{"capacity": fmt.Sprint(capacity), "prefault": "false"})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(mem, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- srv.Serve(sctx, ln, 5*time.Second) }()
		t.Cleanup(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
			_ = mem.Teardown(ctx)
		})
		c, err := client.New("http://"+ln.Addr().String(), client.WithToken(""))
		if err != nil {
			t.Fatal(err)
		}
		b := client.NewBackend(c)
		if err := b.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		return b
	}})
}
