package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"distore/backend"
	"distore/client"
	"distore/server"
	_ "distore/shmem"
	"distore/spill"
	"distore/wire"
)

func init() {
	register("server", "distore server over loopback (Go client, 8 clients) vs plain net/http and Redis: put/get of 4 KiB, 1 MiB, 64 MiB", runServerBench)
}

// srvSizes are the object sizes; srvClients the concurrent clients for the
// small sizes (64 MiB runs one stream: it measures bandwidth).
var srvSizes = []int64{4 << 10, 1 << 20, 64 << 20}

const srvClients = 8

// srvBudget bounds each measurement in time and in bytes moved.
const (
	srvRounds = 5
	srvTime   = time.Second
	srvBytes  = 1 << 30 // at most this many bytes are put per size (memory tier capacity)
)

// srvWay is one way of moving objects: put then get n objects of a size.
type srvWay interface {
	name() string
	put(ctx context.Context, worker, i int, data []byte) error
	get(ctx context.Context, worker, i int, buf []byte) ([]byte, error)
	close()
}

func runServerBench(ctx context.Context, r *report) error {
	// distore: a stack of one memory tier, served in this process.
	st, err := spill.Open(ctx, spill.Options{Tiers: []spill.TierSpec{{Name: "memory",
		Config: backend.Config{"capacity": fmt.Sprint(srvBytes + srvBytes/4)}}}})
	if err != nil {
		return err
	}
	defer st.Teardown(context.WithoutCancel(ctx))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(st, server.Options{Logger: quiet})
	if err != nil {
		return err
	}
	dsURL, stopDS, err := srvServe(ctx, srv)
	if err != nil {
		return err
	}
	defer stopDS()
	c, err := client.New(dsURL)
	if err != nil {
		return err
	}
	ways := []srvWay{&distoreWay{c: c, st: st}}
	defer func() {
		for _, w := range ways {
			w.close()
		}
	}()

	// Plain net/http: the same bytes, no store (the ceiling).
	plain := &plainHTTP{}
	phURL, stopPH, err := srvListen(ctx, plain)
	if err != nil {
		return err
	}
	defer stopPH()
	ways = append(ways, &plainWay{url: phURL, srv: plain, hc: &http.Client{Transport: client.NewTransport()}})

	// Redis, if it can be started.
	rw, stopRedis, rerr := startRedis(ctx)
	if rerr == nil {
		defer stopRedis()
		ways = append(ways, rw)
	}

	// The floor: a bare Go RESP server in this process (see respfloor.go).
	fw, stopFloor, err := startRESPFloor(ctx, int(srvSizes[len(srvSizes)-1]))
	if err != nil {
		return err
	}
	defer stopFloor()
	ways = append(ways, fw)

	r.table("size", "op", "clients", "distore ops/s", "distore GB/s", "net/http GB/s", "go-resp GB/s", "redis GB/s",
		"vs net/http", "vs go-resp", "vs redis")
	type key struct {
		way, op string
		size    int64
	}
	rates := map[key][2]float64{} // ops/s, GB/s
	cpus := map[key][2]float64{}  // CPU µs per op of the best round: this process, the server's
	for _, size := range srvSizes {
		clients := srvClients
		if size >= 64<<20 {
			clients = 1
		}
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + i>>12)
		}
		// The ways take turns, srvRounds times, and each keeps its best
		// round: the machine is shared, and a burst of load elsewhere
		// should not decide a ratio.
		for range srvRounds {
			for _, w := range ways {
				n, put, get, err := srvMeasure(ctx, w, data, clients)
				if err != nil {
					return fmt.Errorf("%s %s: %w", w.name(), sizeName(size), err)
				}
				for op, ph := range map[string]srvPhase{"put": put, "get": get} {
					k := key{w.name(), op, size}
					if ops := float64(n) / ph.wall.Seconds(); ops > rates[k][0] {
						rates[k] = [2]float64{ops, gbps(int64(n)*size, ph.wall)}
						perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
						cpus[k] = [2]float64{perOp(ph.cpu), perOp(ph.serverCPU)}
					}
				}
				if err := srvCleanup(ctx, w, n, clients); err != nil {
					return err
				}
			}
		}
		for _, op := range []string{"put", "get"} {
			ds, ph, rd := rates[key{"distore", op, size}], rates[key{"net/http", op, size}], rates[key{"redis", op, size}]
			fl := rates[key{"go-resp", op, size}]
			rdCell, vsRedis := "-", "-"
			if rerr == nil {
				rdCell, vsRedis = fmt.Sprintf("%.3g", rd[1]), fmt.Sprintf("%.2f", ratio(ds[0], rd[0]))
			}
			r.row(sizeName(size), op, clients, fmt.Sprintf("%.0f", ds[0]), ds[1], ph[1], fl[1], rdCell,
				fmt.Sprintf("%.2f", ratio(ds[0], ph[0])), fmt.Sprintf("%.2f", ratio(ds[0], fl[0])), vsRedis)
		}
	}
	// CPU per operation at the smallest size, where it decides the rate:
	// the in-process ways' figure holds client and server; Redis's is the
	// client here plus redis-server.
	small := srvSizes[0]
	r.table("size", "op", "CPU µs/op:", "distore", "net/http", "go-resp", "redis client", "+ redis-server", "= redis")
	for _, op := range []string{"put", "get"} {
		c := func(way string) [2]float64 { return cpus[key{way, op, small}] }
		redis := [3]string{"-", "-", "-"}
		if rerr == nil {
			rc := c("redis")
			redis = [3]string{fmt.Sprintf("%.1f", rc[0]), fmt.Sprintf("%.1f", rc[1]), fmt.Sprintf("%.1f", rc[0]+rc[1])}
		}
		r.row(sizeName(small), op, "", fmt.Sprintf("%.1f", c("distore")[0]), fmt.Sprintf("%.1f", c("net/http")[0]),
			fmt.Sprintf("%.1f", c("go-resp")[0]), redis[0], redis[1], redis[2])
	}
	r.note("best of %d alternating rounds of <= %v of puts then the same gets, per way and size", srvRounds, srvTime)
	r.note("distore: in-process server (Serve, its own HTTP/1.1 loop) over a spill stack of one memory tier, Go client (one shared client, keep-alive)")
	r.note("net/http: a handler that reads the body into a buffer / writes a buffer — the ceiling of any HTTP store")
	if rerr != nil {
		r.note("redis: not run: %v", rerr)
	} else {
		r.note("redis: redis-server on loopback, no persistence, one RESP connection per client")
	}
	r.note("CPU µs/op: user+system time per operation in the best round; distore, net/http and go-resp hold client and server in this process, redis's client is here and redis-server is its own process (from /proc, 10 ms ticks)")
	r.note("go-resp: a bare Go RESP server in this process, the same client as redis: the floor under any protocol a Go server in-process reaches here")
	r.note("targets: 64MiB get >= 0.8x net/http; 1MiB >= 1.0x redis; 4KiB >= 0.8x redis ops/s (8 clients)")
	return nil
}

// srvListen serves h with a plain net/http server on a loopback port until
// the returned stop is called.
func srvListen(ctx context.Context, h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	return "http://" + ln.Addr().String(), func() { hs.Close() }, nil
}

// srvServe runs the distore server the way distore-server does (Serve, its
// own connection loop) on a loopback port until the returned stop is called.
func srvServe(ctx context.Context, srv *server.Server) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln, time.Second) }()
	return "http://" + ln.Addr().String(), func() { cancel(); <-done }, nil
}

// srvPhase is one phase (the puts or the gets) of a measurement: its wall
// time and the CPU time it took, in this process and in the server's if it
// is another (redis-server).
type srvPhase struct {
	wall, cpu, serverCPU time.Duration
}

// srvCPU returns the CPU time (user and system) of this process and of the
// process pid (0: none) so far.
func srvCPU(pid int) (self, other time.Duration) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if pid == 0 {
		return self, 0
	}
	// /proc/PID/stat: utime and stime are the 14th and 15th fields, in
	// clock ticks (USER_HZ, 100 on Linux), after the parenthesized name.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return self, 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return self, 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return self, time.Duration(u+st) * 10 * time.Millisecond
}

// phaseStart starts timing a phase; the func it returns ends it.
func phaseStart(pid int) func() srvPhase {
	start := time.Now()
	self, other := srvCPU(pid)
	return func() srvPhase {
		wall := time.Since(start)
		self2, other2 := srvCPU(pid)
		return srvPhase{wall: wall, cpu: self2 - self, serverCPU: other2 - other}
	}
}

// srvMeasure puts objects with `clients` workers until srvTime or the byte
// budget, then gets every one back once; it returns how many and the phases.
func srvMeasure(ctx context.Context, w srvWay, data []byte, clients int) (int, srvPhase, srvPhase, error) {
	size := int64(len(data))
	perWorker := int(max(1, srvBytes/size/int64(clients)))
	counts := make([]int, clients)
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	pid := 0
	if rw, ok := w.(*redisWay); ok {
		pid = rw.pid
	}
	endPuts := phaseStart(pid)
	deadline := time.Now().Add(srvTime)
	for wk := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker && time.Now().Before(deadline); i++ {
				if err := w.put(ctx, wk, i, data); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				counts[wk]++
			}
		}()
	}
	wg.Wait()
	puts := endPuts()
	if firstErr != nil {
		return 0, puts, puts, firstErr
	}
	n := 0
	for _, k := range counts {
		n += k
	}
	var bad atomic.Int64
	endGets := phaseStart(pid)
	for wk := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, size, size+16) // +2 for RESP's CRLF
			for i := range counts[wk] {
				got, err := w.get(ctx, wk, i, buf)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				if len(got) != len(data) || got[len(got)-1] != data[len(data)-1] {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	gets := endGets()
	if firstErr != nil {
		return 0, puts, gets, firstErr
	}
	if bad.Load() > 0 {
		return 0, puts, gets, fmt.Errorf("%d gets returned wrong bytes", bad.Load())
	}
	return n, puts, gets, nil
}

func srvCleanup(ctx context.Context, w srvWay, n, clients int) error {
	switch w := w.(type) {
	case *distoreWay:
		page, err := w.c.List(ctx, backend.ListOptions{Prefix: "b", Limit: wire.MaxListLimit})
		for err == nil && len(page.Objects) > 0 {
			for _, o := range page.Objects {
				if err := w.c.Delete(ctx, o.ID); err != nil {
					return err
				}
			}
			page, err = w.c.List(ctx, backend.ListOptions{Prefix: "b", Limit: wire.MaxListLimit})
		}
		return err
	case *plainWay:
		w.srv.reset()
	case *redisWay:
		return w.flush()
	}
	return nil
}

func srvKey(worker, i int) string { return "b" + strconv.Itoa(worker) + "-" + strconv.Itoa(i) }

// distoreWay goes through the Go client to the server.
type distoreWay struct {
	c  *client.Client
	st *spill.Stack
}

func (d *distoreWay) name() string { return "distore" }
func (d *distoreWay) close()       { d.c.Close() }
func (d *distoreWay) put(ctx context.Context, worker, i int, data []byte) error {
	_, err := d.c.Put(ctx, data, client.PutOptions{ID: backend.ID(srvKey(worker, i))})
	return err
}
func (d *distoreWay) get(ctx context.Context, worker, i int, buf []byte) ([]byte, error) {
	return d.c.GetInto(ctx, backend.ID(srvKey(worker, i)), buf)
}

// plainHTTP is the ceiling: PUT reads the body into a buffer and keeps only
// its size; GET writes a buffer of that size.
type plainHTTP struct {
	mu    sync.Mutex
	sizes map[string]int64
	buf   []byte
}

func (p *plainHTTP) reset() {
	p.mu.Lock()
	p.sizes = nil
	p.mu.Unlock()
}

var plainBufs = sync.Pool{New: func() any { return new([]byte) }}

func (p *plainHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Path
	switch r.Method {
	case http.MethodPut:
		bp := plainBufs.Get().(*[]byte)
		if int64(cap(*bp)) < r.ContentLength {
			*bp = make([]byte, r.ContentLength)
		}
		_, err := io.ReadFull(r.Body, (*bp)[:r.ContentLength])
		plainBufs.Put(bp)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		p.mu.Lock()
		if p.sizes == nil {
			p.sizes = map[string]int64{}
		}
		p.sizes[key] = r.ContentLength
		if int64(len(p.buf)) < r.ContentLength {
			p.buf = make([]byte, r.ContentLength)
			for i := range p.buf {
				p.buf[i] = byte(i*7 + i>>12)
			}
		}
		p.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	case http.MethodGet:
		p.mu.Lock()
		n, ok := p.sizes[key]
		buf := p.buf
		p.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.Write(buf[:n])
	}
}

type plainWay struct {
	url string
	srv *plainHTTP
	hc  *http.Client
}

func (p *plainWay) name() string { return "net/http" }
func (p *plainWay) close()       { p.hc.CloseIdleConnections() }
func (p *plainWay) put(ctx context.Context, worker, i int, data []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.url+"/"+srvKey(worker, i), bytes.NewReader(data))
	if err != nil {
		return err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("plain put: %s", resp.Status)
	}
	return nil
}
func (p *plainWay) get(ctx context.Context, worker, i int, buf []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/"+srvKey(worker, i), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("plain get: %s", resp.Status)
	}
	n := resp.ContentLength
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	_, err = io.ReadFull(resp.Body, buf[:n])
	return buf[:n], err
}

// redisWay speaks RESP to a redis-server, one connection per worker.
type redisWay struct {
	label string // "redis", or "go-resp" for the floor (respfloor.go)
	addr  string
	pid   int // redis-server's process, whose CPU time is measured; 0 in process
	mu    sync.Mutex
	conns map[int]*respConn
}

type respConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

// startRedis runs redis-server on a free loopback port with no persistence.
func startRedis(ctx context.Context) (*redisWay, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, nil, fmt.Errorf("redis-server not installed (apt-get install -y redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "distore-bench-redis-")
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", dir, "--protected-mode", "yes", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	rw := &redisWay{label: "redis", addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), conns: map[int]*respConn{}, pid: cmd.Process.Pid}
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if _, err := rw.conn(0); err == nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			stop()
			return nil, nil, fmt.Errorf("redis-server did not answer on %s", rw.addr)
		}
	}
	return rw, func() { rw.close(); stop() }, nil
}

func (r *redisWay) name() string { return r.label }

func (r *redisWay) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.c.Close()
	}
	r.conns = map[int]*respConn{}
}

func (r *redisWay) conn(worker int) (*respConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.conns[worker]; ok {
		return c, nil
	}
	nc, err := net.Dial("tcp", r.addr)
	if err != nil {
		return nil, err
	}
	c := &respConn{c: nc, r: bufio.NewReaderSize(nc, 256<<10), w: bufio.NewWriterSize(nc, 256<<10)}
	r.conns[worker] = c
	return c, nil
}

// command sends one RESP command of bulk strings.
func (c *respConn) command(args ...[]byte) error {
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.w, "$%d\r\n", len(a))
		c.w.Write(a)
		c.w.WriteString("\r\n")
	}
	return c.w.Flush()
}

// reply reads one reply: simple string, error, or bulk string (into buf).
func (c *respConn) reply(buf []byte) ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, fmt.Errorf("redis: short reply %q", line)
	}
	switch line[0] {
	case '+':
		return nil, nil
	case '-':
		return nil, errors.New("redis: " + string(line[1:len(line)-2]))
	case '$':
		n, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("redis: bad bulk reply %q", line)
		}
		if cap(buf) < n+2 {
			buf = make([]byte, n+2)
		}
		buf = buf[:n+2]
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	return nil, fmt.Errorf("redis: unexpected reply %q", line)
}

func (r *redisWay) put(ctx context.Context, worker, i int, data []byte) error {
	c, err := r.conn(worker)
	if err != nil {
		return err
	}
	if err := c.command([]byte("SET"), []byte(srvKey(worker, i)), data); err != nil {
		return err
	}
	_, err = c.reply(nil)
	return err
}

func (r *redisWay) get(ctx context.Context, worker, i int, buf []byte) ([]byte, error) {
	c, err := r.conn(worker)
	if err != nil {
		return nil, err
	}
	if err := c.command([]byte("GET"), []byte(srvKey(worker, i))); err != nil {
		return nil, err
	}
	return c.reply(buf)
}

func (r *redisWay) flush() error {
	c, err := r.conn(0)
	if err != nil {
		return err
	}
	if err := c.command([]byte("FLUSHALL")); err != nil {
		return err
	}
	_, err = c.reply(nil)
	return err
}
