package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"distore/backend"
	"distore/backend/backendtest"
)

// TestFullFileSystem runs the real server with its disk tier on a tmpfs that
// a dd process fills while puts run, for --levels disk and memory,disk: the
// server does not die (no SIGBUS in Badger's mapped writes), answers 507
// naming the file system, keeps every object it acknowledged, and takes
// writes again once space is freed; then the same with the file system
// full when the server starts.
func TestFullFileSystem(t *testing.T) {
	for _, levels := range []string{"disk", "memory,disk"} {
		t.Run(strings.ReplaceAll(levels, ",", "+"), func(t *testing.T) {
			t.Parallel() // each its own file system and server
			fullFS(t, levels)
		})
	}
}

func fullFS(t *testing.T, levels string) {
	mnt := backendtest.TmpFS(t, 128<<20)
	conf := filepath.Join(t.TempDir(), "distore.yaml")
	// Small Badger files, so a small tmpfs holds them.
	if err := os.WriteFile(conf, []byte(`
tiers:
  disk:
    vlog_file_size: 16MiB
    memtable_size: 4MiB
    reserve: 24MiB
`), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func() *proc {
		return startServer(t, mnt, "--config", conf, "--levels", levels, "--memory-capacity", "2MiB")
	}
	p := start()
	acked := map[string][]byte{}
	n := 0
	put := func() (int, string) {
		t.Helper()
		id := fmt.Sprintf("obj-%04d", n)
		data := randBytes(uint64(n), 256<<10)
		n++
		status, _, body := rawStatus(t, http.MethodPut, p.url+"/v1/objects/"+id, bytes.NewReader(data))
		if status == http.StatusCreated {
			acked[id] = data
		}
		return status, body
	}
	checkAll := func() {
		t.Helper()
		c := p.client(t)
		for id, want := range acked {
			got, err := c.Get(context.Background(), backend.ID(id))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("GET %s of an acknowledged object: %d bytes, %v", id, len(got), err)
			}
		}
	}
	// resume puts until one is accepted once space is back (the stack tries a
	// tier that refused for lack of space again after a second).
	resume := func() {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			status, body := put()
			if status == http.StatusCreated {
				return
			}
			if status != http.StatusInsufficientStorage || time.Now().After(deadline) {
				t.Fatalf("PUT once space was freed: %d %s", status, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	want507 := func(what string, status int, body string) {
		t.Helper()
		if status != http.StatusInsufficientStorage || !strings.Contains(body, mnt) {
			t.Fatalf("%s: %d %s; want 507 naming the file system %s", what, status, body, mnt)
		}
	}

	for range 16 {
		if status, body := put(); status != http.StatusCreated {
			t.Fatalf("PUT before the fill: %d %s", status, body)
		}
	}
	// Fill from outside while puts run.
	filled := make(chan string)
	go func() { filled <- backendtest.FillFS(t, mnt, "fill") }()
	var fill string
	for fill == "" {
		select {
		case fill = <-filled:
		default:
			if status, body := put(); status != http.StatusCreated && status != http.StatusInsufficientStorage {
				t.Fatalf("PUT while the file system fills: %d %s", status, body)
			}
		}
	}
	refused := 0
	for deadline := time.Now().Add(60 * time.Second); refused < 3; {
		status, body := put()
		if status == http.StatusInsufficientStorage {
			want507("PUT on a full file system", status, body)
			refused++
		} else if status != http.StatusCreated || time.Now().After(deadline) {
			t.Fatalf("PUT on a full file system: %d %s", status, body)
		}
	}
	checkAll()
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	resume()
	checkAll()

	// Full at start: the server starts, serves reads, answers 507, and takes
	// writes once space is freed, without a restart.
	p.stop(t)
	if p.waitErr != nil {
		t.Fatalf("server exit: %v\n%s", p.waitErr, p.log)
	}
	fill = backendtest.FillFS(t, mnt, "fill")
	p = start()
	checkAll()
	if levels == "disk" { // memory,disk puts land in memory, which has room
		status, body := put()
		want507("PUT after a start on a full file system", status, body)
	}
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	resume()
	checkAll()
	select {
	case <-p.exited:
		t.Fatalf("server died: %v\n%s", p.waitErr, p.log)
	default:
	}
}
