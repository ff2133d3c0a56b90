//go:build ceph

package ceph_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"distore/backend"
	"distore/backend/backendtest"
	"distore/remote/ceph"
	"distore/remote/internal/remotetest"
)

// The tests use the cluster of scripts/ceph-up.sh through the variables of
// DIR/env.sh: CEPH_CONF, DISTORE_CEPH_POOL, DISTORE_CEPH_USER.
func conf(t testing.TB) string {
	t.Helper()
	c := os.Getenv("CEPH_CONF")
	if c == "" || os.Getenv("DISTORE_CEPH_POOL") == "" {
		why := "no Ceph cluster: run scripts/ceph-up.sh DIR and source DIR/env.sh (CEPH_CONF, DISTORE_CEPH_POOL)"
		if os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	return c
}

func config(t testing.TB, extra ...string) backend.Config {
	user := os.Getenv("DISTORE_CEPH_USER")
	if user == "" {
		user = "admin"
	}
	cfg := backend.Config{"conf": conf(t), "pool": os.Getenv("DISTORE_CEPH_POOL"), "user": user,
		"namespace": fmt.Sprintf("%.40s-%s", strings.ReplaceAll(t.Name(), "/", "_"), backend.NewID()[:8])}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i]] = extra[i+1]
	}
	return cfg
}

// open sets up a tier on a fresh namespace and removes its RADOS objects at
// the end, through a connection of its own (the suite tears the tier down).
// open returns the tier as users get it: wrapped (backend.Wrap checks the
// contract and counts the pins); raw reaches the *ceph.Tier under it.
func open(t testing.TB, cfg backend.Config) backend.Backend {
	t.Helper()
	b, err := backend.Open(context.Background(), "ceph", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := backend.Open(context.Background(), "ceph", cfg)
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		ioctx := backend.Unwrap(c).(*ceph.Tier).IOContext()
		for _, name := range rawNames(t, backend.Unwrap(c).(*ceph.Tier)) {
			_ = ioctx.Delete(name)
		}
		_ = c.Teardown(context.Background())
	})
	return b
}

func raw(b backend.Backend) *ceph.Tier { return backend.Unwrap(b).(*ceph.Tier) }

// rawNames lists every RADOS object in the tier's namespace, stripes too.
func rawNames(t testing.TB, tier *ceph.Tier) []string {
	var names []string
	if err := raw(tier).IOContext().ListObjects(func(oid string) { names = append(names, oid) }); err != nil {
		t.Fatalf("ListObjects: %v", err)
	}
	slices.Sort(names)
	return names
}

func TestConformance(t *testing.T) {
	conf(t)
	backendtest.Run(t, backendtest.Factory{Unbounded: true,
		New: func(t testing.TB, _ int64) backend.Backend { return open(t, config(t)) },
		Make: func(t testing.TB, _ int64) backend.Backend {
			b, err := backend.New("ceph", config(t))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}})
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
	return b
}

// Objects larger than a stripe are striped, the manifest is the one object
// named by the ID, and range reads touch only the stripes they need.
func TestStriping(t *testing.T) {
	tier := open(t, config(t, "stripe_size", "1MiB", "chunk_size", "256KiB", "concurrency", "3"))
	ctx := context.Background()
	data := pattern(3<<20 + 512<<10) // 3.5 stripes
	if _, err := tier.Put(ctx, "put", data, backend.PutOptions{Importance: 4}); err != nil {
		t.Fatal(err)
	}
	w, err := tier.OpenWriter(ctx, "stream", int64(len(data)), backend.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 100_000 {
		if _, err := w.Write(data[off:min(off+100_000, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	names := rawNames(t, raw(tier))
	var manifests, stripes int
	for _, n := range names {
		switch {
		case n == "put" || n == "stream":
			manifests++
		case strings.HasPrefix(n, ".d.put.") || strings.HasPrefix(n, ".d.stream."):
			stripes++
		default:
			t.Errorf("unexpected RADOS object %q", n)
		}
	}
	if manifests != 2 || stripes != 8 {
		t.Fatalf("RADOS objects %v: want 2 manifests and 4 stripes each", names)
	}
	for _, id := range []backend.ID{"put", "stream"} {
		obj, err := tier.Get(ctx, id)
		if err != nil || !bytes.Equal(obj.Bytes(), data) {
			t.Fatalf("Get(%s): %v", id, err)
		}
		obj.Close()
	}
	// Remove stripe 0 of "put" behind the tier's back: a range inside
	// stripe 2 still reads, the whole object does not.
	var stripe0 string
	for _, n := range names {
		if strings.HasPrefix(n, ".d.put.") && strings.HasSuffix(n, ".0") {
			stripe0 = n
		}
	}
	if err := raw(tier).IOContext().Delete(stripe0); err != nil {
		t.Fatal(err)
	}
	r, err := tier.OpenReader(ctx, "put", 2<<20+10, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data[2<<20+10:2<<20+1010]) {
		t.Fatalf("range read in stripe 2 = %d bytes, %v", len(got), err)
	}
	// A range across stripes 1-3.
	r, _ = tier.OpenReader(ctx, "stream", 1<<20-5, 2<<20+10)
	got, err = io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data[1<<20-5:3<<20+5]) {
		t.Fatalf("range read across stripes = %d bytes, %v", len(got), err)
	}
	if _, err := tier.Get(ctx, "put"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Get with a stripe missing = %v, want ErrNotFound", err)
	}
	// Delete removes the manifest and the stripes.
	for _, id := range []backend.ID{"put", "stream"} {
		if err := tier.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if left := rawNames(t, raw(tier)); len(left) != 0 {
		t.Fatalf("RADOS objects left after Delete: %v", left)
	}
}

// Failed, aborted and cancelled streamed writes leave no RADOS object.
func TestWriterCleanup(t *testing.T) {
	tier := open(t, config(t, "stripe_size", "1MiB", "chunk_size", "256KiB"))
	ctx := context.Background()
	data := pattern(3 << 20)
	remotetest.RunFailedWrites(t, tier, remotetest.FailedWrites{
		Data: data, AbortAt: 2<<20 + 7, CancelAt: 1<<20 + 3, CancelErr: context.Canceled,
		IDPrefix: "w-", Left: func(t *testing.T) []string { return rawNames(t, raw(tier)) },
	})
	// A second writer of a published ID fails at Close and removes its stripes.
	if _, err := tier.Put(ctx, "taken", data[:10], backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	w1, err := tier.OpenWriter(ctx, "late", int64(len(data)), backend.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Put(ctx, "late", data[:5], backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w1.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w1.Close(); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("Close of a writer whose ID was taken meanwhile = %v, want ErrExists", err)
	}
	if left := rawNames(t, raw(tier)); !slices.Equal(left, []string{"late", "taken"}) {
		t.Fatalf("RADOS objects = %v, want only late and taken", left)
	}
}

func TestCorruptDetected(t *testing.T) {
	tier := open(t, config(t, "stripe_size", "1MiB", "chunk_size", "256KiB"))
	ctx := context.Background()
	data := pattern(2<<20 + 100)
	for _, id := range []backend.ID{"small", "big"} {
		d := data
		if id == "small" {
			d = data[:5000]
		}
		if _, err := tier.Put(ctx, id, d, backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range rawNames(t, raw(tier)) {
		if n == "small" || strings.HasPrefix(n, ".d.big.") && strings.HasSuffix(n, ".1") {
			if err := raw(tier).IOContext().Write(n, []byte{0xff}, 1234); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, id := range []backend.ID{"small", "big"} {
		if _, err := tier.Get(ctx, id); !errors.Is(err, backend.ErrCorrupt) {
			t.Fatalf("Get(%s) corrupted = %v, want ErrCorrupt", id, err)
		}
		r, err := tier.OpenReader(ctx, id, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(r); !errors.Is(err, backend.ErrCorrupt) {
			t.Fatalf("reading %s corrupted = %v, want ErrCorrupt", id, err)
		}
		r.Close()
	}
}

func TestReopenCounts(t *testing.T) {
	cfg := config(t)
	a := open(t, cfg)
	ctx := context.Background()
	for i := range 3 {
		if _, err := a.Put(ctx, backend.ID(fmt.Sprint("r", i)), make([]byte, 1000), backend.PutOptions{Importance: i}); err != nil {
			t.Fatal(err)
		}
	}
	_ = a.Teardown(ctx)
	b := open(t, cfg)
	st, _ := b.Stats(ctx)
	if st.Objects != 3 || st.Used != 3000 {
		t.Fatalf("Stats after reopen = %+v, want 3 objects, 3000 bytes", st)
	}
	if _, err := b.Put(ctx, "r1", []byte("x"), backend.PutOptions{}); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("Put of an existing ID from a second tier = %v, want ErrExists", err)
	}
}

// Setup fails at once, with ErrUnavailable naming the conf, the pool and the cause.
func TestSetupFailures(t *testing.T) {
	good := config(t, "timeout", "2s")
	dir := t.TempDir()
	// A copy of the conf whose monitors are not listening.
	src, err := os.ReadFile(good["conf"])
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "mon host") {
			l = "mon host = v1:127.0.0.1:1"
		}
		lines = append(lines, l)
	}
	deadConf := filepath.Join(dir, "dead.conf")
	if err := os.WriteFile(deadConf, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	with := func(k, v string) backend.Config {
		c := backend.Config{}
		for a, b := range good {
			c[a] = b
		}
		c[k] = v
		return c
	}
	cases := []struct {
		name       string
		cfg        backend.Config
		cause, who string
	}{
		{"UnknownPool", with("pool", "no-such-pool"), "pool does not exist", "no-such-pool"},
		{"MissingConf", with("conf", filepath.Join(dir, "missing.conf")), "cannot read", "missing.conf"},
		{"Unreachable", with("conf", deadConf), "cannot connect", deadConf},
		{"UnknownUser", with("user", "nosuchuser"), "cannot connect", "client.nosuchuser"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			b, err := backend.Open(context.Background(), "ceph", c.cfg)
			if err == nil {
				_ = b.Teardown(context.Background())
				t.Fatal("Setup succeeded")
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("Setup took %v to fail", d)
			}
			if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), c.who) ||
				!strings.Contains(err.Error(), c.cause) {
				t.Fatalf("Setup error %q: want ErrUnavailable naming %q and %q", err, c.who, c.cause)
			}
		})
	}
}

func BenchmarkTier(b *testing.B) {
	conf(b)
	backendtest.Bench(b, backendtest.Factory{Unbounded: true,
		New: func(t testing.TB, _ int64) backend.Backend { return open(t, config(t)) }})
}

// A 128 MiB object streams through OpenWriter and OpenReader in memory
// bounded by the chunks in flight, not by the object's size.
func TestStreamConstantMemory(t *testing.T) {
	tier := open(t, config(t, "stripe_size", "16MiB", "chunk_size", "2MiB", "concurrency", "2"))
	remotetest.StreamConstantMemory(t, tier, 128<<20, 24<<20)
}

// A writer that outlives its tier fails cleanly instead of using a
// destroyed I/O context.
func TestWriterAfterTeardown(t *testing.T) {
	tier := open(t, config(t, "stripe_size", "1MiB", "chunk_size", "256KiB"))
	ctx := context.Background()
	w, err := tier.OpenWriter(ctx, "late", 3<<20, backend.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pattern(1 << 20)); err != nil {
		t.Fatal(err)
	}
	if err := tier.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pattern(1 << 20)); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Write after Teardown = %v, want ErrClosed", err)
	}
	if err := w.Close(); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Close after Teardown = %v, want ErrClosed", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after Teardown: %v", err)
	}
}
