package cluster_test

// These tests run real distore-server processes against a real etcd (Debian's
// etcd-server, started by internal/etcdtest).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"distore/backend"
	"distore/client"
	"distore/internal/etcdtest"
	"distore/internal/testutil"
	"distore/servercmd"
)

var serverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "distore-cluster-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBin = filepath.Join(dir, "distore-server")
	// A plain build: the servers are many and the machine is shared; the race
	// detector runs on this package's own code.
	if err := testutil.BuildProgram(serverBin, "distore/cmd/distore-server"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testTTL is the lease TTL of the test servers.
const testTTL = 2 * time.Second

type proc struct {
	t      *testing.T
	name   string
	dir    string
	args   []string
	cmd    *exec.Cmd
	addr   string
	url    string
	log    *testutil.SyncBuffer
	exited chan struct{}
}

var addrRE = regexp.MustCompile(`msg="distore-server listening" addr=(\S+)`)

// startNode runs a server named name in dir joined to etcd.
func startNode(t *testing.T, e *etcdtest.Etcd, name, dir string, extra ...string) *proc {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	args := append([]string{"--listen", "127.0.0.1:0", "--data-dir", dir, "--etcd", e.Endpoint(), "--node-id", name,
		"--lease-ttl", testTTL.String(), "--memory-capacity", "64MiB"}, extra...)
	p := &proc{t: t, name: name, dir: dir, args: args}
	// The server keeps its arena in /dev/shm at stop (for restarts): remove it
	// after the test, once the process is gone (cleanups run last-in first).
	t.Cleanup(func() { os.Remove(servercmd.ArenaPath(dir)) })
	p.start()
	t.Cleanup(p.stop)
	t.Cleanup(func() { // runs after the stop: the whole log
		if t.Failed() {
			t.Logf("%s's log:\n%s", p.name, p.log)
		}
	})
	return p
}

func (p *proc) start() {
	t := p.t
	t.Helper()
	log := &testutil.SyncBuffer{}
	p.log = log
	p.exited = make(chan struct{})
	cmd := exec.Command(serverBin, p.args...)
	p.cmd = cmd
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			log.Write([]byte(sc.Text() + "\n"))
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	exited := p.exited
	go func() { cmd.Wait(); pw.Close(); close(exited) }()
	select {
	case p.addr = <-addrc:
	case <-exited:
		t.Fatalf("%s exited at start:\n%s", p.name, p.log)
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("%s did not start in 30 s:\n%s", p.name, p.log)
	}
	p.url = "http://" + p.addr
}

// stop stops the server gracefully (SIGTERM), SIGKILL after 15 s.
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

func (p *proc) client() *client.Client {
	c, err := client.New(p.url)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(c.Close)
	return c
}

// metric returns the sum of a metric's samples whose labels include want.
func (p *proc) metric(name string, want ...string) float64 {
	p.t.Helper()
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	f := fams[name]
	if f == nil {
		return 0
	}
	sum := 0.0
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			ok = ok && labels[want[i]] == want[i+1]
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func (p *proc) memberIDs() []string {
	n, err := p.client().Nodes(context.Background())
	if err != nil {
		return nil
	}
	var ids []string
	for _, m := range n.Members {
		ids = append(ids, m.ID)
	}
	return ids
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

func randBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// startCluster starts etcd and n servers n1..nn that all see each other.
func startCluster(t *testing.T, n int, extra ...string) (*etcdtest.Etcd, []*proc) {
	t.Helper()
	e := etcdtest.Start(t)
	var ps []*proc
	for i := 1; i <= n; i++ {
		ps = append(ps, startNode(t, e, fmt.Sprintf("n%d", i), "", extra...))
	}
	for _, p := range ps {
		eventually(t, 10*time.Second, p.name+" sees every server", func() bool { return len(p.memberIDs()) == n })
	}
	return e, ps
}

func TestPutHereGetThere(t *testing.T) {
	ctx := context.Background()
	_, ps := startCluster(t, 3)
	a, b, c := ps[0].client(), ps[1].client(), ps[2].client()
	data := randBytes(t, 3<<20+17)
	if _, err := a.Put(ctx, data, client.PutOptions{ID: "obj-1", Importance: 7}); err != nil {
		t.Fatal(err)
	}
	for i, cl := range []*client.Client{b, c} {
		got, err := cl.Get(ctx, "obj-1")
		if err != nil {
			t.Fatalf("get on %s: %v", ps[i+1].name, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("get on %s: %d bytes, not the %d put on n1", ps[i+1].name, len(got), len(data))
		}
	}
	if got := ps[1].metric("distore_cluster_transfers_started_total"); got != 1 {
		t.Fatalf("n2 started %v transfers for one get, want 1", got)
	}
	// The second get on n2 is local: no new transfer, no lookup.
	lookups := ps[1].metric("distore_cluster_lookups_total")
	if got, err := b.Get(ctx, "obj-1"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("second get on n2: %v", err)
	}
	if got := ps[1].metric("distore_cluster_transfers_started_total"); got != 1 {
		t.Fatalf("second get on n2 started a transfer (%v in all)", got)
	}
	if got := ps[1].metric("distore_cluster_lookups_total"); got != lookups {
		t.Fatalf("second get on n2 looked up the object (%v lookups, %v before)", got, lookups)
	}
	// The copy is an ordinary local object that keeps its importance.
	info, err := b.Info(ctx, "obj-1")
	if err != nil || info.Importance != 7 || info.Checksum != backend.Checksum(data) {
		t.Fatalf("n2's copy: %+v, %v", info, err)
	}
	// A get costs one lookup at the home (HEAD then GET through the server included).
	l0 := ps[2].metric("distore_cluster_lookups_total", "kind", "home") + ps[2].metric("distore_cluster_lookups_total", "kind", "local")
	if _, err := a.Put(ctx, data[:1000], client.PutOptions{ID: "obj-2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "obj-2"); err != nil {
		t.Fatal(err)
	}
	if l := ps[2].metric("distore_cluster_lookups_total", "kind", "home") + ps[2].metric("distore_cluster_lookups_total", "kind", "local"); l-l0 != 1 {
		t.Fatalf("a get on n3 made %v lookups, want 1", l-l0)
	}

	// Ten concurrent gets of one object on n2: one transfer.
	big := randBytes(t, 8<<20)
	if _, err := a.Put(ctx, big, client.PutOptions{ID: "obj-10"}); err != nil {
		t.Fatal(err)
	}
	before := ps[1].metric("distore_cluster_transfers_started_total")
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := b.Get(ctx, "obj-10")
			if err == nil && !bytes.Equal(got, big) {
				err = errors.New("bytes differ")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d := ps[1].metric("distore_cluster_transfers_started_total") - before; d != 1 {
		t.Fatalf("ten concurrent gets on n2 made %v transfers, want 1", d)
	}
	if in := ps[1].metric("distore_cluster_peer_bytes_total", "direction", "in"); in < float64(len(big)+len(data)) {
		t.Fatalf("n2 received %v peer bytes, less than it fetched", in)
	}

	// Delete on n3 removes every copy.
	if err := c.Delete(ctx, "obj-1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if _, err := p.client().Info(ctx, "obj-1"); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("after a delete, info on %s: %v", p.name, err)
		}
	}
	// A pinned copy anywhere makes a delete 409, naming where.
	if err := b.Pin(ctx, "obj-10"); err != nil {
		t.Fatal(err)
	}
	err = a.Delete(ctx, "obj-10")
	if !errors.Is(err, backend.ErrPinned) || !strings.Contains(err.Error(), "n2") {
		t.Fatalf("delete of an object pinned on n2: %v", err)
	}
	if _, err := a.Info(ctx, "obj-10"); err != nil {
		t.Fatalf("a refused delete removed n1's copy: %v", err)
	}
}

func TestUniqueIDs(t *testing.T) {
	ctx := context.Background()
	_, ps := startCluster(t, 3)
	a, b, c := ps[0].client(), ps[1].client(), ps[2].client()
	for i := range 20 {
		id := backend.ID(fmt.Sprintf("same-%d", i))
		da, db := randBytes(t, 4096), randBytes(t, 4096)
		var wg sync.WaitGroup
		var ea, eb error
		wg.Add(2)
		go func() { defer wg.Done(); _, ea = a.Put(ctx, da, client.PutOptions{ID: id}) }()
		go func() { defer wg.Done(); _, eb = b.Put(ctx, db, client.PutOptions{ID: id}) }()
		wg.Wait()
		if (ea == nil) == (eb == nil) {
			t.Fatalf("%s put on n1 and n2 at once: %v and %v; want exactly one to succeed", id, ea, eb)
		}
		winner, loserErr := da, eb
		if ea != nil {
			winner, loserErr = db, ea
		}
		if !errors.Is(loserErr, backend.ErrExists) {
			t.Fatalf("%s: the losing put: %v, want exists", id, loserErr)
		}
		if got, err := c.Get(ctx, id); err != nil || !bytes.Equal(got, winner) {
			t.Fatalf("%s on n3: %v (same bytes as the winner: %v)", id, err, bytes.Equal(got, winner))
		}
	}
}

func TestKilledServer(t *testing.T) {
	ctx := context.Background()
	_, ps := startCluster(t, 3)
	a, b, c := ps[0].client(), ps[1].client(), ps[2].client()
	shared, only := randBytes(t, 100000), randBytes(t, 100000)
	if _, err := c.Put(ctx, shared, client.PutOptions{ID: "shared"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "shared"); err != nil { // a copy on n1
		t.Fatal(err)
	}
	var onlyIDs []backend.ID
	for i := range 10 {
		id := backend.ID(fmt.Sprintf("only-%d", i))
		onlyIDs = append(onlyIDs, id)
		if _, err := c.Put(ctx, only, client.PutOptions{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	ps[2].kill()
	took := eventually(t, testTTL+3*time.Second, "n1 and n2 stop listing the killed n3", func() bool {
		return !slices.Contains(ps[0].memberIDs(), "n3") && !slices.Contains(ps[1].memberIDs(), "n3")
	})
	t.Logf("the killed server was dropped after %v (TTL %v)", took.Round(10*time.Millisecond), testTTL)
	if got, err := b.Get(ctx, "shared"); err != nil || !bytes.Equal(got, shared) {
		t.Fatalf("an object with a copy on n1, got on n2 after n3 died: %v", err)
	}
	for _, id := range onlyIDs {
		start := time.Now()
		_, err := b.Get(ctx, id)
		if !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("%s held only by the dead n3: %v, want not found", id, err)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Fatalf("%s: not found only after %v", id, el)
		}
	}
}

// etcdOutage is how long etcd is away in TestEtcdOutage (the 30 s:
// fifteen lease TTLs, so every lease taken before has expired).
const etcdOutage = 30 * time.Second

// etcdRecovery bounds how long after etcd answers again every server is
// registered and healthy (the tracker retries with a backoff capped at TTL/2).
const etcdRecovery = testTTL + 5*time.Second

// TestEtcdOutage mostly waits, so it runs in parallel with the other slow
// tests (t.Parallel: after the package's sequential tests, beside them).
func TestEtcdOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, ps := startCluster(t, 2)
	a, b := ps[0].client(), ps[1].client()
	if _, err := a.Put(ctx, []byte("before"), client.PutOptions{ID: "before"}); err != nil {
		t.Fatal(err)
	}
	e.Stop()
	stopped := time.Now()
	// Each server notices on its own, when its etcd client gives the lease
	// up (no keepalive answered for the TTL, checked every second): wait
	// for both, then require it all along. The bound is generous: under a
	// loaded CI machine's race-detector runs this once took over 7 s (the
	// servers' logs are printed when the test fails).
	eventually(t, testTTL+20*time.Second, "n1 and n2 say they have no cluster", func() bool {
		for _, c := range []*client.Client{a, b} {
			if n, err := c.Nodes(ctx); err != nil || n.Healthy || !strings.Contains(n.Error, "etcd") {
				return false
			}
		}
		return true
	})
	t.Logf("both noticed etcd was gone %v after it stopped", time.Since(stopped).Round(10*time.Millisecond))
	deadline := stopped.Add(etcdOutage)
	puts := 0
	for time.Now().Before(deadline) {
		// Local puts and gets keep working all along.
		id := backend.ID(fmt.Sprintf("during-%d", puts))
		if _, err := a.Put(ctx, []byte("local"), client.PutOptions{ID: id}); err != nil {
			t.Fatalf("a put %v after etcd stopped: %v", time.Since(stopped).Round(time.Second), err)
		}
		if got, err := a.Get(ctx, id); err != nil || string(got) != "local" {
			t.Fatalf("a get %v after etcd stopped: %v", time.Since(stopped).Round(time.Second), err)
		}
		if got, err := a.Get(ctx, "before"); err != nil || string(got) != "before" {
			t.Fatalf("a get of an object put before the outage, %v after etcd stopped: %v", time.Since(stopped).Round(time.Second), err)
		}
		puts++
		// Membership changes fail with an error naming etcd, quickly.
		for _, op := range []struct {
			name string
			f    func(context.Context, string) error
		}{{"join", b.JoinGroup}, {"leave", b.LeaveGroup}} {
			start := time.Now()
			err := op.f(ctx, "g")
			if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), "etcd") {
				t.Fatalf("%s group with etcd down: %v; want unavailable, naming etcd", op.name, err)
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Fatalf("%s group with etcd down failed only after %v", op.name, el)
			}
		}
		n, err := b.Nodes(ctx)
		if err != nil || n.Healthy || !strings.Contains(n.Error, "etcd") {
			t.Fatalf("n2's nodes with etcd down: %+v, %v; want unhealthy, naming etcd", n, err)
		}
		time.Sleep(time.Second)
	}
	t.Logf("etcd away for %v: %d local puts and gets", time.Since(stopped).Round(time.Second), puts)
	e.Start()
	took := eventually(t, etcdRecovery, "both registered and healthy again", func() bool {
		na, err1 := a.Nodes(ctx)
		nb, err2 := b.Nodes(ctx)
		return err1 == nil && err2 == nil && na.Healthy && nb.Healthy && len(na.Members) == 2 && len(nb.Members) == 2
	})
	t.Logf("membership recovered %v after etcd answered again", took.Round(10*time.Millisecond))
	if err := b.JoinGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "n1 sees n2 in g", func() bool {
		g, err := a.Groups(ctx)
		return err == nil && slices.Equal(g["g"], []string{"n2"})
	})
	for i := range puts {
		id := backend.ID(fmt.Sprintf("during-%d", i))
		if got, err := b.Get(ctx, id); err != nil || string(got) != "local" {
			t.Fatalf("%s, put on n1 during the outage, got on n2 after: %v", id, err)
		}
	}
}

func TestRestartedServerRejoins(t *testing.T) {
	ctx := context.Background()
	_, ps := startCluster(t, 3)
	a := ps[0].client()
	data := randBytes(t, 50000)
	var ids []backend.ID
	for i := range 20 {
		id := backend.ID(fmt.Sprintf("r-%d", i))
		ids = append(ids, id)
		if _, err := ps[1].client().Put(ctx, data, client.PutOptions{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	ps[1].stop()
	eventually(t, testTTL+3*time.Second, "n2 gone", func() bool { return len(ps[0].memberIDs()) == 2 })
	ps[1].start()
	eventually(t, 10*time.Second, "n2 back", func() bool { return len(ps[0].memberIDs()) == 3 })
	for _, id := range ids {
		var got []byte
		var err error
		eventually(t, 10*time.Second, fmt.Sprintf("%s found again", id), func() bool {
			got, err = a.Get(ctx, id)
			return err == nil
		})
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: bytes differ", id)
		}
	}
}

// spreadTestSize is the object the group test spreads (the 256 MiB).
const spreadTestSize = 256 << 20

func TestGroupSpreadRoutesAroundDeadHop(t *testing.T) {
	t.Parallel() // beside TestEtcdOutage's wait
	ctx := context.Background()
	_, ps := startCluster(t, 4, "--group", "g")
	a := ps[0].client()
	eventually(t, 5*time.Second, "group g has four members", func() bool {
		g, err := a.Groups(ctx)
		return err == nil && len(g["g"]) == 4
	})
	sum := backend.NewChecksum()
	src := io.TeeReader(io.LimitReader(mrand.NewChaCha8([32]byte{1}), spreadTestSize), sum)
	if _, err := a.PutReader(ctx, src, spreadTestSize, client.PutOptions{ID: "big", PrefetchGroup: "g"}); err != nil {
		t.Fatal(err)
	}
	// The chain is n2 -> n3 -> n4: kill n3 once bytes reach it.
	eventually(t, 60*time.Second, "bytes reach n3", func() bool {
		return ps[2].metric("distore_cluster_peer_bytes_total", "direction", "in") > 0
	})
	ps[2].kill()
	var s client.Spread
	eventually(t, 120*time.Second, "the spread ends", func() bool {
		var err error
		s, err = a.SpreadStatus(ctx, "big")
		return err == nil && s.Done
	})
	t.Logf("spread: %+v", s)
	if !slices.Contains(s.Failed, "n3") || slices.Contains(s.Reached, "n3") {
		t.Fatalf("n3 was killed mid-spread but the spread says reached %v, failed %v (was it killed too late?)", s.Reached, s.Failed)
	}
	for _, p := range []*proc{ps[1], ps[3]} {
		if !slices.Contains(s.Reached, p.name) {
			t.Fatalf("the spread did not reach %s: %+v", p.name, s)
		}
		// Local copies: info is answered without a fetch.
		info, err := p.client().Info(ctx, "big")
		if err != nil || info.Size != spreadTestSize || info.Checksum != sum.Sum32() {
			t.Fatalf("%s's copy: %+v, %v (want %d bytes, crc %08x)", p.name, info, err, spreadTestSize, sum.Sum32())
		}
		if n := p.metric("distore_cluster_transfers_started_total"); n != 0 {
			t.Fatalf("%s fetched instead of receiving the spread (%v transfers)", p.name, n)
		}
	}
}

// relay POSTs body to p's relay route, as a spread's previous hop does, with
// the rest of the chain; it returns the answer's status and body.
func relay(t *testing.T, p *proc, id backend.ID, size int64, crc uint32, chain string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.url+"/v1/cluster/objects/"+string(id)+"/relay", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("X-Distore-Size", fmt.Sprint(size))
	req.Header.Set("X-Distore-Checksum", fmt.Sprintf("%08x", crc))
	req.Header.Set("X-Distore-Chain", chain)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A hop forwards what it has received before the rest arrives (a pipelined
// chain, not store-and-forward), and each hop verifies what it stores.
func TestRelayForwardsWhileReceiving(t *testing.T) {
	ctx := context.Background()
	_, ps := startCluster(t, 3)
	data := randBytes(t, 8<<20)
	pr, pw := io.Pipe()
	type answer struct {
		status int
		body   string
	}
	done := make(chan answer, 1)
	go func() {
		s, b := relay(t, ps[0], "piped", int64(len(data)), backend.Checksum(data), "n2,n3", pr)
		done <- answer{s, b}
	}()
	half := 3 << 20
	if _, err := pw.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	// n1 has not got the rest, yet the bytes reach the last hop.
	eventually(t, 20*time.Second, "the first bytes reach n3 before n1 has the rest", func() bool {
		return ps[2].metric("distore_cluster_peer_bytes_total", "direction", "in") >= 2<<20
	})
	if _, err := pw.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var a answer
	select {
	case a = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the relay did not answer in 60 s")
	}
	if a.status != http.StatusOK || !strings.Contains(a.body, `"n1"`) || !strings.Contains(a.body, `"n2"`) || !strings.Contains(a.body, `"n3"`) {
		t.Fatalf("relay answered %d %s; want 200 reaching n1, n2, n3", a.status, a.body)
	}
	for _, p := range ps {
		if got, err := p.client().Get(ctx, "piped"); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s's copy: %v (bytes equal: %v)", p.name, err, bytes.Equal(got, data))
		}
		if n := p.metric("distore_cluster_transfers_started_total"); n != 0 {
			t.Fatalf("%s fetched instead of keeping the relayed copy (%v transfers)", p.name, n)
		}
	}

	// Bytes that do not match the sender's checksum: no hop keeps them.
	bad := randBytes(t, 3<<20)
	status, body := relay(t, ps[0], "bad", int64(len(bad)), backend.Checksum(bad)^1, "n2,n3", bytes.NewReader(bad))
	if status == http.StatusOK || !strings.Contains(body, "checksum") {
		t.Fatalf("a relay with a wrong checksum answered %d %s; want an error naming the checksum", status, body)
	}
	for _, p := range ps {
		eventually(t, 10*time.Second, p.name+" keeps no corrupt copy", func() bool {
			_, err := p.client().Info(ctx, "bad")
			return errors.Is(err, backend.ErrNotFound)
		})
	}
}
