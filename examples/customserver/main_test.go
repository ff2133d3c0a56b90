package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"distore/client"
	"distore/internal/testutil"
)

// TestCustomServer builds the example, serves --levels memory,mytier and
// puts and gets through it: a large object lands in the user's tier.
func TestCustomServer(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "customserver")
	if err := testutil.BuildProgram(bin, "."); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command(bin, "--help").CombinedOutput(); !strings.Contains(string(out), "mytier") {
		t.Errorf("--help does not list the registered tier mytier:\n%s", out)
	}
	cmd := exec.Command(bin, "--levels", "memory,mytier", "--memory-capacity", "1MiB", "--listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(dir, "data"), "--release-arena")
	log := &testutil.SyncBuffer{}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg="distore-server listening" addr=(\S+)`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			log.Write(append(sc.Bytes(), '\n'))
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("after SIGTERM: %v\n%s", err, log)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("no exit 30 s after SIGTERM\n%s", log)
		}
	}()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a
	case err := <-exited:
		t.Fatalf("exited: %v\n%s", err, log)
	case <-time.After(30 * time.Second):
		t.Fatalf("no address logged\n%s", log)
	}
	if !strings.Contains(log.String(), "name=mytier") {
		t.Errorf("the server does not list the tier mytier:\n%s", log)
	}
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	big := bytes.Repeat([]byte("mytier "), 400<<10) // 2.7 MiB: more than the memory tier holds
	info, err := c.Put(ctx, big, client.PutOptions{ID: "big"})
	if err != nil || info.Tier != "mytier" {
		t.Fatalf("put: %+v, %v; want it in mytier", info, err)
	}
	if got, err := c.Get(ctx, "big"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}
}
