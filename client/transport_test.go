package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
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

// TestConcurrentSmall: many goroutines share connections; every reply is
// read whole and right (the fast transport reuses one Header per connection,
// which must not leak from one reply into another).
func TestConcurrentSmall(t *testing.T) {
	ctx := context.Background()
	ts, _ := newServer(t, "64MiB")
	c, _ := client.New(ts.URL)
	defer c.Close()
	const n = 16
	errs := make(chan error, n)
	for g := range n {
		go func() {
			errs <- func() error {
				id := backend.ID("g" + string(rune('a'+g)))
				data := bytes.Repeat([]byte{byte(g)}, 100*g+1)
				for i := range 100 {
					if info, err := c.Put(ctx, data, client.PutOptions{ID: id, Importance: g}); err != nil || info.Size != int64(len(data)) || info.ID != id {
						return fmt.Errorf("put %s: %+v, %v", id, info, err)
					}
					if info, err := c.Info(ctx, id); err != nil || info.Size != int64(len(data)) || info.ID != id || info.Importance != g {
						return fmt.Errorf("info %s: %+v, %v", id, info, err)
					}
					if got, err := c.Get(ctx, id); err != nil || !bytes.Equal(got, data) {
						return fmt.Errorf("get %s (%d): %d bytes, %v", id, i, len(got), err)
					}
					var e *client.Error
					if _, err := c.Put(ctx, data, client.PutOptions{ID: id}); !errors.As(err, &e) || e.Code != "exists" || e.ID != id {
						return fmt.Errorf("put of a taken ID %s: %v", id, err)
					}
					if err := c.Delete(ctx, id); err != nil {
						return fmt.Errorf("delete %s: %v", id, err)
					}
					if _, err := c.Info(ctx, id); !errors.Is(err, backend.ErrNotFound) {
						return fmt.Errorf("info of deleted %s: %v", id, err)
					}
				}
				return nil
			}()
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestRequestPaths: the client's own requests (written without an
// http.Request) and the ones it sends as http.Requests (another http.Client,
// an httptrace in the context, Expect: 100-continue) do the same.
func TestRequestPaths(t *testing.T) {
	ts, _ := newServer(t, "64MiB")
	traced := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{})
	for _, tc := range []struct {
		name string
		ctx  context.Context
		opts []client.Option
	}{
		{"own", context.Background(), nil},
		{"http.Client", context.Background(), []client.Option{client.WithHTTPClient(&http.Client{Transport: client.NewTransport()})}},
		{"httptrace", traced, nil},
		{"expect", context.Background(), []client.Option{client.WithExpectContinue(1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			id := backend.ID("p-" + strings.ReplaceAll(tc.name, ".", "-"))
			c, err := client.New(ts.URL, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			data := []byte("0123456789")
			sum := backend.Checksum(data)
			if info, err := c.Put(ctx, data, client.PutOptions{ID: id, Importance: 7, Checksum: sum}); err != nil || info.Size != 10 || info.ID != id {
				t.Fatalf("put: %+v, %v", info, err)
			}
			if _, err := c.Put(ctx, data, client.PutOptions{ID: id + "x", Checksum: sum + 1}); !errors.Is(err, backend.ErrCorrupt) {
				t.Fatalf("put with a wrong checksum: %v", err)
			}
			info, err := c.PutReader(ctx, strings.NewReader("abcdefgh-and-more"), 8, client.PutOptions{})
			if err != nil || info.Size != 8 || info.ID == "" {
				t.Fatalf("put of a reader: %+v, %v", info, err)
			}
			if got, err := c.Get(ctx, info.ID); err != nil || string(got) != "abcdefgh" {
				t.Fatalf("get: %q, %v", got, err)
			}
			if info, err := c.Put(ctx, nil, client.PutOptions{ID: id + "0"}); err != nil || info.Size != 0 {
				t.Fatalf("empty put: %+v, %v", info, err)
			}
			if got, err := c.Get(ctx, id+"0"); err != nil || len(got) != 0 {
				t.Fatalf("empty get: %q, %v", got, err)
			}
			rc, err := c.GetReader(ctx, id, 3, 4)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(rc); err != nil || string(got) != "3456" {
				t.Fatalf("ranged get: %q, %v", got, err)
			}
			rc.Close()
			if err := c.Pin(ctx, id); err != nil {
				t.Fatal(err)
			}
			info, err = c.Info(ctx, id)
			if err != nil || info.Size != 10 || info.Importance != 7 || info.Pins != 1 || info.Checksum != sum || info.Created.IsZero() {
				t.Fatalf("info: %+v, %v", info, err)
			}
			if err := c.Delete(ctx, id); !errors.Is(err, backend.ErrPinned) {
				t.Fatalf("delete of a pinned object: %v", err)
			}
			if err := c.Unpin(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := c.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Info(ctx, id); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("info of a deleted object: %v", err)
			}
			if _, err := c.Get(ctx, id); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("get of a deleted object: %v", err)
			}
		})
	}
}
