// Package etcdtest starts a real etcd for tests: the Debian etcd-server
// binary (/usr/bin/etcd, or $DISTORE_ETCD) on free loopback ports with a
// temporary data dir. Without the binary a test skips, or fails when CI=true.
package etcdtest

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"distore/internal/testutil"
)

// Etcd is a running (or stopped) etcd process. Stop and Start keep its data
// dir and ports, so a test can take etcd away for a while and bring it back.
type Etcd struct {
	t       testing.TB
	bin     string
	dir     string
	client  string // host:port
	peer    string
	cmd     *exec.Cmd
	exited  chan struct{}
	Log     *testutil.SyncBuffer
	started bool
}

// Binary returns the etcd binary's path, or "" if there is none.
func Binary() string {
	if b := os.Getenv("DISTORE_ETCD"); b != "" {
		return b
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd"
	}
	return ""
}

// FreePort returns a loopback address with a port nobody listens on now.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start starts etcd and waits until it answers; Stop is registered as cleanup.
func Start(t testing.TB) *Etcd {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("etcd not found (install Debian's etcd-server, or set DISTORE_ETCD)")
		}
		t.Skip("etcd not found (install Debian's etcd-server, or set DISTORE_ETCD)")
	}
	e := &Etcd{t: t, bin: bin, dir: t.TempDir(), client: FreePort(t), peer: FreePort(t), Log: &testutil.SyncBuffer{}}
	e.Start()
	t.Cleanup(e.Stop)
	return e
}

// Endpoint is the client URL, http://127.0.0.1:port.
func (e *Etcd) Endpoint() string { return "http://" + e.client }

// Start (re)starts a stopped etcd on its data dir and ports.
func (e *Etcd) Start() {
	e.t.Helper()
	if e.cmd != nil {
		return
	}
	cu, pu := "http://"+e.client, "http://"+e.peer
	args := []string{"--name", "n1", "--data-dir", filepath.Join(e.dir, "data"),
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
		"--initial-cluster", "n1=" + pu, "--initial-cluster-state", "new", "--log-level", "warn"}
	if e.started {
		args = args[:len(args)-4] // the cluster exists in the data dir
		args = append(args, "--log-level", "warn")
	}
	e.cmd = exec.Command(e.bin, args...)
	e.cmd.Stdout, e.cmd.Stderr = e.Log, e.Log
	if err := e.cmd.Start(); err != nil {
		e.t.Fatalf("starting etcd: %v", err)
	}
	e.started = true
	e.exited = make(chan struct{})
	cmd, exited := e.cmd, e.exited
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			e.t.Fatalf("etcd exited at start:\n%s", e.Log)
		default:
		}
		if healthy(e.client) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("etcd did not answer in 20 s:\n%s", e.Log)
}

// healthy asks etcd's /health endpoint.
func healthy(addr string) bool {
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + addr + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop stops etcd (SIGTERM, then SIGKILL after 10 s). Start brings it back.
func (e *Etcd) Stop() {
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(os.Interrupt)
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		e.cmd.Process.Kill()
		<-e.exited
	}
	e.cmd = nil
}
