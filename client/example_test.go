package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"

	"distore/backend"
	"distore/client"
	"distore/server"
	_ "distore/shmem"
)

// startServer runs a distore server over a 64 MiB memory tier in this
// process, as `distore-server --levels memory` would, and returns its URL.
func startServer() (url string, stop func()) {
	ctx := context.Background()
	mem, err := backend.Open(ctx, "memory", backend.Config{"capacity": "64MiB"})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(mem, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	return ts.URL, func() { ts.Close(); mem.Teardown(ctx) }
}

func Example() {
	url, stop := startServer() // e.g. "http://127.0.0.1:7070"
	defer stop()
	ctx := context.Background()

	c, err := client.New(url)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	info, err := c.Put(ctx, []byte("trajectory 17"), client.PutOptions{ID: "traj-17", Importance: 5})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.ID, info.Size, info.Tier)

	data, err := c.Get(ctx, "traj-17")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", data)

	// The server's errors are backend's sentinels.
	if _, err := c.Get(ctx, "traj-18"); errors.Is(err, backend.ErrNotFound) {
		fmt.Println("traj-18 not found")
	}
	// Output:
	// traj-17 13 memory
	// trajectory 17
	// traj-18 not found
}

func ExampleClient_Pin() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(url)
	defer c.Close()

	info, _ := c.Put(ctx, []byte("input of task 3"), client.PutOptions{})
	// A scheduler pins a task's input until the task has run.
	if err := c.Pin(ctx, info.ID); err != nil {
		log.Fatal(err)
	}
	err := c.Delete(ctx, info.ID)
	fmt.Println("delete while pinned:", errors.Is(err, backend.ErrPinned))
	_ = c.Unpin(ctx, info.ID)
	fmt.Println("delete after unpin:", c.Delete(ctx, info.ID))
	// Output:
	// delete while pinned: true
	// delete after unpin: <nil>
}

func ExampleClient_GetReader() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(url)
	defer c.Close()

	if _, err := c.Put(ctx, []byte("0123456789"), client.PutOptions{ID: "digits"}); err != nil {
		log.Fatal(err)
	}
	// Read 4 bytes from offset 3; only those cross the network.
	r, err := c.GetReader(ctx, "digits", 3, 4)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	part, _ := io.ReadAll(r)
	fmt.Printf("%s\n", part)
	// Output: 3456
}

func ExampleClient_All() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(url)
	defer c.Close()

	for _, id := range []backend.ID{"run1-a", "run1-b", "run2-a"} {
		if _, err := c.Put(ctx, []byte(id), client.PutOptions{ID: id}); err != nil {
			log.Fatal(err)
		}
	}
	for o, err := range c.All(ctx, "run1-") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(o.ID, o.Size)
	}
	// Output:
	// run1-a 6
	// run1-b 6
}

// ExampleNewBackend uses a server as a backend.Backend: code written
// against the Backend contract runs against a remote store unchanged.
func ExampleNewBackend() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url, client.WithToken("")) // a server with --token-file needs client.WithToken(secret)
	if err != nil {
		log.Fatal(err)
	}
	var b backend.Backend = client.NewBackend(c)
	if err := b.Setup(ctx); err != nil {
		log.Fatal(err)
	}
	defer b.Teardown(ctx)

	if _, err := b.Put(ctx, "batch-1", []byte("rows"), backend.PutOptions{Importance: 2}); err != nil {
		log.Fatal(err)
	}
	obj, err := b.Get(ctx, "batch-1")
	if err != nil {
		log.Fatal(err)
	}
	defer obj.Close()
	fmt.Println(string(obj.Bytes()), obj.Info().Importance)
	// Output: rows 2
}
