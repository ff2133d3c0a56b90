// Package deploy holds the container recipe and the compose file of a
// three-server cluster; its test runs that cluster as separate hosts.
package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"distore/backend"
	"distore/client"
	"distore/internal/testutil"
)

// composeTTL is the lease TTL in compose.yaml.
const composeTTL = 3 * time.Second

func need(t *testing.T, bins ...string) {
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found", b)
			}
			t.Skipf("%s not found", b)
		}
	}
}

// staticBinary is where staticServer builds; scripts/test.sh builds the
// same command ahead (while Ceph starts), so here it is a cache hit.
const staticBinary = "build/distore-server"

var (
	staticOnce sync.Once
	staticErr  error
)

// staticServer builds a static distore-server (no cgo, no GPU tier, paths
// trimmed) once for all the container tests, and returns its path.
func staticServer(t *testing.T) string {
	t.Helper()
	staticOnce.Do(func() {
		staticErr = testutil.BuildProgram(staticBinary, "distore/cmd/distore-server", "nogpu")
	})
	if staticErr != nil {
		t.Fatal(staticErr)
	}
	return staticBinary
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestComposeCluster brings up deploy/compose.yaml, cuts s3 off its network
// with docker network disconnect, and checks the others drop it within the
// TTL, still serve what has a copy elsewhere, and see it rejoin with nothing
// acknowledged lost.
func TestComposeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no containers")
	}
	t.Parallel() // mostly waits on Docker, as TestContainer does
	need(t, "docker", "docker-compose", "go")
	if err := exec.Command("docker", "info").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("docker daemon: %v", err)
		}
		t.Skipf("docker daemon: %v", err)
	}
	staticServer(t) // build/distore-server, which cluster.Dockerfile copies
	project := fmt.Sprintf("distoretest%d", os.Getpid())
	compose := func(args ...string) string {
		return run(t, "docker-compose", append([]string{"-p", project, "-f", "compose.yaml"}, args...)...)
	}
	compose("up", "-d", "--build")
	t.Cleanup(func() {
		exec.Command("docker-compose", "-p", project, "-f", "compose.yaml", "down", "-v", "-t", "2").Run()
	})
	cl := map[string]*client.Client{}
	for _, s := range []string{"s1", "s2", "s3"} {
		c, err := client.New("http://" + compose("port", s, "7070"))
		if err != nil {
			t.Fatal(err)
		}
		cl[s] = c
	}
	ctx := context.Background()
	members := func(s string) []string {
		n, err := cl[s].Nodes(ctx)
		if err != nil {
			return nil
		}
		var ids []string
		for _, m := range n.Members {
			ids = append(ids, m.ID)
		}
		return ids
	}
	wait := func(d time.Duration, what string, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > d {
				t.Fatalf("after %v: %s", d, what)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return time.Since(start)
	}
	wait(60*time.Second, "three servers listed", func() bool { return len(members("s1")) == 3 })

	data := map[backend.ID][]byte{}
	put := func(s string, id backend.ID) {
		b := make([]byte, 200000)
		rand.Read(b)
		if _, err := cl[s].Put(ctx, b, client.PutOptions{ID: id}); err != nil {
			t.Fatalf("put %s on %s: %v", id, s, err)
		}
		data[id] = b
	}
	put("s3", "copied")
	if _, err := cl["s2"].Get(ctx, "copied"); err != nil { // a copy on s2
		t.Fatal(err)
	}
	put("s3", "s3-only")
	put("s1", "s1-obj")

	network := project + "_default"
	container := project + "_s3_1"
	run(t, "docker", "network", "disconnect", network, container)
	took := wait(composeTTL+5*time.Second, "s1 and s2 stop listing the cut-off s3", func() bool {
		return !slices.Contains(members("s1"), "s3") && !slices.Contains(members("s2"), "s3")
	})
	t.Logf("s3 dropped %v after the disconnect (TTL %v)", took.Round(100*time.Millisecond), composeTTL)
	if got, err := cl["s1"].Get(ctx, "copied"); err != nil || !bytes.Equal(got, data["copied"]) {
		t.Fatalf("an object with a copy on s2, got on s1 with s3 cut off: %v", err)
	}
	if _, err := cl["s1"].Get(ctx, "s3-only"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("an object only s3 holds, with s3 cut off: %v, want not found", err)
	}
	put("s1", "during-cut")

	run(t, "docker", "network", "connect", "--alias", "s3", network, container)
	took = wait(30*time.Second, "s3 listed again", func() bool { return slices.Contains(members("s1"), "s3") })
	t.Logf("s3 rejoined %v after the reconnect", took.Round(100*time.Millisecond))
	// Nothing acknowledged is lost: every object is readable from s2.
	for id, want := range data {
		var got []byte
		var err error
		wait(15*time.Second, fmt.Sprintf("%s readable on s2 (last: %v)", id, err), func() bool {
			got, err = cl["s2"].Get(ctx, id)
			return err == nil
		})
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: bytes differ", id)
		}
	}
}
