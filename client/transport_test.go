package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"distore/backend"
	"distore/client"
	"distore/server"
)

// newServer serves a memory tier of capacity bytes and counts connections.
func newServer(t *testing.T, capacity string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	ctx := context.Background()
	mem, err := backend.Open(ctx, "memory", backend.Config{"capacity": capacity})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(mem, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(func() { ts.Close(); mem.Teardown(ctx) })
	return ts, &conns
}

func TestConnectionReuse(t *testing.T) {
	ctx := context.Background()
	ts, conns := newServer(t, "64MiB")
	c, _ := client.New(ts.URL)
	defer c.Close()
	data := bytes.Repeat([]byte("x"), 100<<10) // the streamed-write path
	for i := range 50 {
		id := backend.ID("o" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		if _, err := c.Put(ctx, data, client.PutOptions{ID: id}); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Get(ctx, id); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get: %v", err)
		}
		if _, err := c.Info(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, "missing"); !errors.Is(err, backend.ErrNotFound) {
			t.Fatal(err)
		}
		if _, err := c.Put(ctx, data, client.PutOptions{ID: id}); !errors.Is(err, backend.ErrExists) {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 250 sequential requests, want 1", n)
	}
}

// TestEarlyAnswer: the server refuses a large put before reading its body;
// the client reports the server's error, not a broken pipe.
func TestEarlyAnswer(t *testing.T) {
	ctx := context.Background()
	ts, _ := newServer(t, "8MiB")
	c, _ := client.New(ts.URL, client.WithExpectContinue(-1)) // no Expect: the body is sent at once
	defer c.Close()
	big := make([]byte, 5<<20)
	if _, err := c.Put(ctx, big, client.PutOptions{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Put(ctx, big, client.PutOptions{ID: "a"}); !errors.Is(err, backend.ErrExists) {
			t.Fatalf("put of a taken ID: %v", err)
		}
		if _, err := c.Put(ctx, big, client.PutOptions{ID: "b"}); !errors.Is(err, backend.ErrFull) {
			t.Fatalf("put that does not fit: %v", err)
		}
		if _, err := c.Put(ctx, make([]byte, 9<<20), client.PutOptions{ID: "c"}); !errors.Is(err, backend.ErrTooLarge) {
			t.Fatalf("put too large: %v", err)
		}
	}
	if got, err := c.Get(ctx, "a"); err != nil || len(got) != len(big) {
		t.Fatalf("get after refused puts: %d, %v", len(got), err)
	}
}

// TestStaleConnection: after the server drops idle connections, requests
// still succeed (GET retries once; a put probes a connection idle > 1 s).
func TestStaleConnection(t *testing.T) {
	ctx := context.Background()
	ts, _ := newServer(t, "64MiB")
	c, _ := client.New(ts.URL)
	defer c.Close()
	if _, err := c.Put(ctx, []byte("v"), client.PutOptions{ID: "k"}); err != nil {
		t.Fatal(err)
	}
	ts.CloseClientConnections()
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatalf("get on a dropped connection: %v", err)
	}
	ts.CloseClientConnections()
	time.Sleep(1100 * time.Millisecond)
	if _, err := c.Put(ctx, []byte("v"), client.PutOptions{ID: "k2"}); err != nil {
		t.Fatalf("put on a dropped connection: %v", err)
	}
}

// TestContextCancel: a call ends when its context does, even mid-body.
func TestContextCancel(t *testing.T) {
	stall := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		<-stall
	}))
	defer ts.Close()
	defer close(stall)
	c, _ := client.New(ts.URL)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Get(ctx, "x")
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("get from a stalled server: %v after %v", err, time.Since(start))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v does not say the deadline passed", err)
	}
}
