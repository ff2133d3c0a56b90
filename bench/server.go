package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	register("server", "distore server over loopback (Go client) vs a bare net/http handler moving the same bytes, TLS off and on, and Redis measured by redis-benchmark: put/get of 4 KiB, 1 MiB, 64 MiB", runServerBench)
}

// srvSizes are the object sizes; srvClients the concurrent clients for the
// small sizes (64 MiB runs one stream: it measures bandwidth, and 8 streams
// of 64 MiB do not fit the memory this shared machine has to spare).
var srvSizes = []int64{4 << 10, 1 << 20, 64 << 20}

const srvClients = 8

func srvClientsFor(size int64) int {
	if size >= 64<<20 {
		return 1
	}
	return srvClients
}

// srvBudget bounds each measurement in time and in bytes moved.
const (
	srvTime  = 500 * time.Millisecond
	srvBytes = 256 << 20 // at most this many bytes are put per size and round
)

// srvRoundsFor is how many rounds each way runs at size. Small objects fill
// srvTime per phase; from 1 MiB up the byte budget ends a phase within tens
// of milliseconds, which a burst of load elsewhere on a shared machine can
// swing by half, so those sizes take more (cheap) rounds for a steady median.
func srvRoundsFor(size int64) int {
	if size >= 1<<20 {
		return 21
	}
	return 5
}

// srvWay is one way of moving objects over HTTP: put then get n objects.
type srvWay interface {
	name() string
	put(ctx context.Context, worker, i int, data []byte) error
	get(ctx context.Context, worker, i int, buf []byte) ([]byte, error)
	cleanup(ctx context.Context) error
	close()
}

func runServerBench(ctx context.Context, r *report) error {
	// distore: a stack of one memory tier, served in this process.
	st, err := spill.Open(ctx, spill.Options{Tiers: []spill.TierSpec{{Name: "memory",
		Config: backend.Config{"capacity": fmt.Sprint(srvBytes + srvBytes/2)}}}})
	if err != nil {
		return err
	}
	defer st.Teardown(context.WithoutCancel(ctx))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srvTLS, clientTLS, err := benchCert()
	if err != nil {
		return err
	}
	var ways []srvWay
	defer func() {
		for _, w := range ways {
			w.close()
		}
	}()
	for _, useTLS := range []bool{false, true} {
		opts := server.Options{Logger: quiet}
		scheme, copts := "http", []client.Option{client.WithToken("")}
		if useTLS {
			opts.TLS, scheme = srvTLS, "https"
			copts = append(copts, client.WithTLSConfig(clientTLS))
		}
		srv, err := server.New(st, opts)
		if err != nil {
			return err
		}
		addr, stop, err := srvServe(ctx, srv)
		if err != nil {
			return err
		}
		defer stop()
		c, err := client.New(scheme+"://"+addr, copts...)
		if err != nil {
			return err
		}
		ways = append(ways, &distoreWay{c: c, tls: useTLS})

		// A bare net/http handler: the same bytes, no store, no checks (the
		// ceiling of any HTTP store), served and called the same way.
		plain := &plainHTTP{}
		var tlsCfg *tls.Config
		if useTLS {
			tlsCfg = srvTLS
		}
		url, stopPlain, err := srvListen(plain, tlsCfg)
		if err != nil {
			return err
		}
		defer stopPlain()
		tr := client.NewTransport()
		tr.TLSClientConfig = clientTLS
		ways = append(ways, &plainWay{url: url, srv: plain, hc: &http.Client{Transport: tr}, tls: useTLS})
		if !useTLS {
			// The same bare handler again, on a server of its own, measured
			// next to the first: the ratio of two identical ways is the noise
			// a ratio of this run carries (an A/A test).
			twin := &plainHTTP{}
			url, stopTwin, err := srvListen(twin, nil)
			if err != nil {
				return err
			}
			defer stopTwin()
			ways = append(ways, &plainWay{url: url, srv: twin, hc: &http.Client{Transport: client.NewTransport()}, twin: true})

			// The same handler keeping each object's bytes in memory of its
			// own (a slab touched once, as the memory tier's arena is), and
			// serving them back: what any store must do at the least. The
			// handler above serves one hot buffer for every key, which stays
			// in the CPU's cache where a store's objects cannot.
			kept := &plainHTTP{slab: make([]byte, srvBytes+srvBytes/4)}
			for i := range kept.slab {
				kept.slab[i] = byte(i)
			}
			url, stopKept, err := srvListen(kept, nil)
			if err != nil {
				return err
			}
			defer stopKept()
			ways = append(ways, &plainWay{url: url, srv: kept, hc: &http.Client{Transport: client.NewTransport()}, kept: true})
		}
	}
	redisAddr, redisPid, stopRedis, rerr := startRedis(ctx)
	if rerr == nil {
		defer stopRedis()
	}

	type key struct {
		way, op string
		size    int64
	}
	rates := map[key][2]float64{} // ops/s, GB/s
	cpus := map[key]float64{}     // CPU µs per op of the best round
	rounds := map[key][]float64{} // ops/s of each round, in order
	for _, size := range srvSizes {
		clients := srvClientsFor(size)
		// Every way starts the size on new connections: the kernel sizes a
		// connection's windows from the traffic it has carried, and the
		// ways' traffic before differs (distore's also carried its cleanup),
		// which moved 1 MiB gets by up to two fifths.
		for _, w := range ways {
			w.close()
		}
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + i>>12)
		}
		// Each client's get buffer, made and written before any clock runs:
		// fresh memory page-faults on its first write, which in a phase of
		// tens of milliseconds would weigh on whichever way first got it.
		bufs := make([][]byte, clients)
		for wk := range bufs {
			bufs[wk] = touched(int(size))
		}
		// The ways take turns, srvRoundsFor(size) times, and each keeps its best
		// round: the machine is shared, and a burst of load elsewhere
		// should not decide a ratio. Every other round runs them in reverse
		// order: the way that follows another can be helped or hindered by
		// what that one left behind (at 1 MiB the way right after distore
		// ran its gets up to a fifth faster, whichever it was), and reversing
		// gives each neighbour that place equally often.
		reversed := slices.Clone(ways)
		slices.Reverse(reversed)
		for round := range srvRoundsFor(size) {
			order := ways
			if round%2 == 1 {
				order = reversed
			}
			for _, w := range order {
				n, put, get, err := srvMeasure(ctx, w, data, bufs)
				if err != nil {
					return fmt.Errorf("%s %s: %w", w.name(), sizeName(size), err)
				}
				for op, ph := range map[string]srvPhase{"put": put, "get": get} {
					k := key{w.name(), op, size}
					ops := float64(n) / ph.wall.Seconds()
					rounds[k] = append(rounds[k], ops)
					if ops > rates[k][0] {
						rates[k] = [2]float64{ops, gbps(int64(n)*size, ph.wall)}
						cpus[k] = float64(ph.cpu.Microseconds()) / float64(n)
					}
				}
				if err := w.cleanup(ctx); err != nil {
					return err
				}
			}
			if rerr == nil {
				for _, op := range []string{"set", "get"} {
					ops, cpu, err := redisBenchmark(ctx, redisAddr, redisPid, op, size, clients)
					if err != nil {
						return fmt.Errorf("redis-benchmark %s %s: %w", op, sizeName(size), err)
					}
					k := key{"redis", map[string]string{"set": "put", "get": "get"}[op], size}
					if ops > rates[k][0] {
						rates[k] = [2]float64{ops, ops * float64(size) / 1e9}
						cpus[k] = cpu
					}
				}
			}
		}
	}

	// The ratios to net/http are the median of each round's ratio: a round's
	// ways run one after the other, so they share the machine's state of the
	// moment, which the best of each taken apart does not.
	roundRatios := func(a, b key) []float64 {
		var rs []float64
		for i := range min(len(rounds[a]), len(rounds[b])) {
			rs = append(rs, ratio(rounds[a][i], rounds[b][i]))
		}
		slices.Sort(rs)
		return rs
	}
	paired := func(a, b key) float64 {
		rs := roundRatios(a, b)
		if len(rs) == 0 {
			return 0
		}
		return rs[len(rs)/2]
	}
	spread := func(a, b key) string {
		rs := roundRatios(a, b)
		if len(rs) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f–%.2f", rs[0], rs[len(rs)-1])
	}
	r.table("size", "op", "clients", "distore ops/s", "distore GB/s", "net/http GB/s", "vs net/http", "rounds", "best vs best",
		"A/A", "A/A rounds", "net/http kept GB/s", "vs net/http kept",
		"distore TLS GB/s", "net/http TLS GB/s", "TLS vs net/http TLS", "redis GB/s", "vs redis")
	for _, size := range srvSizes {
		for _, op := range []string{"put", "get"} {
			get := func(way string) [2]float64 { return rates[key{way, op, size}] }
			ds, ph, dt, pt, rd := get("distore"), get("net/http"), get("distore-tls"), get("net/http-tls"), get("redis")
			rdCell, vsRedis := "-", "-"
			if rerr == nil {
				rdCell, vsRedis = fmt.Sprintf("%.3g", rd[1]), fmt.Sprintf("%.2f", ratio(ds[0], rd[0]))
			}
			pk := get("net/http-kept")
			k := func(way string) key { return key{way, op, size} }
			r.row(sizeName(size), op, srvClientsFor(size), fmt.Sprintf("%.0f", ds[0]), ds[1], ph[1],
				fmt.Sprintf("%.2f", paired(k("distore"), k("net/http"))), spread(k("distore"), k("net/http")),
				fmt.Sprintf("%.2f", ratio(ds[0], ph[0])),
				fmt.Sprintf("%.2f", paired(k("net/http-twin"), k("net/http"))), spread(k("net/http-twin"), k("net/http")),
				pk[1], fmt.Sprintf("%.2f", paired(k("distore"), k("net/http-kept"))),
				dt[1], pt[1], fmt.Sprintf("%.2f", paired(k("distore-tls"), k("net/http-tls"))), rdCell, vsRedis)
		}
	}
	small := srvSizes[0]
	r.table("size", "op", "CPU µs/op:", "distore", "net/http", "net/http kept", "distore TLS", "net/http TLS", "redis")
	for _, op := range []string{"put", "get"} {
		c := func(way string) string { return fmt.Sprintf("%.1f", cpus[key{way, op, small}]) }
		redis := "-"
		if rerr == nil {
			redis = c("redis")
		}
		r.row(sizeName(small), op, "", c("distore"), c("net/http"), c("net/http-kept"), c("distore-tls"), c("net/http-tls"), redis)
	}
	r.note("alternating rounds (%d for %s, %d from %s up) of <= %v and <= %s of puts then the same gets, per way and size; ops/s and GB/s: the best round; vs: the median over rounds of the round's ratio (the ways of a round run back to back); rounds: the least and the most of those ratios; best vs best: the best rounds' ratio",
		srvRoundsFor(srvSizes[0]), sizeName(srvSizes[0]), srvRoundsFor(1<<20), sizeName(1<<20), srvTime, sizeName(srvBytes))
	r.note("distore: in-process server (server.Serve: net/http, the full handler chain) over a spill stack of one memory tier; Go client (one shared client, http.Transport, keep-alive)")
	r.note("net/http: a bare handler that reads the body into a buffer / writes a buffer, same client transport — the ceiling of any HTTP server; one hot buffer serves every key")
	r.note("A/A: the bare handler on a second server, run next to the first, against the first: as distore's ratio is (the median, and in rounds the least and the most of the rounds' ratios); how far it lands from 1 is the noise of this run's ratios")
	r.note("net/http kept: the same handler keeping each object's bytes in a slab of its own and serving them back — the ceiling of any HTTP store (its bytes leave the CPU's cache as a store's do)")
	r.note("TLS: the same, over TLS 1.3 with a self-signed P-256 certificate")
	if rerr != nil {
		r.note("redis: not run: %v", rerr)
	} else {
		r.note("redis: redis-server on loopback (no persistence) measured by its own redis-benchmark -c CLIENTS -d SIZE -t set|get, one key; ops/s as it reports them")
	}
	r.note("CPU µs/op: user+system time per operation in the best round; distore and net/http hold client and server in this process; redis is redis-benchmark plus redis-server (from /proc, 10 ms ticks)")
	r.note("target: distore >= 0.9x net/http at every size, put and get, TLS off")
	return nil
}

// benchCert makes a self-signed certificate for 127.0.0.1: the server's
// config and a client config that trusts it.
func benchCert() (*tls.Config, *tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "distore bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srv := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}, MinVersion: tls.VersionTLS12}
	return srv, &tls.Config{RootCAs: pool}, nil
}

// srvListen serves h with a plain net/http server (HTTPS with cfg) on a
// loopback port until the returned stop is called.
func srvListen(h http.Handler, cfg *tls.Config) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: h}
	scheme := "http"
	if cfg != nil {
		c := cfg.Clone()
		c.NextProtos = []string{"http/1.1"}
		ln, scheme = tls.NewListener(ln, c), "https"
	}
	go hs.Serve(ln)
	return scheme + "://" + ln.Addr().String(), func() { hs.Close() }, nil
}

// srvServe runs the distore server the way distore-server does (Listen,
// Serve) on a loopback port until the returned stop is called.
func srvServe(ctx context.Context, srv *server.Server) (string, func(), error) {
	ln, err := server.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln, time.Second) }()
	return ln.Addr().String(), func() { cancel(); <-done }, nil
}

// srvPhase is one phase (the puts or the gets) of a measurement: its wall
// time and the CPU time this process took.
type srvPhase struct {
	wall, cpu time.Duration
}

// selfCPU returns the CPU time (user and system) of this process so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU returns the CPU time of process pid so far, from /proc.
func procCPU(pid int) time.Duration {
	user, sys := procTicks(pid)
	return time.Duration(user+sys) * 10 * time.Millisecond
}

// procTicks returns the user and system CPU of process pid so far, in clock
// ticks (USER_HZ, 100 on Linux): /proc/PID/stat's 14th and 15th fields,
// after the parenthesized name. Zeros if it cannot be read.
func procTicks(pid int) (user, sys int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, 0
	}
	user, _ = strconv.ParseInt(f[11], 10, 64)
	sys, _ = strconv.ParseInt(f[12], 10, 64)
	return user, sys
}

// phaseStart starts timing a phase; the func it returns ends it.
func phaseStart() func() srvPhase {
	start, cpu := time.Now(), selfCPU()
	return func() srvPhase { return srvPhase{wall: time.Since(start), cpu: selfCPU() - cpu} }
}

// srvMeasure puts objects with one worker per buffer in bufs until srvTime
// or the byte budget, then gets every one back once into the worker's
// buffer; it returns how many and the phases.
func srvMeasure(ctx context.Context, w srvWay, data []byte, bufs [][]byte) (int, srvPhase, srvPhase, error) {
	size, clients := int64(len(data)), len(bufs)
	perWorker := int(max(1, srvBytes/size/int64(clients)))
	counts := make([]int, clients)
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	endPuts := phaseStart()
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
	var bad sync.Map
	endGets := phaseStart()
	for wk := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf, last := bufs[wk], len(data)-1
			for i := range counts[wk] {
				buf[last] = ^data[last] // the bytes are this get's, not an earlier one's
				got, err := w.get(ctx, wk, i, buf)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				if len(got) != len(data) || got[len(got)-1] != data[len(data)-1] {
					bad.Store(srvKey(wk, i), true)
				}
			}
		}()
	}
	wg.Wait()
	gets := endGets()
	if firstErr != nil {
		return 0, puts, gets, firstErr
	}
	nbad := 0
	bad.Range(func(any, any) bool { nbad++; return true })
	if nbad > 0 {
		return 0, puts, gets, fmt.Errorf("%d gets returned wrong bytes", nbad)
	}
	return n, puts, gets, nil
}

func srvKey(worker, i int) string { return "b" + strconv.Itoa(worker) + "-" + strconv.Itoa(i) }

// distoreWay goes through the Go client to the server.
type distoreWay struct {
	c   *client.Client
	tls bool
}

func (d *distoreWay) name() string {
	if d.tls {
		return "distore-tls"
	}
	return "distore"
}
func (d *distoreWay) close() { d.c.Close() }
func (d *distoreWay) put(ctx context.Context, worker, i int, data []byte) error {
	_, err := d.c.Put(ctx, data, client.PutOptions{ID: backend.ID(srvKey(worker, i))})
	return err
}
func (d *distoreWay) get(ctx context.Context, worker, i int, buf []byte) ([]byte, error) {
	return d.c.GetInto(ctx, backend.ID(srvKey(worker, i)), buf)
}
func (d *distoreWay) cleanup(ctx context.Context) error {
	for {
		page, err := d.c.List(ctx, backend.ListOptions{Prefix: "b", Limit: wire.MaxListLimit})
		if err != nil || len(page.Objects) == 0 {
			return err
		}
		for _, o := range page.Objects {
			if err := d.c.Delete(ctx, o.ID); err != nil {
				return err
			}
		}
	}
}

// plainHTTP is the ceiling: PUT reads the body into a buffer and keeps only
// its size; GET writes a buffer of that size. With a slab, PUT reads the body
// into the slab's next bytes and GET writes those (each key its own bytes).
type plainHTTP struct {
	mu    sync.Mutex
	sizes map[string]int64
	buf   []byte
	slab  []byte
	next  int64
	at    map[string]int64 // key -> offset in slab
}

var plainBufs = sync.Pool{New: func() any { return new([]byte) }}

func (p *plainHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Path
	if p.slab != nil {
		p.serveKept(w, r, key)
		return
	}
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

func (p *plainHTTP) serveKept(w http.ResponseWriter, r *http.Request, key string) {
	n := r.ContentLength
	switch r.Method {
	case http.MethodPut:
		p.mu.Lock()
		off := p.next
		if off+n > int64(len(p.slab)) {
			p.mu.Unlock()
			http.Error(w, "slab full", http.StatusInsufficientStorage)
			return
		}
		p.next += n
		if p.at == nil {
			p.at, p.sizes = map[string]int64{}, map[string]int64{}
		}
		p.mu.Unlock()
		if _, err := io.ReadFull(r.Body, p.slab[off:off+n]); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		p.mu.Lock()
		p.at[key], p.sizes[key] = off, n
		p.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	case http.MethodGet:
		p.mu.Lock()
		off, ok := p.at[key]
		n := p.sizes[key]
		p.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.Write(p.slab[off : off+n])
	}
}

type plainWay struct {
	url  string
	srv  *plainHTTP
	hc   *http.Client
	tls  bool
	kept bool // srv keeps each object's bytes (a slab)
	twin bool // a second bare handler: the A/A control
}

func (p *plainWay) name() string {
	if p.kept {
		return "net/http-kept"
	}
	if p.twin {
		return "net/http-twin"
	}
	if p.tls {
		return "net/http-tls"
	}
	return "net/http"
}
func (p *plainWay) close() { p.hc.CloseIdleConnections() }
func (p *plainWay) cleanup(context.Context) error {
	p.srv.mu.Lock()
	p.srv.sizes, p.srv.at, p.srv.next = nil, nil, 0
	p.srv.mu.Unlock()
	return nil
}
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

// startRedis runs redis-server on a free loopback port with no persistence.
func startRedis(ctx context.Context) (addr string, pid int, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", 0, nil, fmt.Errorf("redis-server not installed (apt-get install -y redis-server)")
	}
	if _, err := exec.LookPath("redis-benchmark"); err != nil {
		return "", 0, nil, fmt.Errorf("redis-benchmark not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "distore-bench-redis-")
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", dir, "--protected-mode", "yes", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", 0, nil, err
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 5*time.Second {
			stop()
			return "", 0, nil, fmt.Errorf("redis-server did not answer on %s", addr)
		}
	}
	return addr, cmd.Process.Pid, stop, nil
}

// redisBenchmark runs redis-benchmark for one command (set or get) and
// size, and returns the ops/s it reports and the CPU µs per op of it and
// redis-server together.
func redisBenchmark(ctx context.Context, addr string, serverPid int, op string, size int64, clients int) (float64, float64, error) {
	host, port, _ := net.SplitHostPort(addr)
	n := max(int64(8*clients), min(20000, int64(srvBytes)/size))
	cmd := exec.CommandContext(ctx, "redis-benchmark", "-h", host, "-p", port, "-c", strconv.Itoa(clients),
		"-n", strconv.FormatInt(n, 10), "-d", strconv.FormatInt(size, 10), "-t", op, "--csv")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	before := procCPU(serverPid)
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%w: %s", err, out.String())
	}
	serverCPU := procCPU(serverPid) - before
	benchCPU := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	// The CSV: a header with "test" and "rps", then a row per test.
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(rows) < 2 {
		return 0, 0, fmt.Errorf("redis-benchmark output %q: %v", out.String(), err)
	}
	col := -1
	for i, h := range rows[0] {
		if h == "rps" {
			col = i
		}
	}
	if col < 0 || len(rows[1]) <= col {
		return 0, 0, fmt.Errorf("redis-benchmark output without rps: %q", out.String())
	}
	ops, err := strconv.ParseFloat(rows[1][col], 64)
	if err != nil {
		return 0, 0, fmt.Errorf("redis-benchmark rps %q: %w", rows[1][col], err)
	}
	return ops, float64((serverCPU + benchCPU).Microseconds()) / float64(n), nil
}
