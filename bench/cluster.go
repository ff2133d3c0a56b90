package main

// The cluster suite: servers in network namespaces the benchmark makes itself,
// joined through a bridge by veth pairs rate-limited with tc tbf to 1 Gbit/s
// each way, with addresses only inside those namespaces. Where namespaces
// cannot be made (not root, no ip/tc) it runs on loopback and says so.
//
// It compares, in one run: (a) raw TCP over one link, the limit; (b) a peer
// fetch of clusterSize; (c) spreading clusterSize to 2, 4 and 8 servers as a
// pipelined chain, against one transfer; beside it a DI-store-style binomial
// store-and-forward spread.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"distore/backend"
	"distore/client"
	"distore/servercmd"
)

var (
	clusterSize   = flag.Int64("cluster-size", 256<<20, "cluster suite: object size in bytes")
	clusterRate   = flag.String("cluster-rate", "1gbit", "cluster suite: tc tbf rate of each link")
	clusterInner  = flag.String("cluster-inner", "", "internal: run the cluster suite inside namespaces with this prefix")
	rawServe      = flag.String("rawtcp-serve", "", "internal: serve -rawtcp-bytes to one TCP connection on this address")
	rawGet        = flag.String("rawtcp-get", "", "internal: read -rawtcp-bytes from this address and print the seconds")
	rawBytes      = flag.Int64("rawtcp-bytes", 0, "internal: bytes of a raw TCP transfer")
	clusterServer = 9 // the origin and eight more
)

func init() {
	register("cluster", "peer fetch and group spreads between servers on 1 Gbit/s links (network namespaces) vs raw TCP", runCluster)
}

// rawTCPHelper runs the internal raw TCP modes; it reports whether it ran one.
func rawTCPHelper() bool {
	switch {
	case *rawServe != "":
		ln, err := net.Listen("tcp", *rawServe)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("ready")
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		buf := make([]byte, 1<<20)
		for left := *rawBytes; left > 0; left -= int64(len(buf)) {
			if _, err := c.Write(buf[:min(int64(len(buf)), left)]); err != nil {
				os.Exit(1)
			}
		}
		c.Close()
		return true
	case *rawGet != "":
		start := time.Now()
		c, err := net.Dial("tcp", *rawGet)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		n, _ := io.Copy(io.Discard, c)
		if n != *rawBytes {
			fmt.Fprintf(os.Stderr, "raw tcp: %d of %d bytes\n", n, *rawBytes)
			os.Exit(1)
		}
		fmt.Println(time.Since(start).Seconds())
		return true
	}
	return false
}

// topology says where server k listens and how to run a command beside it.
type topology struct {
	prefix string // namespaces prefix; "" on loopback
	hubIP  string
}

func (t topology) addr(k int) string {
	if t.prefix == "" {
		return "127.0.0.1"
	}
	return fmt.Sprintf("10.213.0.%d", 10+k)
}

func (t topology) command(ctx context.Context, k int, bin string, args ...string) *exec.Cmd {
	if t.prefix == "" {
		return exec.CommandContext(ctx, bin, args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", fmt.Sprintf("%s%d", t.prefix, k), bin}, args...)...)
}

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// makeNamespaces builds the hub (a bridge) and clusterServer server
// namespaces, each linked to the hub by a veth pair limited both ways.
func makeNamespaces(prefix, rate string) (func(), error) {
	hub := prefix + "h"
	var made []string
	cleanup := func() {
		for _, ns := range made {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	}
	tbf := func(ns, dev string) error {
		return sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "1mb", "latency", "20ms")
	}
	steps := func() error {
		if err := sh("ip", "netns", "add", hub); err != nil {
			return err
		}
		made = append(made, hub)
		for _, c := range [][]string{{"ip", "link", "set", "lo", "up"}, {"ip", "link", "add", "br0", "type", "bridge"},
			{"ip", "addr", "add", "10.213.0.1/24", "dev", "br0"}, {"ip", "link", "set", "br0", "up"}} {
			if err := sh(append([]string{"ip", "netns", "exec", hub}, c...)...); err != nil {
				return err
			}
		}
		for k := range clusterServer {
			ns := fmt.Sprintf("%s%d", prefix, k)
			a, b := fmt.Sprintf("%s%da", prefix, k), fmt.Sprintf("%s%db", prefix, k)
			if err := sh("ip", "netns", "add", ns); err != nil {
				return err
			}
			made = append(made, ns)
			for _, c := range [][]string{
				{"ip", "link", "add", a, "type", "veth", "peer", "name", b},
				{"ip", "link", "set", a, "netns", ns}, {"ip", "link", "set", b, "netns", hub},
				{"ip", "netns", "exec", hub, "ip", "link", "set", b, "master", "br0", "up"},
				{"ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"},
				{"ip", "netns", "exec", ns, "ip", "addr", "add", fmt.Sprintf("10.213.0.%d/24", 10+k), "dev", a},
				{"ip", "netns", "exec", ns, "ip", "link", "set", a, "up"},
			} {
				if err := sh(c...); err != nil {
					return err
				}
			}
			if err := tbf(ns, a); err != nil {
				return err
			}
			if err := tbf(hub, b); err != nil {
				return err
			}
		}
		return nil
	}
	if err := steps(); err != nil {
		cleanup()
		return nil, err
	}
	return cleanup, nil
}

func runCluster(ctx context.Context, r *report) error {
	if *clusterInner != "" {
		return clusterBench(ctx, r, topology{prefix: *clusterInner, hubIP: "10.213.0.1"})
	}
	prefix := fmt.Sprintf("dsb%d-", os.Getpid()%10000)
	cleanup, err := makeNamespaces(prefix, *clusterRate)
	if err != nil {
		r.note("NOTE: network namespaces could not be made (%v); running on loopback, links not rate-limited", err)
		return clusterBench(ctx, r, topology{hubIP: "127.0.0.1"})
	}
	defer cleanup()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The suite itself runs in the hub namespace, beside the bridge.
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", prefix+"h", self, "-suite", "cluster", "-cluster-inner", prefix,
		"-cluster-size", strconv.FormatInt(*clusterSize, 10), "-cluster-rate", *clusterRate)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Interrupted, the inner run stops its servers and removes their arenas.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	r.note("servers in %d network namespaces (%s*), links %s each way (tc tbf)", clusterServer, prefix, *clusterRate)
	return cmd.Run()
}

func clusterBench(ctx context.Context, r *report, topo topology) error {
	size := *clusterSize
	dir, err := os.MkdirTemp("", "distore-bench-cluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "distore-server")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "distore/cmd/distore-server").CombinedOutput(); err != nil {
		return fmt.Errorf("building distore-server: %v: %s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	// (a) raw TCP from server 0's namespace to server 1's.
	raw, err := rawTCP(ctx, topo, self, size)
	if err != nil {
		return fmt.Errorf("raw tcp: %w", err)
	}

	// etcd beside the bench, then the servers.
	etcdBin := "/usr/bin/etcd"
	if _, err := os.Stat(etcdBin); err != nil {
		return fmt.Errorf("%w: no etcd (%s)", errSkip, etcdBin)
	}
	cu, pu := "http://"+topo.hubIP+":23791", "http://"+topo.hubIP+":23801"
	etcd := exec.CommandContext(ctx, etcdBin, "--name", "b", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", cu, "--advertise-client-urls", cu, "--listen-peer-urls", pu,
		"--initial-advertise-peer-urls", pu, "--initial-cluster", "b="+pu, "--log-level", "error")
	if err := etcd.Start(); err != nil {
		return err
	}
	defer func() { etcd.Process.Kill(); etcd.Wait() }()
	var servers []*exec.Cmd
	defer func() {
		for k, s := range servers {
			s.Process.Kill()
			s.Wait()
			// A server keeps its arena in /dev/shm for a restart: 9 × 576 MiB.
			os.Remove(servercmd.ArenaPath(filepath.Join(dir, fmt.Sprint(k))))
		}
	}()
	// Servers beyond loopback need tokens; peers send DISTORE_TOKEN.
	const token = "bench-cluster-secret"
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("bench admin "+token+"\n"), 0o600); err != nil {
		return err
	}
	var clients []*client.Client
	for k := range clusterServer {
		port := 7070
		if topo.prefix == "" {
			port = 17070 + k
		}
		addr := fmt.Sprintf("%s:%d", topo.addr(k), port)
		capacity := size*2 + 64<<20
		s := topo.command(ctx, k, bin, "--listen", addr, "--data-dir", filepath.Join(dir, fmt.Sprint(k)), "--levels", "memory",
			"--memory-capacity", strconv.FormatInt(capacity, 10), "--etcd", cu, "--node-id", fmt.Sprintf("s%d", k), "--log-level", "error",
			"--token-file", tokens)
		s.Env = append(os.Environ(), client.TokenEnv+"="+token)
		s.Stderr = os.Stderr
		if err := s.Start(); err != nil {
			return err
		}
		servers = append(servers, s)
		c, err := client.New("http://"+addr, client.WithToken(token))
		if err != nil {
			return err
		}
		clients = append(clients, c)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := clients[0].Nodes(ctx)
		if err == nil && len(n.Members) == clusterServer {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the %d servers did not all join in 60 s (last: %v)", clusterServer, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	put := func(id backend.ID) error {
		src := io.LimitReader(mrand.NewChaCha8([32]byte{byte(len(id))}), size)
		_, err := clients[0].PutReader(ctx, src, size, client.PutOptions{ID: id})
		return err
	}

	pids := make([]int, len(servers))
	for k, s := range servers {
		pids[k] = s.Process.Pid // ip netns exec execs the server: the same process
	}
	r.table("what", "size", "seconds", "GB/s", "x one transfer", "CPU s/GiB/server", "origin CPU s/GiB", "servers' cores", "machine busy")
	r.row("(a) raw TCP, one link", sizeName(size), raw.Seconds(), gbps(size, raw), 1.0, "-", "-", "-", "-")

	// row times one distribution and the CPU the receivers (servers 1..n)
	// and the origin spent on it, per GiB each received or sent, and how busy
	// all the machine's cores were meanwhile (softirq work on the links
	// included): a spread that keeps the machine near 100% is CPU-bound.
	row := func(what string, n int, run func() error) (float64, error) {
		before := snapCPU(pids)
		start := time.Now()
		if err := run(); err != nil {
			return 0, err
		}
		el := time.Since(start)
		after := snapCPU(pids)
		gib := float64(size) / (1 << 30)
		var recv, recvSys, all float64
		for k := range pids {
			d := after.procs[k] - before.procs[k]
			all += d
			if k >= 1 && k <= n {
				recv += d
				recvSys += after.sys[k] - before.sys[k]
			}
		}
		busy := (after.busy - before.busy) / max(after.total-before.total, 1)
		r.row(what, sizeName(size), el.Seconds(), gbps(size, el), ratio(el.Seconds(), raw.Seconds()),
			fmt.Sprintf("%.2f (%.0f%% sys)", recv/float64(n)/gib, 100*recvSys/max(recv, 0.01)), fmt.Sprintf("%.2f", (after.procs[0]-before.procs[0])/gib),
			fmt.Sprintf("%.2f", all/el.Seconds()), fmt.Sprintf("%.0f%%", 100*busy))
		return el.Seconds(), nil
	}

	// (b) peer fetch: server 1 prefetches what server 0 holds.
	if err := put("fetch"); err != nil {
		return err
	}
	if _, err := row("(b) peer fetch", 1, func() error { return clients[1].Prefetch(ctx, "fetch") }); err != nil {
		return err
	}
	if err := clients[0].Delete(ctx, "fetch"); err != nil {
		return err
	}

	// (c) spreads to 2, 4 and 8: the pipelined chain, then beside it the
	// binomial store-and-forward spread (DI-store's gossip tree: each round
	// every holder sends the whole object to one more server).
	for _, n := range []int{2, 4, 8} {
		id := backend.ID(fmt.Sprintf("chain-%d", n))
		if err := put(id); err != nil {
			return err
		}
		var targets []string
		for k := 1; k <= n; k++ {
			targets = append(targets, fmt.Sprintf("s%d", k))
		}
		if _, err := row(fmt.Sprintf("(c) chain spread to %d", n), n, func() error {
			if _, err := clients[0].SpreadToNodes(ctx, id, targets); err != nil {
				return err
			}
			s, err := waitSpread(ctx, clients[0], id)
			if err == nil && len(s.Reached) != n {
				err = fmt.Errorf("chain to %d reached only %v (failed %v)", n, s.Reached, s.Failed)
			}
			return err
		}); err != nil {
			return err
		}
		if err := clients[0].Delete(ctx, id); err != nil {
			return err
		}
		id = backend.ID(fmt.Sprintf("binomial-%d", n))
		if err := put(id); err != nil {
			return err
		}
		if _, err := row(fmt.Sprintf("    binomial store-and-forward to %d", n), n, func() error { return binomial(ctx, clients, id, n) }); err != nil {
			return err
		}
		if err := clients[0].Delete(ctx, id); err != nil {
			return err
		}
	}
	r.note("goals: (b) GB/s >= 0.9x (a); chain to 8 <= 1.25x one transfer (4 MiB chunks: 1.09x in theory); binomial about 3x at 8")
	r.note("CPU s/GiB/server: user+system CPU of each receiving server process per GiB it received (the kernel's share); servers' cores: all")
	r.note("server processes' CPU seconds per second; machine busy: all %d cores, other work and softirq included", runtime.NumCPU())
	return nil
}

// binomial spreads id from server 0 to servers 1..n store-and-forward: each
// round every holder sends the whole object to one more server, so n servers
// take ceil(log2(n+1)) transfer times.
func binomial(ctx context.Context, clients []*client.Client, id backend.ID, n int) error {
	holders := []int{0}
	next := 1
	for next <= n {
		type job struct{ from, to int }
		var jobs []job
		for _, h := range holders {
			if next > n {
				break
			}
			jobs = append(jobs, job{h, next})
			next++
		}
		errs := make(chan error, len(jobs))
		for _, j := range jobs {
			go func() {
				if _, err := clients[j.from].SpreadToNodes(ctx, id, []string{fmt.Sprintf("s%d", j.to)}); err != nil {
					errs <- err
					return
				}
				_, err := waitSpread(ctx, clients[j.from], id)
				errs <- err
			}()
		}
		for range jobs {
			if err := <-errs; err != nil {
				return err
			}
		}
		for _, j := range jobs {
			holders = append(holders, j.to)
		}
	}
	return nil
}

// cpuSnap is the CPU seconds of some processes and the machine's busy and
// total jiffies (/proc/stat's first line) at one moment.
type cpuSnap struct {
	procs, sys  []float64 // user+system, system
	busy, total float64
}

func snapCPU(pids []int) cpuSnap {
	var s cpuSnap
	for _, pid := range pids {
		s.procs = append(s.procs, procCPU(pid).Seconds())
		s.sys = append(s.sys, procSysCPU(pid))
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			x, _ := strconv.ParseFloat(v, 64)
			if i >= 8 { // guest time is counted in user already
				break
			}
			s.total += x
			if i != 3 && i != 4 { // idle, iowait
				s.busy += x
			}
		}
	}
	return s
}

// procSysCPU is the system (kernel) CPU seconds of process pid so far.
func procSysCPU(pid int) float64 {
	_, sys := procTicks(pid)
	return float64(sys) / 100 // USER_HZ
}

func waitSpread(ctx context.Context, c *client.Client, id backend.ID) (client.Spread, error) {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		s, err := c.SpreadStatus(ctx, id)
		if err != nil {
			return s, err
		}
		if s.Done {
			if s.Error != "" {
				return s, errors.New(s.Error)
			}
			return s, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return client.Spread{}, fmt.Errorf("spread of %s not done in 10 minutes", id)
}

// rawTCP times size bytes over plain TCP from server 0's place to server 1's.
func rawTCP(ctx context.Context, topo topology, self string, size int64) (time.Duration, error) {
	addr := topo.addr(0) + ":23999"
	srv := topo.command(ctx, 0, self, "-rawtcp-serve", addr, "-rawtcp-bytes", strconv.FormatInt(size, 10))
	out, err := srv.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer srv.Wait()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil {
		srv.Process.Kill()
		return 0, fmt.Errorf("raw tcp server did not start: %v", err)
	}
	res, err := topo.command(ctx, 1, self, "-rawtcp-get", addr, "-rawtcp-bytes", strconv.FormatInt(size, 10)).Output()
	if err != nil {
		srv.Process.Kill()
		return 0, err
	}
	s, err := strconv.ParseFloat(strings.TrimSpace(string(res)), 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(s * float64(time.Second)), nil
}
