package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"distore/backend"
	"distore/client"
	"distore/server"
	"distore/spill"
)

func init() {
	register("local", "the local socket (zero-copy, Go and Python) vs HTTP loopback, copy(), Redis (redis-benchmark -c 1) and multiprocessing.shared_memory", runLocalBench)
}

// localTime bounds each latency measurement.
const localTime = 300 * time.Millisecond

// perOp runs f until d passes (at least min times) and returns the time per call.
func perOp(d time.Duration, min int, f func() error) (time.Duration, error) {
	start := time.Now()
	n := 0
	for ; n < min || time.Since(start) < d; n++ {
		if err := f(); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / time.Duration(n), nil
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func runLocalBench(ctx context.Context, r *report) error {
	st, err := spill.Open(ctx, spill.Options{Tiers: []spill.TierSpec{{Name: "memory",
		Config: backend.Config{"capacity": "512MiB"}}}})
	if err != nil {
		return err
	}
	defer st.Teardown(context.WithoutCancel(ctx))
	srv, err := server.New(st, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	addr, stopHTTP, err := srvServe(ctx, srv)
	url := "http://" + addr
	if err != nil {
		return err
	}
	defer stopHTTP()
	dir, err := os.MkdirTemp("", "distore-bench-local-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "distore.sock")
	ln, err := server.ListenLocal(sock, "")
	if err != nil {
		return err
	}
	lctx, stopLocal := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = srv.ServeLocal(lctx, ln); close(done) }()
	defer func() { stopLocal(); <-done }()

	lc, err := client.DialLocal(ctx, sock)
	if err != nil {
		return err
	}
	defer lc.Close()
	hc, err := client.New(url)
	if err != nil {
		return err
	}
	defer hc.Close()

	sizes := []int{4 << 10, 64 << 20}
	for _, n := range sizes {
		if _, err := st.Put(ctx, backend.ID("get"+strconv.Itoa(n)), make([]byte, n), backend.PutOptions{}); err != nil {
			return err
		}
	}
	// Python's figures, measured by a script on the same server.
	py, pyErr := runPythonLocalBench(ctx, sock, url)

	r.table("get latency", "size", "Go local µs", "Go local round trip µs", "Go HTTP µs", "HTTP/local",
		"Python local µs", "Python local round trip µs", "Python HTTP µs", "target")
	for _, n := range sizes {
		id := backend.ID("get" + strconv.Itoa(n))
		local, err := perOp(localTime, 100, localGet(ctx, lc, id, false))
		if err != nil {
			return err
		}
		localRT, err := perOp(localTime, 100, localGet(ctx, lc, id, true))
		if err != nil {
			return err
		}
		buf := make([]byte, n)
		remote, err := perOp(localTime, 3, func() error { _, err := hc.GetInto(ctx, id, buf); return err })
		if err != nil {
			return err
		}
		r.row("get", backend.FormatBytes(int64(n)), us(local), us(localRT), us(remote), ratio(float64(remote), float64(local)),
			py.get(n, "local"), py.get(n, "local_rt"), py.get(n, "http"), "Go < 5 µs, Python < 20 µs")
	}
	r.note("local: a get of an object the client just released, answered from the reference it kept (the common case of a hot object); round trip: the client released it first (ReleaseCached / release()), so the get asks the server")

	// A 64 MiB put: into the mapping (one copy plus the seal's checksum) vs
	// copy(), with this process's server and with distore-server in a
	// process of its own (as users run it: there the server's checksum runs
	// on the other core while the client copies). Beside them, the same
	// copy() with a checksum of as many bytes running alongside: the bound
	// that memory bandwidth puts on any put the server verifies.
	r.table("put 64 MiB", "server", "copy() GB/s", "copy ∥ CRC GB/s", "Go local put GB/s", "put/copy", "ceiling/copy", "put/ceiling", "Go round trip µs", "target")
	pc, err := putVsCopy(ctx, lc)
	if err != nil {
		return err
	}
	rt, err := perOp(localTime, 100, localGet(ctx, lc, "get4096", true))
	if err != nil {
		return err
	}
	putRow := func(server string, pc putFigures, rt time.Duration) {
		r.row("put", server, gbps(putBig, pc.cp), gbps(putBig, pc.ceiling), gbps(putBig, pc.put),
			ratio(float64(pc.cp), float64(pc.put)), ratio(float64(pc.cp), float64(pc.ceiling)),
			ratio(float64(pc.ceiling), float64(pc.put)), us(rt), "put/copy >= 0.7")
	}
	putRow("in this process", pc, rt)
	if sep, err := separateServer(ctx, dir); err != nil {
		r.row("put", "distore-server", "skipped", "", "", "", "", "", "", "")
		r.note("distore-server: %v", err)
	} else {
		putRow("distore-server", sep.putFigures, sep.rt)
	}
	r.note("put 64 MiB: best of 9 alternating rounds of copy(), copy ∥ CRC and a put (then a delete); Go round trip: a 4 KiB get that asks the server (a server in this process answers without polling, one in its own process polls: docs/local.md)")
	r.note("copy ∥ CRC: copy() of 64 MiB on one goroutine while another takes the CRC-32C of 64 MiB more (backend.Checksum), both from memory: the bytes a put that the server verifies must move (write once, read back once), at best overlapped. ceiling/copy is the most put/copy can be on this machine while the server checks the checksum at seal; it is near 1 where one core's copy leaves memory bandwidth spare, and 2/3 or less where one copy takes it all (the checksum then competes with the copy for the same bandwidth)")

	// Python put+get of 4 KiB against Redis (its own benchmark tool, one
	// client) and multiprocessing.shared_memory.
	redisPair, redisErr := redisPairRate(ctx)
	r.table("4 KiB put+get pairs/s", "Python local", "redis-benchmark -c 1", "local/Redis", "shared_memory", "target")
	r.row("pairs", py.Pair, redisPair, ratio(py.Pair, redisPair), py.ShmPair, "local/Redis >= 2")
	if pyErr != nil {
		r.note("python: %v", pyErr)
	}
	if redisErr != nil {
		r.note("redis: %v", redisErr)
	}
	return nil
}

const putBig = 64 << 20

// localGet returns a get of id through lc, its bytes touched; with
// roundTrip the reference is let go after, so that each get asks the server.
func localGet(ctx context.Context, lc *client.Local, id backend.ID, roundTrip bool) func() error {
	return func() error {
		o, err := lc.GetObject(ctx, id)
		if err == nil {
			_ = o.Bytes()[len(o.Bytes())-1] // touch it: the mapping is there
			o.Close()
			if roundTrip {
				lc.ReleaseCached() // the next get asks the server
			}
		}
		return err
	}
}

// putFigures are the best times of putVsCopy's rounds.
type putFigures struct {
	cp      time.Duration // copy() of 64 MiB
	ceiling time.Duration // copy() of 64 MiB beside a CRC-32C of 64 MiB more
	put     time.Duration // a 64 MiB put through the local socket
}

// putVsCopy returns the best of 9 alternating rounds of a 64 MiB copy(),
// the same copy beside a checksum of as many other bytes, and a 64 MiB put
// through lc (each put deleted after): on a shared virtual machine copy()
// alone ranged from 16 to 27 GB/s between runs, so all are measured side by
// side.
func putVsCopy(ctx context.Context, lc *client.Local) (f putFigures, err error) {
	src := make([]byte, putBig)
	other := make([]byte, putBig)
	for i := range src {
		src[i], other[i] = byte(i*7), byte(i*13)
	}
	dst := make([]byte, putBig)
	copy(dst, src)
	f = putFigures{cp: 1 << 62, ceiling: 1 << 62, put: 1 << 62}
	for k := range 9 {
		start := time.Now()
		copy(dst, src)
		f.cp = min(f.cp, time.Since(start))

		var wg sync.WaitGroup
		start = time.Now()
		wg.Go(func() { copy(dst, src) })
		wg.Go(func() { _ = backend.Checksum(other) })
		wg.Wait()
		f.ceiling = min(f.ceiling, time.Since(start))

		start = time.Now()
		info, err := lc.Put(ctx, src, client.PutOptions{ID: backend.ID("put" + strconv.Itoa(k))})
		if err != nil {
			return f, err
		}
		f.put = min(f.put, time.Since(start))
		if err := lc.Delete(ctx, info.ID); err != nil {
			return f, err
		}
	}
	return f, nil
}

// separateFigures are putVsCopy's times and a 4 KiB get's round trip,
// against a distore-server process.
type separateFigures struct {
	putFigures
	rt time.Duration
}

// separateServer measures putVsCopy and a 4 KiB get's round trip against a
// distore-server process (built with go build) with one memory tier, its
// data and socket under dir.
func separateServer(ctx context.Context, dir string) (f separateFigures, err error) {
	bin := filepath.Join(dir, "distore-server")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "distore/cmd/distore-server").CombinedOutput(); err != nil {
		return f, fmt.Errorf("building distore-server: %v: %s", err, out)
	}
	data := filepath.Join(dir, "server")
	sock := filepath.Join(data, "distore.sock")
	cmd := exec.CommandContext(ctx, bin, "--levels", "memory", "--data-dir", data, "--listen", "127.0.0.1:0",
		"--memory-capacity", "512MiB", "--socket", sock, "--release-arena")
	if err := cmd.Start(); err != nil {
		return f, err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	var lc *client.Local
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if lc, err = client.DialLocal(ctx, sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return f, fmt.Errorf("distore-server's socket: %w", err)
		}
	}
	defer lc.Close()
	if f.putFigures, err = putVsCopy(ctx, lc); err != nil {
		return f, err
	}
	info, err := lc.Put(ctx, make([]byte, 4<<10), client.PutOptions{})
	if err != nil {
		return f, err
	}
	f.rt, err = perOp(localTime, 100, localGet(ctx, lc, info.ID, true))
	return f, err
}

// pyResults are the Python script's figures (µs per get, pairs/s).
type pyResults struct {
	Get     map[string]float64 `json:"get"` // "local 4096" -> µs
	Pair    float64            `json:"pair"`
	ShmPair float64            `json:"shm_pair"`
}

func (p pyResults) get(n int, way string) any {
	if v, ok := p.Get[fmt.Sprintf("%s %d", way, n)]; ok {
		return v
	}
	return "-"
}

// pyBench measures from Python: get latency of the objects "get<size>"
// through the local socket and HTTP, 4 KiB put+get pairs through the local
// socket, and the same bytes written to and read from a
// multiprocessing.shared_memory block.
const pyBench = `
import json, sys, time
from multiprocessing import shared_memory
import distore
sock, url, budget = sys.argv[1], sys.argv[2], 0.3
def per_op(f, least=50):
    n, t0 = 0, time.perf_counter()
    while n < least or time.perf_counter() - t0 < budget:
        f(); n += 1
    return (time.perf_counter() - t0) / n
out = {"get": {}}
with distore.Client(sock) as lc, distore.Client(url) as hc:
    for n in (4096, 64 << 20):
        oid = "get%d" % n
        def local_get():
            v = lc.get(oid); v[-1]; lc.release(oid)
        out["get"]["local %d" % n] = per_op(local_get) * 1e6
        def local_get_rt():
            v = lc.get(oid); v[-1]; lc.release()  # all: the kept reference too
        out["get"]["local_rt %d" % n] = per_op(local_get_rt) * 1e6
        out["get"]["http %d" % n] = per_op(lambda: hc.get(oid), 3) * 1e6
    data = b"x" * 4096
    i = [0]
    def pair():
        i[0] += 1
        oid = "pair%d" % i[0]
        lc.put(data, object_id=oid); v = lc.get(oid); v[-1]; lc.release(oid)
    out["pair"] = 1 / per_op(pair)
    shm = shared_memory.SharedMemory(create=True, size=4096)
    try:
        def shm_pair():
            shm.buf[:4096] = data; v = shm.buf[:4096]; v[-1]; v.release()
        out["shm_pair"] = 1 / per_op(shm_pair)
    finally:
        shm.close(); shm.unlink()
print(json.dumps(out))
`

func runPythonLocalBench(ctx context.Context, sock, url string) (pyResults, error) {
	var res pyResults
	py, err := exec.LookPath("python3")
	if err != nil {
		return res, fmt.Errorf("python3 not found")
	}
	pkg, _ := filepath.Abs("python")
	if _, err := os.Stat(filepath.Join(pkg, "distore")); err != nil {
		return res, fmt.Errorf("run from the repository root (python/distore not found)")
	}
	cmd := exec.CommandContext(ctx, py, "-c", pyBench, sock, url)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pkg)
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return res, fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		return res, err
	}
	err = json.Unmarshal(out, &res)
	return res, err
}

// redisPairRate runs redis-benchmark -c 1 SET and GET of 4 KiB values on a
// fresh redis-server and returns the SET+GET pairs per second.
func redisPairRate(ctx context.Context) (float64, error) {
	addr, pid, stop, err := startRedis(ctx)
	if err != nil {
		return 0, err
	}
	defer stop()
	set, _, err := redisBenchmark(ctx, addr, pid, "set", 4<<10, 1)
	if err != nil {
		return 0, err
	}
	get, _, err := redisBenchmark(ctx, addr, pid, "get", 4<<10, 1)
	if err != nil {
		return 0, err
	}
	return 1 / (1/set + 1/get), nil
}
