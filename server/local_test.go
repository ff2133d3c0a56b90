package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"distore/backend"
	"distore/client"
	_ "distore/disk"
	"distore/shmem"
	"distore/spill"
	"distore/wire/localproto"
)

// localEnv is a server over a real memory,disk stack serving the local socket.
type localEnv struct {
	st   *spill.Stack
	mem  backend.Backend
	srv  *Server
	sock string
}

func newLocalEnv(t testing.TB, memCap int64) *localEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := spill.Open(ctx, spill.Options{Logger: quietLogger(), Tiers: []spill.TierSpec{
		{Name: shmem.Name, Config: backend.Config{"capacity": fmt.Sprint(memCap), "prefault": "false"}},
		{Name: "disk", Config: backend.Config{"dir": filepath.Join(dir, "disk")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(st, Options{Logger: quietLogger(), IOTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	ln, err := ListenLocal(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v; want 0600", fi.Mode(), err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.ServeLocal(sctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeLocal: %v", err)
		}
		_ = st.Teardown(ctx)
	})
	return &localEnv{st: st, mem: st.Tiers()[0], srv: srv, sock: sock}
}

func (e *localEnv) dial(t *testing.T) *client.Local {
	t.Helper()
	l, err := client.DialLocal(context.Background(), "unix://"+e.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// memUsed is the memory tier's used bytes.
func (e *localEnv) memUsed(t *testing.T) int64 {
	st, err := e.mem.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Used
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLocalPutGet(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t, 32<<20)
	l := e.dial(t)
	for _, n := range []int{0, 1, 4096, localproto.MaxInline, localproto.MaxInline + 1, 3 << 20, 9<<20 + 5} { // the last in chunks (OpWritten)
		data := randBytes(n)
		info, err := l.Put(ctx, data, client.PutOptions{Importance: 2})
		if err != nil {
			t.Fatalf("put %d: %v", n, err)
		}
		if info.Size != int64(n) || info.Checksum != backend.Checksum(data) || info.Importance != 2 {
			t.Fatalf("put %d: info %+v", n, info)
		}
		obj, err := l.GetObject(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(obj.Bytes(), data) || obj.Info().Checksum != info.Checksum || obj.Info().Tier != shmem.Name {
			t.Fatalf("get %d: bytes differ or info %+v", n, obj.Info())
		}
		// The server's view: the same bytes, seen through its own mapping.
		sobj, err := e.st.Get(ctx, info.ID)
		if err != nil || !bytes.Equal(sobj.Bytes(), data) {
			t.Fatalf("server get: %v", err)
		}
		sobj.Close()
		obj.Close()
	}
	// Errors mirror the sentinels.
	if _, err := l.GetObject(ctx, "nope"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("missing object: %v", err)
	}
	if _, err := l.Put(ctx, []byte("x"), client.PutOptions{ID: "dup"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Put(ctx, []byte("x"), client.PutOptions{ID: "dup"}); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("second put: %v", err)
	}
	if _, err := l.Put(ctx, make([]byte, 1<<20), client.PutOptions{ID: "bad", Checksum: 1}); !errors.Is(err, backend.ErrCorrupt) {
		t.Fatalf("put with a wrong checksum: %v", err)
	}
	if _, err := l.Info(ctx, "bad"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("a corrupt put left %v", err)
	}
}

// An object that cannot be in memory is put through the socket (OpWrite
// chunks) into a lower tier; a local get of it fails with ErrFull.
func TestLocalPutBelowMemory(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t, 2<<20)
	l := e.dial(t)
	data := randBytes(3 << 20)
	info, err := l.Put(ctx, data, client.PutOptions{})
	if err != nil {
		t.Fatalf("put larger than memory: %v", err)
	}
	if info.Tier != "disk" || info.Checksum != backend.Checksum(data) {
		t.Fatalf("info %+v", info)
	}
	obj, err := e.st.Get(ctx, info.ID)
	if err != nil || !bytes.Equal(obj.Bytes(), data) {
		t.Fatalf("server get: %v", err)
	}
	obj.Close()
	if _, err := l.GetObject(ctx, info.ID); !errors.Is(err, backend.ErrFull) {
		t.Fatalf("local get of an object larger than memory: %v", err)
	}
}

// An object a client reads in place is neither spilled nor freed, even if
// deleted, until released; a deleted object's bytes are freed at release.
func TestLocalHeldNeverMoved(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t, 8<<20)
	l := e.dial(t)
	held, err := l.Put(ctx, randBytes(1<<20), client.PutOptions{ID: "held", Importance: -5})
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.Put(ctx, randBytes(1<<20), client.PutOptions{ID: "other", Importance: -5})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := l.GetObject(ctx, held.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 { // more than the memory tier holds: it must spill
		if _, err := e.st.Put(ctx, backend.ID(fmt.Sprint("fill", i)), randBytes(1<<20), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.st.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	tierOf := func(id backend.ID) string {
		info, err := e.st.ObjectInfo(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return info.Tier
	}
	if got := tierOf(held.ID); got != shmem.Name {
		t.Fatalf("the held object was moved to %s", got)
	}
	if got := tierOf(other.ID); got == shmem.Name {
		t.Fatalf("the unheld object of the same importance was not spilled: the test proves nothing")
	}
	obj.Close()
	l.ReleaseCached() // else the client keeps the reference a while
	// The release has no reply; the server handles a connection's frames in
	// order, so once a later request is answered the release is done.
	if _, err := l.Info(ctx, held.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Put(ctx, "fill-more", randBytes(1<<20), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "released object spilled", func() bool { return tierOf(held.ID) != shmem.Name })

	// A get of an object on disk promotes it first (given room).
	for i := range 12 {
		_ = e.st.Delete(ctx, backend.ID(fmt.Sprint("fill", i)))
	}
	obj, err = l.GetObject(ctx, held.ID)
	if err != nil {
		t.Fatalf("get of a spilled object: %v", err)
	}
	if obj.Info().Tier != shmem.Name || obj.Info().Checksum != held.Checksum {
		t.Fatalf("promoted get: %+v", obj.Info())
	}
	obj.Close()
}

// The helper process of the kill tests: it connects, does what
// DISTORE_LOCAL_HELPER says, prints "ready" and waits to be killed.
func TestLocalHelperProcess(t *testing.T) {
	mode := os.Getenv("DISTORE_LOCAL_HELPER")
	if mode == "" {
		t.Skip("helper process of the kill tests")
	}
	ctx := context.Background()
	l, err := client.DialLocal(ctx, os.Getenv("DISTORE_LOCAL_SOCKET"))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	switch mode {
	case "hold":
		var objs []backend.Object
		for i := range 100 {
			o, err := l.GetObject(ctx, backend.ID(fmt.Sprint("obj", i)))
			if err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			objs = append(objs, o)
		}
		if err := l.Pin(ctx, "obj0"); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	case "unsealed":
		// Create a put and write half of it in place, never sealing it.
		conn, err := net.Dial("unix", os.Getenv("DISTORE_LOCAL_SOCKET"))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		var enc localproto.Encoder
		f, _ := enc.Begin(localproto.OpCreate).Str("unsealed").U64(4 << 20).U64(0).Frame()
		conn.Write(f)
		if op, _, _, err := localproto.ReadFrame(conn, nil); err != nil || op != localproto.ReplyCreated {
			fmt.Println("error", op, err)
			os.Exit(1)
		}
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
}

func startHelper(t *testing.T, e *localEnv, mode string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLocalHelperProcess$")
	cmd.Env = append(os.Environ(), "DISTORE_LOCAL_HELPER="+mode, "DISTORE_LOCAL_SOCKET="+e.sock)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("helper: %q", line)
	}
	return cmd
}

// A client killed with SIGKILL while holding 100 references (and a pin)
// loses them all within a second: deleted objects' bytes are freed, the pin
// is gone.
func TestLocalKilledClientReleases(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t, 32<<20)
	base := e.memUsed(t)
	for i := range 100 {
		if _, err := e.st.Put(ctx, backend.ID(fmt.Sprint("obj", i)), randBytes(64<<10), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cmd := startHelper(t, e, "hold")
	if info, _ := e.st.ObjectInfo(ctx, "obj0"); info.Pins != 1 {
		t.Fatalf("pins %d, want the helper's 1", info.Pins)
	}
	if err := e.st.Delete(ctx, "obj0"); !errors.Is(err, backend.ErrPinned) {
		t.Fatalf("delete of a pinned object: %v", err)
	}
	for i := 1; i < 100; i++ {
		if err := e.st.Delete(ctx, backend.ID(fmt.Sprint("obj", i))); err != nil {
			t.Fatal(err)
		}
	}
	held := e.memUsed(t)
	if held <= base+99*(64<<10) {
		t.Fatalf("used %d after deleting held objects: their bytes were freed while held", held)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFor(t, time.Second, "a killed client's references released", func() bool {
		info, err := e.st.ObjectInfo(ctx, "obj0")
		return err == nil && info.Pins == 0 && e.memUsed(t) < base+2*(64<<10)+4096
	})
	t.Logf("released %v after SIGKILL", time.Since(killed))
}

// An unsealed put of a killed client leaves nothing.
func TestLocalKilledClientUnsealedPut(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t, 32<<20)
	base := e.memUsed(t)
	cmd := startHelper(t, e, "unsealed")
	if e.memUsed(t) < base+4<<20 {
		t.Fatal("the unsealed put holds no room: the test proves nothing")
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	waitFor(t, time.Second, "a killed client's unsealed put discarded", func() bool { return e.memUsed(t) == base })
	if _, err := e.st.ObjectInfo(ctx, "unsealed"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("unsealed put left %v", err)
	}
	if _, err := e.st.Put(ctx, "unsealed", []byte("now"), backend.PutOptions{}); err != nil {
		t.Fatalf("the ID stayed taken: %v", err)
	}
}

func TestLocalConnectionPins(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t, 8<<20)
	l := e.dial(t)
	info, err := l.Put(ctx, []byte("pinned"), client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Pin(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if err := l.PinDurable(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.st.ObjectInfo(ctx, info.ID); got.Pins != 2 {
		t.Fatalf("pins %d", got.Pins)
	}
	l.Close()
	waitFor(t, time.Second, "the connection's pin gone, the durable one kept", func() bool {
		got, _ := e.st.ObjectInfo(ctx, info.ID)
		return got.Pins == 1
	})
	l2 := e.dial(t)
	if err := l2.Unpin(ctx, info.ID); err != nil {
		t.Fatalf("unpin of the durable pin: %v", err)
	}
	if err := l2.Unpin(ctx, info.ID); !errors.Is(err, backend.ErrNotPinned) {
		t.Fatalf("unpin of nothing: %v", err)
	}
}

// localRawConn sends hand-made frames.
func localRawConn(t *testing.T, e *localEnv) *net.UnixConn {
	t.Helper()
	c, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c.(*net.UnixConn)
}

func readReply(t *testing.T, c net.Conn) (byte, string) {
	t.Helper()
	op, p, _, err := localproto.ReadFrame(c, nil)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	if op != localproto.ReplyError {
		return op, ""
	}
	d := localproto.NewDecoder(p)
	code, msg := d.Str(), d.Str()
	return op, code + ": " + msg
}

func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if _, _, _, err := localproto.ReadFrame(c, nil); err == nil {
		t.Fatal("the connection stayed open after a protocol error")
	}
}

// Bad requests get errors and never bring the server down.
func TestLocalBadRequests(t *testing.T) {
	e := newLocalEnv(t, 8<<20)
	frame := func(op byte, payload []byte) []byte {
		h := []byte{0, 0, 0, 0, op, 0, 0, 0}
		h[0], h[1], h[2], h[3] = byte(len(payload)), byte(len(payload)>>8), byte(len(payload)>>16), byte(len(payload)>>24)
		return append(h, payload...)
	}
	t.Run("unknown op", func(t *testing.T) {
		c := localRawConn(t, e)
		c.Write(frame(200, nil))
		if op, msg := readReply(t, c); op != localproto.ReplyError || !strings.Contains(msg, "unknown op 200") {
			t.Fatalf("reply %d %q", op, msg)
		}
		// The connection still works.
		c.Write(frame(localproto.OpInfo, []byte{3, 0, 0, 0, 'a', 'b', 'c'}))
		if op, msg := readReply(t, c); !strings.HasPrefix(msg, "not_found") {
			t.Fatalf("reply %d %q", op, msg)
		}
	})
	t.Run("truncated payload", func(t *testing.T) {
		c := localRawConn(t, e)
		c.Write(frame(localproto.OpGet, []byte{200, 0, 0, 0, 'a'})) // a string longer than the frame
		if op, msg := readReply(t, c); op != localproto.ReplyError || !strings.HasPrefix(msg, "protocol") {
			t.Fatalf("reply %d %q", op, msg)
		}
		c.Write(frame(localproto.OpSeal, []byte{1, 2, 3}))
		if op, msg := readReply(t, c); op != localproto.ReplyError || !strings.Contains(msg, "truncated") {
			t.Fatalf("reply %d %q", op, msg)
		}
	})
	t.Run("unknown handles", func(t *testing.T) {
		c := localRawConn(t, e)
		var enc localproto.Encoder
		f, _ := enc.Begin(localproto.OpSeal).U64(99).U32(0).Frame()
		c.Write(f)
		if _, msg := readReply(t, c); !strings.HasPrefix(msg, "invalid_argument") {
			t.Fatalf("seal of nothing: %q", msg)
		}
		f, _ = enc.Begin(localproto.OpRelease).U64(12345).Frame() // no reply
		c.Write(f)
		f, _ = enc.Begin(localproto.OpGet).Str("../etc/passwd").Frame()
		c.Write(f)
		if _, msg := readReply(t, c); !strings.HasPrefix(msg, "invalid_id") {
			t.Fatalf("bad ID: %q", msg)
		}
	})
	t.Run("written out of the room", func(t *testing.T) {
		c := localRawConn(t, e)
		var enc localproto.Encoder
		f, _ := enc.Begin(localproto.OpCreate).Str("w").U64(1 << 20).I64(0).Frame()
		c.Write(f)
		if op, msg := readReply(t, c); op != localproto.ReplyCreated {
			t.Fatalf("create: %d %q", op, msg)
		}
		// Handle 1 (the connection's first); past the room's end. No reply:
		// the seal says it, and nothing is stored.
		f, _ = enc.Begin(localproto.OpWritten).U64(1).U64(2 << 20).Frame()
		c.Write(f)
		f, _ = enc.Begin(localproto.OpSeal).U64(1).U32(0).Frame()
		c.Write(f)
		if _, msg := readReply(t, c); !strings.HasPrefix(msg, "invalid_argument") || !strings.Contains(msg, "written") {
			t.Fatalf("seal after a bad written: %q", msg)
		}
		if _, err := e.st.ObjectInfo(context.Background(), "w"); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("a put with a bad written was stored: %v", err)
		}
	})
	t.Run("huge length", func(t *testing.T) {
		c := localRawConn(t, e)
		c.Write([]byte{0xff, 0xff, 0xff, 0xff, localproto.OpPutInline, 0, 0, 0})
		if op, msg := readReply(t, c); op != localproto.ReplyError || !strings.Contains(msg, "exceeds the limit") {
			t.Fatalf("reply %d %q", op, msg)
		}
		expectClosed(t, c)
	})
	t.Run("truncated frame", func(t *testing.T) {
		c := localRawConn(t, e)
		c.Write(frame(localproto.OpGet, []byte{3, 0, 0, 0, 'a', 'b', 'c'})[:6])
		c.Close()
	})
	t.Run("foreign fd", func(t *testing.T) {
		c := localRawConn(t, e)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, _, err := c.WriteMsgUnix(frame(localproto.OpHello, []byte{1, 0, 0, 0}), unix.UnixRights(int(w.Fd())), nil); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if op, msg := readReply(t, c); op != localproto.ReplyError || !strings.Contains(msg, "no file descriptors") {
			t.Fatalf("reply %d %q", op, msg)
		}
		expectClosed(t, c)
		// The server closed its copy: the pipe's read end sees EOF.
		_ = r.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := r.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the server kept the foreign descriptor: %d %v", n, err)
		}
	})
	// After all that, the server serves.
	l := e.dial(t)
	if _, err := l.Put(context.Background(), []byte("still here"), client.PutOptions{ID: "alive"}); err != nil {
		t.Fatal(err)
	}
}

func TestLocalHTTPPinTTL(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t, 8<<20)
	hs := httptest.NewServer(e.srv)
	defer hs.Close()
	if _, err := e.st.Put(ctx, "p", []byte("x"), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	post := func(q string) int {
		resp, err := http.Post(hs.URL+"/v1/objects/p/"+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	pins := func() int { info, _ := e.st.ObjectInfo(ctx, "p"); return info.Pins }
	if code := post("pin?ttl=bogus"); code != http.StatusBadRequest {
		t.Fatalf("bad ttl: %d", code)
	}
	if code := post("pin?ttl=150ms"); code != http.StatusNoContent {
		t.Fatalf("pin: %d", code)
	}
	if code := post("pin"); code != http.StatusNoContent {
		t.Fatalf("durable pin: %d", code)
	}
	if pins() != 2 {
		t.Fatalf("pins %d", pins())
	}
	waitFor(t, 2*time.Second, "the leased pin expired", func() bool { return pins() == 1 })
	time.Sleep(200 * time.Millisecond)
	if pins() != 1 {
		t.Fatal("the durable pin went too")
	}
	// An unpin ends a lease, so that the lease never unpins later.
	if post("pin?ttl=100ms") != http.StatusNoContent || post("unpin") != http.StatusNoContent {
		t.Fatal("pin/unpin")
	}
	if e.srv.pins.Leased("p") != 0 {
		t.Fatal("the unpin left the lease")
	}
	time.Sleep(250 * time.Millisecond)
	if pins() != 1 {
		t.Fatalf("pins %d after an ended lease's TTL, want the durable 1", pins())
	}
}

// metricValue reads a counter or gauge of the server's registry (labels as
// "name=value" pairs), 0 if it has no such series.
func (e *localEnv) metricValue(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == k && lp.GetValue() == v)
				}
				if !found {
					continue next
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

// A get of an object the client holds or just released is answered from the
// reference it kept (no request), until the ID is deleted — by anyone.
func TestLocalCachedGet(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t, 64<<20)
	a, b := e.dial(t), e.dial(t)
	gets := func() float64 { return e.metricValue(t, "distore_local_requests_total", "op=get") }
	refs := func() float64 { return e.metricValue(t, "distore_local_references") }
	v1 := randBytes(100 << 10)
	if _, err := b.Put(ctx, v1, client.PutOptions{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		o, err := a.GetObject(ctx, "c")
		if err != nil || !bytes.Equal(o.Bytes(), v1) {
			t.Fatalf("get %d: %v", i, err)
		}
		o.Close()
	}
	if n := gets(); n != 1 {
		t.Fatalf("three gets of one object made %v requests, want 1 (two from the kept reference)", n)
	}
	if n := refs(); n != 1 {
		t.Fatalf("references held: %v, want the one kept", n)
	}
	// Deleted by another client: the kept reference is not used.
	if err := b.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetObject(ctx, "c"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("get after another client's delete: %v, want not found", err)
	}
	// Put again with other bytes: the get sees them.
	v2 := randBytes(100<<10 + 1)
	if _, err := b.Put(ctx, v2, client.PutOptions{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	o, err := a.GetObject(ctx, "c")
	if err != nil || !bytes.Equal(o.Bytes(), v2) {
		t.Fatalf("get after delete and put again: %v", err)
	}
	// Held while open, kept a while after, then released by itself.
	o.Close()
	if n := refs(); n != 1 {
		t.Fatalf("references held after close: %v, want the one kept", n)
	}
	waitFor(t, 5*time.Second, "the kept reference released by itself", func() bool { return refs() == 0 })
	// A delete by the client itself releases its kept reference at once:
	// the bytes are freed without waiting.
	o, err = a.GetObject(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	if err := a.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 100*time.Millisecond, "bytes freed after the client's own delete", func() bool { return e.memUsed(t) == 0 })

	// A small put keeps the reference the server took: the putter's get of
	// it asks nothing, until another client deletes it.
	before := gets()
	if _, err := a.Put(ctx, []byte("mine"), client.PutOptions{ID: "own"}); err != nil {
		t.Fatal(err)
	}
	o, err = a.GetObject(ctx, "own")
	if err != nil || string(o.Bytes()) != "mine" || o.Info().Size != 4 {
		t.Fatalf("get of the client's own put: %v", err)
	}
	o.Close()
	if n := gets() - before; n != 0 {
		t.Fatalf("a get of the client's own small put made %v requests, want none", n)
	}
	if err := b.Delete(ctx, "own"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetObject(ctx, "own"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("get of its own put after another client's delete: %v, want not found", err)
	}
}

// A client's releases reach the server with its next request, or by
// themselves within the idle time when no request follows, also after a
// call whose context deadline has passed since (the release must not be cut
// by that old deadline, which would break the connection).
func TestLocalReleasesReachTheServer(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t, 64<<20)
	a := e.dial(t)
	refs := func() float64 { return e.metricValue(t, "distore_local_references") }
	if _, err := a.Put(ctx, randBytes(100<<10), client.PutOptions{ID: "r"}); err != nil {
		t.Fatal(err)
	}
	for _, follow := range []bool{true, false} {
		tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		o, err := a.GetObject(tctx, "r")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		o.Close()
		time.Sleep(60 * time.Millisecond) // the get's deadline has passed
		a.ReleaseCached()
		if follow {
			if _, err := a.Info(ctx, "r"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 100*time.Millisecond, "the release sent with the next request", func() bool { return refs() == 0 })
		} else {
			waitFor(t, 2*time.Second, "the release sent by the idle timer", func() bool { return refs() == 0 })
		}
	}
	if _, err := a.Info(ctx, "r"); err != nil {
		t.Fatalf("the connection after the releases: %v", err)
	}
}

// OpWritten frames that arrive together with their put's seal are left to
// the seal, which checksums what is left at once: the object stored is the
// bytes written, with their checksum, and a written past the room is still
// refused.
func TestLocalWrittenWithSealQueued(t *testing.T) {
	e := newLocalEnv(t, 64<<20)
	c := localRawConn(t, e)
	var enc localproto.Encoder
	f, _ := enc.Begin(localproto.OpMapWrite).Frame()
	c.Write(f)
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("map_write sent no descriptor: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("map_write descriptor: %v", err)
	}
	arena, err := unix.Mmap(fds[0], 0, 64<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	unix.Close(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(arena)

	for k, bad := range []bool{false, true} {
		data := randBytes(5<<20 + 3)
		id := fmt.Sprintf("queued%d", k)
		f, _ := enc.Begin(localproto.OpCreate).Str(id).U64(uint64(len(data))).I64(0).Frame()
		c.Write(f)
		op, p, _, err := localproto.ReadFrame(c, nil)
		if err != nil || op != localproto.ReplyCreated {
			t.Fatalf("create: %d %v", op, err)
		}
		d := localproto.NewDecoder(p)
		h, off := d.U64(), d.U64()
		copy(arena[off:], data)
		// Every written and the seal in one write: the server reads them together.
		var frames []byte
		for upto := uint64(1 << 20); upto < uint64(len(data)); upto += 1 << 20 {
			f, _ := enc.Begin(localproto.OpWritten).U64(h).U64(upto).Frame()
			frames = append(frames, f...)
		}
		if bad {
			f, _ := enc.Begin(localproto.OpWritten).U64(h).U64(uint64(len(data)) + 1).Frame()
			frames = append(frames, f...)
		}
		f, _ = enc.Begin(localproto.OpSeal).U64(h).U32(0).Frame()
		c.Write(append(frames, f...))
		op, msg := readReply(t, c)
		if bad {
			if !strings.Contains(msg, "written") {
				t.Fatalf("seal after a written past the room: %d %q", op, msg)
			}
			continue
		}
		if op != localproto.ReplyInfo {
			t.Fatalf("seal: %d %q", op, msg)
		}
		info, err := e.st.ObjectInfo(context.Background(), backend.ID(id))
		if err != nil || info.Checksum != backend.Checksum(data) {
			t.Fatalf("the sealed object: %+v %v, want checksum %08x", info, err, backend.Checksum(data))
		}
		got, err := e.st.Get(context.Background(), backend.ID(id))
		if err != nil || !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("the sealed object's bytes: %v", err)
		}
		got.Close()
	}
}
