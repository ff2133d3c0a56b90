package servercmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"distore/client"
	"distore/internal/testutil"
)

// TestFlagsDocumented: docs/server-flags.md lists exactly the flags that
// --help does.
func TestFlagsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/server-flags.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `--([a-z0-9-]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1])
	}
	flags := FlagNames()
	if len(flags) < 10 {
		t.Fatalf("FlagNames found %d flags in --help: %q", len(flags), flags)
	}
	slices.Sort(flags)
	slices.Sort(documented)
	if !slices.Equal(flags, documented) {
		t.Errorf("--help has %q\ndocs/server-flags.md has %q", flags, documented)
	}
}

// TestExitStatus: --help is 0, a bad flag or value 64, a failure 1.
func TestExitStatus(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--help"}, ExitOK},
		{[]string{"--no-such-flag"}, ExitUsage},
		{[]string{"--levels", "memory,nosuchtier", "--data-dir", t.TempDir()}, ExitUsage},
		{[]string{"--io-timeout", "0s"}, ExitUsage},
		{[]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, ExitFailure},
	} {
		var stderr bytes.Buffer
		if code := Run(ctx, tc.args, &stderr); code != tc.code {
			t.Errorf("Run %q = %d, want %d\n%s", tc.args, code, tc.code, stderr.String())
		}
	}
}

// serve runs the server in this process until the returned stop is called,
// which returns Run's status.
func serve(t *testing.T, args ...string) (url string, log *testutil.SyncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log = &testutil.SyncBuffer{}
	done := make(chan int, 1)
	go func() { done <- Run(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), log) }()
	re := regexp.MustCompile(`msg="distore-server listening" addr=(\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(log.String()); m != nil {
			url = "http://" + m[1]
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("Run exited %d\n%s", code, log)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no address logged\n%s", log)
		}
	}
	return url, log, func() int { cancel(); return <-done }
}

// TestReleaseArena: the arena is kept at shutdown by default (a restart
// finds the memory tier's objects) and removed with --release-arena.
func TestReleaseArena(t *testing.T) {
	dir := t.TempDir()
	arena := ArenaPath(dir)
	t.Cleanup(func() { os.Remove(arena) })
	args := []string{"--data-dir", dir, "--levels", "memory", "--memory-capacity", "4MiB"}
	url, log, stop := serve(t, args...)
	if !strings.Contains(log.String(), "pins are not persistent") {
		t.Errorf("the server does not say pins are lost at restart:\n%s", log)
	}
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Put(context.Background(), []byte("kept"), client.PutOptions{ID: "k"}); err != nil {
		t.Fatal(err)
	}
	if code := stop(); code != ExitOK {
		t.Fatalf("Run after cancel: %d\n%s", code, log)
	}
	if _, err := os.Stat(arena); err != nil {
		t.Fatalf("the arena was not kept: %v", err)
	}
	url, log, stop = serve(t, append(args, "--release-arena")...)
	c2, _ := client.New(url)
	defer c2.Close()
	if got, err := c2.Get(context.Background(), "k"); err != nil || string(got) != "kept" {
		t.Errorf("after a restart: %q, %v", got, err)
	}
	if code := stop(); code != ExitOK {
		t.Fatalf("Run after cancel: %d\n%s", code, log)
	}
	if _, err := os.Stat(arena); !os.IsNotExist(err) {
		t.Errorf("--release-arena left %s: %v", arena, err)
	}
}
