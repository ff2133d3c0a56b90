package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"distore/backend"
	"distore/cluster"
	"distore/internal/etcdtest"
	"distore/internal/probe"
	"distore/server"
	"distore/spill"
	"distore/tracker"
)

// In cluster mode too, an object ID is validated once per request: by the
// server, from the path; the Node (its trusted view) and its stack (the
// stack's trusted view) do not validate again.
func TestClusterIDValidatedOnce(t *testing.T) {
	ctx := context.Background()
	e := etcdtest.Start(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := spill.Open(ctx, spill.Options{Logger: quiet, Tiers: []spill.TierSpec{
		{Name: "memory", Config: backend.Config{"capacity": "4MiB", "prefault": "false"}},
		{Name: "disk", Config: backend.Config{"dir": filepath.Join(t.TempDir(), "disk")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Teardown(context.Background()) })
	cli, err := clientv3.New(tracker.ClientConfig([]string{e.Endpoint()}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tr, err := tracker.Open(tctx, tracker.Options{Client: cli, Self: tracker.Member{ID: "solo", Addr: ln.Addr().String()},
		TTL: 5 * time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	node, err := cluster.New(cluster.Options{Local: st, Tracker: tr, SpoolDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Teardown(context.Background()) })
	srv, err := server.New(node, server.Options{Logger: quiet, Cluster: node.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln, time.Second) }()
	t.Cleanup(func() { stop(); <-done })

	n, stopCount := probe.CountIDValidations()
	defer stopCount()
	url := "http://" + ln.Addr().String() + "/v1/objects/"
	small, big := bytes.Repeat([]byte("s"), 4<<10), bytes.Repeat([]byte("b"), 6<<20) // big: on disk
	for _, step := range []struct {
		method, path string
		body         []byte
		want         int
	}{
		{"PUT", "small", small, http.StatusCreated},
		{"PUT", "big", big, http.StatusCreated},
		{"GET", "small", nil, http.StatusOK},
		{"GET", "big", nil, http.StatusOK},
		{"HEAD", "small", nil, http.StatusOK},
		{"POST", "big/pin", nil, http.StatusNoContent},
		{"POST", "big/unpin", nil, http.StatusNoContent},
		{"POST", "small/prefetch", nil, http.StatusNoContent},
		{"DELETE", "small", nil, http.StatusNoContent},
		{"DELETE", "big", nil, http.StatusNoContent},
	} {
		before := n.Load()
		req, _ := http.NewRequest(step.method, url+step.path, bytes.NewReader(step.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != step.want {
			t.Fatalf("%s %s: %s, want %d", step.method, step.path, resp.Status, step.want)
		}
		if got := n.Load() - before; got != 1 {
			t.Errorf("%s %s: the ID was validated %d times, want 1", step.method, step.path, got)
		}
	}
	// A bad ID is still refused by the Node itself (not only by the server).
	if _, err := node.Put(ctx, "../x", []byte("x"), backend.PutOptions{}); !errors.Is(err, backend.ErrInvalidID) {
		t.Fatalf("node put of a bad ID: %v", err)
	}
}
