package main

// End-to-end tests through the real binaries: TestMain builds distore-server
// and distore with go build, the tests start the server on 127.0.0.1:0 with a
// temporary data dir, read the address it logs, and drive it with the Go
// client, raw HTTP and the CLI.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"distore/backend"
	"distore/client"
	"distore/internal/testutil"
	"distore/servercmd"
)

// serverBin is the server under test (built with -race when the tests are);
// plainServerBin is always a plain build, for memory measurements.
var serverBin, plainServerBin, cliBin string

// raceBuild is set when the tests run with -race (race_test.go).
var raceBuild bool

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "distore-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBin = filepath.Join(dir, "distore-server")
	plainServerBin = serverBin
	cliBin = filepath.Join(dir, "distore")
	err = errors.Join(testutil.BuildProgram(serverBin, "distore/cmd/distore-server"),
		testutil.BuildProgram(cliBin, "distore/cmd/distore"))
	if raceBuild && err == nil {
		// The server under load runs with the race detector (the binary
		// scripts/test.sh builds ahead: a cache hit); the memory
		// measurements need the plain build (the detector's shadow memory
		// would count), and so does the CLI, to keep its many runs quick.
		plainServerBin, serverBin = serverBin, filepath.Join(dir, "distore-server-race")
		if out, e := exec.Command("go", "build", "-race", "-o", serverBin, "distore/cmd/distore-server").CombinedOutput(); e != nil {
			err = fmt.Errorf("go build -race: %w\n%s", e, out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running distore-server.
type proc struct {
	cmd  *exec.Cmd
	url  string
	addr string
	dir  string
	log  *testutil.SyncBuffer
	// exited is closed when the process has exited; waitErr is Wait's result.
	exited  chan struct{}
	waitErr error
}

var addrRE = regexp.MustCompile(`msg="distore-server listening" addr=(\S+)`)

// startServer runs distore-server with args plus --listen 127.0.0.1:0 and a
// data dir (dir, or a new temporary one), and waits for its address.
func startServer(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	return startServerBin(t, serverBin, dir, args...)
}

// startServerBin is startServer with a chosen binary.
func startServerBin(t *testing.T, bin, dir string, args ...string) *proc {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	t.Cleanup(func() { os.Remove(servercmd.ArenaPath(dir)) })
	args = append([]string{"--listen", "127.0.0.1:0", "--data-dir", dir}, args...)
	p := &proc{dir: dir, log: &testutil.SyncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout = p.log
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		found := false
		for sc.Scan() {
			line := sc.Text()
			p.log.Write([]byte(line + "\n"))
			if m := addrRE.FindStringSubmatch(line); m != nil && !found {
				found = true
				addrc <- m[1]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() { p.waitErr = p.cmd.Wait(); pw.Close(); close(p.exited) }()
	select {
	case p.addr = <-addrc:
	case <-p.exited:
		t.Fatalf("distore-server %v exited: %v\n%s", args, p.waitErr, p.log)
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("distore-server did not log its address in 30 s\n%s", p.log)
	}
	p.url = "http://" + p.addr
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Errorf("distore-server exited with %v after SIGTERM\n%s", p.waitErr, p.log)
		}
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("distore-server did not stop within 60 s of SIGTERM\n%s", p.log)
	}
}

func (p *proc) client(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(p.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// cli runs the distore CLI against p and returns stdout, stderr and the exit code.
func (p *proc) cli(t *testing.T, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(cliBin, args...)
	cmd.Env = append(os.Environ(), "DISTORE_SERVER="+p.url)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 99))
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// rawStatus sends a raw request and returns its status and error code.
func rawStatus(t *testing.T, method, url string, body io.Reader, hdr ...string) (int, string, string) {
	t.Helper()
	resp, data := testutil.Do(t, method, url, body, hdr...)
	return resp.StatusCode, resp.Header.Get("X-Distore-Error-Code"), string(data)
}

func TestEndpoints(t *testing.T) {
	ctx := context.Background()
	p := startServer(t, "", "--levels", "memory,disk", "--memory-capacity", "16MiB")
	for _, want := range []string{`msg=tier name=memory level=memory capacity="16.0 MiB"`, `msg=tier name=disk level=disk`} {
		if !strings.Contains(p.log.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, p.log)
		}
	}
	c := p.client(t)
	small := randBytes(1, 5000)
	info, err := c.Put(ctx, small, client.PutOptions{Importance: 7})
	if err != nil || info.Tier != "memory" || info.Size != 5000 || info.Importance != 7 {
		t.Fatalf("put: %+v %v", info, err)
	}
	// 20 MiB does not fit the 16 MiB memory tier: it lands on disk, streamed.
	big := randBytes(2, 20<<20)
	binfo, err := c.PutReader(ctx, bytes.NewReader(big), int64(len(big)), client.PutOptions{ID: "big-one"})
	if err != nil || binfo.Tier != "disk" || binfo.Checksum != backend.Checksum(big) {
		t.Fatalf("big put: %+v %v", binfo, err)
	}
	for id, data := range map[backend.ID][]byte{info.ID: small, "big-one": big} {
		got, err := c.Get(ctx, id)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get %s: %d bytes, %v", id, len(got), err)
		}
		rc, err := c.GetReader(ctx, id, 1000, 3000)
		if err != nil {
			t.Fatal(err)
		}
		part, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(part, data[1000:4000]) {
			t.Fatalf("range of %s: %d bytes, %v", id, len(part), err)
		}
	}
	hi, err := c.Info(ctx, "big-one")
	if err != nil || hi.Size != int64(len(big)) || hi.Tier != "disk" || hi.Checksum != binfo.Checksum || hi.Created.IsZero() {
		t.Fatalf("info: %+v %v", hi, err)
	}
	// Raw HEAD carries the info header, form-encoded as docs/http-api.md says.
	req, _ := http.NewRequest("HEAD", p.url+"/v1/objects/big-one", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(big)) {
		t.Errorf("HEAD Content-Length = %q, want %d", got, len(big))
	}
	fields, err := url.ParseQuery(resp.Header.Get("X-Distore-Info"))
	if err != nil {
		t.Fatalf("HEAD X-Distore-Info %q: %v", resp.Header.Get("X-Distore-Info"), err)
	}
	for k, want := range map[string]string{"id": "big-one", "size": strconv.Itoa(len(big)), "tier": "disk",
		"level": "disk", "pins": "0", "importance": "0", "checksum": fmt.Sprintf("%08x", binfo.Checksum)} {
		if got := fields.Get(k); got != want {
			t.Errorf("HEAD X-Distore-Info %s = %q, want %q", k, got, want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, fields.Get("created")); err != nil {
		t.Errorf("HEAD X-Distore-Info created: %v", err)
	}
	// Pin, unpin, prefetch (promotes the disk object into memory? it is too
	// large for the 16 MiB tier, so it stays; the small one is already there).
	if err := c.Pin(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, info.ID); !errors.Is(err, backend.ErrPinned) {
		t.Fatalf("delete pinned: %v", err)
	}
	if err := c.Unpin(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.Unpin(ctx, info.ID); !errors.Is(err, backend.ErrNotPinned) {
		t.Fatalf("unpin: %v", err)
	}
	if err := c.Prefetch(ctx, "big-one"); err != nil {
		t.Fatalf("prefetch: %v", err)
	}
	// A 1 MiB object on disk is promoted by prefetch.
	mid := randBytes(3, 1<<20)
	if _, err := c.Put(ctx, mid, client.PutOptions{ID: "mid"}); err != nil {
		t.Fatal(err)
	}
	// List, stats, health, metrics.
	page, err := c.List(ctx, backend.ListOptions{Limit: 2})
	if err != nil || len(page.Objects) != 2 || page.Next == "" {
		t.Fatalf("list: %+v %v", page, err)
	}
	n := 0
	for _, err := range c.All(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("All: %d objects, want 3", n)
	}
	st, err := c.Stats(ctx)
	if err != nil || st.Objects != 3 || len(st.Tiers) != 2 || st.Tiers[0].Capacity != 16<<20 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	status, _, metrics := rawStatus(t, "GET", p.url+"/metrics", nil)
	for _, want := range []string{
		`distore_http_requests_total{code="201",route="POST /v1/objects"} 1`,
		`distore_tier_capacity_bytes{level="memory",tier="memory"} 1.6777216e+07`,
		`distore_spill_spilled_objects_total`,
		`distore_spill_promoted_bytes_total`,
		`distore_spill_tier_high_watermark_ratio{level="disk",tier="disk"}`,
		`distore_http_received_bytes_total`,
	} {
		if status != 200 || !strings.Contains(metrics, want) {
			t.Errorf("metrics (%d) lack %q", status, want)
		}
	}
	if err := c.Delete(ctx, "big-one"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "big-one"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

// TestErrorCodes drives every error status of the API through the binary.
func TestErrorCodes(t *testing.T) {
	ctx := context.Background()
	// One memory tier of 8 MiB: easy to fill with pinned objects.
	p := startServer(t, "", "--levels", "memory", "--memory-capacity", "8MiB")
	c := p.client(t)
	u := p.url + "/v1/objects"
	if _, err := c.Put(ctx, randBytes(4, 6<<20), client.PutOptions{ID: "pinned"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Pin(ctx, "pinned"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, []byte("0123456789"), client.PutOptions{ID: "ten"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, url string
		body        io.Reader
		hdr         []string
		status      int
		code        string
	}{
		{"PUT", u + "/.hidden", strings.NewReader("x"), nil, 400, "invalid_id"},
		{"PUT", u + "/a%2F..%2Fb", strings.NewReader("x"), nil, 400, "invalid_id"},
		{"GET", u + "/" + strings.Repeat("z", 300), nil, nil, 400, "invalid_id"},
		{"GET", u + "/ten?offset=1", nil, nil, 400, "invalid_argument"},
		{"POST", u + "?importance=x", strings.NewReader("x"), nil, 400, "invalid_argument"},
		{"GET", u + "?limit=-1", nil, nil, 400, "invalid_argument"},
		{"GET", u + "/nope", nil, nil, 404, "not_found"},
		{"POST", u + "/nope/prefetch", nil, nil, 404, "not_found"},
		{"PUT", u + "/ten", strings.NewReader("x"), nil, 409, "exists"},
		{"DELETE", u + "/pinned", nil, nil, 409, "pinned"},
		{"POST", u + "/ten/unpin", nil, nil, 409, "not_pinned"},
		{"PUT", u + "/huge", bytes.NewReader(make([]byte, 9<<20)), nil, 413, "too_large"},
		{"PUT", u + "/nofit", bytes.NewReader(make([]byte, 3<<20)), nil, 507, "full"},
		{"GET", u + "/ten", nil, []string{"Range", "bytes=10-"}, 416, "bad_range"},
		{"GET", u + "/ten", nil, []string{"Range", "bytes=-1-5"}, 416, "bad_range"},
		{"GET", u + "/ten", nil, []string{"Range", "bytes=18446744073709551616-"}, 416, "bad_range"},
		{"GET", u + "/ten", nil, []string{"Range", "bytes=3-1"}, 416, "bad_range"},
	} {
		status, code, body := rawStatus(t, tc.method, tc.url, tc.body, tc.hdr...)
		if status != tc.status || code != tc.code {
			t.Errorf("%s %s %v: %d %s %s, want %d %s", tc.method, tc.url, tc.hdr, status, code, body, tc.status, tc.code)
		}
		if tc.code == "full" && !strings.Contains(body, "pinned") {
			t.Errorf("507 message does not name the pinned bytes: %s", body)
		}
		var eb struct{ Code, Message string }
		if json.Unmarshal([]byte(body), &eb) != nil || eb.Code != tc.code || eb.Message == "" {
			t.Errorf("%s %s: body %q is not a JSON error", tc.method, tc.url, body)
		}
	}
	// Range semantics that succeed.
	for rng, want := range map[string]string{"bytes=2-4": "234", "bytes=-3": "789", "bytes=8-": "89", "bytes=5-999999999999": "56789"} {
		status, _, body := rawStatus(t, "GET", u+"/ten", nil, "Range", rng)
		if status != 206 || body != want {
			t.Errorf("Range %s: %d %q, want 206 %q", rng, status, body, want)
		}
	}
	// 411: no Content-Length (chunked).
	req, _ := http.NewRequest("PUT", u+"/chunked", io.MultiReader(strings.NewReader("abc")))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 411 || !strings.Contains(string(body), `"code":"length_required"`) {
		t.Errorf("chunked put: %d %s", resp.StatusCode, body)
	}
	// The same errors through the client, as sentinels.
	var fe *backend.FullError
	if _, err := c.Put(ctx, make([]byte, 3<<20), client.PutOptions{}); !errors.Is(err, backend.ErrFull) || !errors.As(err, &fe) || fe.Pinned < 6<<20 {
		t.Errorf("client full: %v (%+v)", err, fe)
	}
	if _, err := c.Put(ctx, make([]byte, 9<<20), client.PutOptions{}); !errors.Is(err, backend.ErrTooLarge) {
		t.Errorf("client too large: %v", err)
	}
	if _, err := c.Put(ctx, []byte("x"), client.PutOptions{ID: "ten"}); !errors.Is(err, backend.ErrExists) {
		t.Errorf("client exists: %v", err)
	}
	if _, err := c.GetReader(ctx, "ten", 11, -1); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Errorf("client bad range: %v", err)
	}
	// 503: a tier that cannot run refuses to start, with its ErrUnavailable message.
	out, err := exec.Command(serverBin, "--levels", "gpu,memory", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), backend.ErrUnavailable.Error()) || !strings.Contains(string(out), "gpu") {
		t.Errorf("--levels gpu,memory without a GPU: %v\n%s", err, out)
	}
}

// TestTruncatedPut: a client that disconnects halfway through a put leaves
// nothing stored, on both tiers.
func TestTruncatedPut(t *testing.T) {
	ctx := context.Background()
	p := startServer(t, "", "--levels", "memory,disk", "--memory-capacity", "16MiB")
	c := p.client(t)
	for i, size := range []int{30 << 10, 8 << 20, 40 << 20} { // small put, memory writer, disk writer
		id := fmt.Sprintf("cut-%d", size)
		conn, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "PUT /v1/objects/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", id, size)
		if _, err := conn.Write(randBytes(5, size/2)); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		want := fmt.Sprintf(`distore_http_requests_total{code="400",route="PUT /v1/objects/{id}"} %d`, i+1)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, _, m := rawStatus(t, "GET", p.url+"/metrics", nil)
			if strings.Contains(m, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("truncated put of %d bytes not answered 400", size)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := c.Info(ctx, backend.ID(id)); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("truncated put of %d bytes left an object: %v", size, err)
		}
	}
	st, err := c.Stats(ctx)
	if err != nil || st.Objects != 0 || st.Used != 0 {
		t.Fatalf("stats after truncated puts: %+v %v", st, err)
	}
}

// TestConcurrentClients: 100 clients for a bounded time, no error, nothing lost.
func TestConcurrentClients(t *testing.T) {
	ctx := context.Background()
	p := startServer(t, "", "--levels", "memory,disk", "--memory-capacity", "32MiB")
	c := p.client(t)
	const clients = 100
	dur := 4 * time.Second
	if testing.Short() {
		dur = time.Second
	}
	deadline := time.Now().Add(dur)
	var mu sync.Mutex
	kept := map[backend.ID]uint32{} // acknowledged and not deleted: must all be there
	var ops, errs atomic.Int64
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; time.Now().Before(deadline) && i < 10000; i++ {
				size := 1 + r.IntN(64<<10)
				if r.IntN(20) == 0 {
					size = 1<<20 + r.IntN(1<<20)
				}
				data := randBytes(uint64(w*100000+i), size)
				id := backend.ID(fmt.Sprintf("c%03d-%05d", w, i))
				info, err := c.Put(ctx, data, client.PutOptions{ID: id, Importance: r.IntN(5)})
				if err != nil {
					errs.Add(1)
					t.Errorf("put %s: %v", id, err)
					return
				}
				got, err := c.Get(ctx, id)
				if err != nil || !bytes.Equal(got, data) || info.Checksum != backend.Checksum(data) {
					errs.Add(1)
					t.Errorf("get %s: %d bytes, %v", id, len(got), err)
					return
				}
				if i%3 == 0 {
					if err := c.Delete(ctx, id); err != nil {
						errs.Add(1)
						t.Errorf("delete %s: %v", id, err)
						return
					}
				} else {
					mu.Lock()
					kept[id] = info.Checksum
					mu.Unlock()
				}
				ops.Add(3)
			}
		}()
	}
	wg.Wait()
	if errs.Load() > 0 {
		t.Fatalf("%d errors", errs.Load())
	}
	t.Logf("%d clients: %d operations in %v, %d objects kept", clients, ops.Load(), dur, len(kept))
	seen := 0
	for o, err := range c.All(ctx, "c") {
		if err != nil {
			t.Fatal(err)
		}
		sum, ok := kept[o.ID]
		if !ok {
			t.Fatalf("listed %s, which was deleted", o.ID)
		}
		if o.Checksum != sum {
			t.Fatalf("%s: checksum %08x, put said %08x", o.ID, o.Checksum, sum)
		}
		seen++
	}
	if seen != len(kept) {
		t.Fatalf("listed %d objects, %d acknowledged and kept", seen, len(kept))
	}
	// Read every kept object back in full.
	for id, sum := range kept {
		data, err := c.Get(ctx, id)
		if err != nil || backend.Checksum(data) != sum {
			t.Fatalf("%s after the load: %v", id, err)
		}
	}
}

// patternReader yields n deterministic bytes without holding them: a 1 MiB
// random block, repeated, each repetition's first 8 bytes replaced by its
// number so that misplaced blocks are caught by the checksum.
type patternReader struct {
	n, off int64
}

var patternBlock = randBytes(42, 1<<20)

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	done := 0
	for done < len(p) {
		pos := (r.off + int64(done)) % int64(len(patternBlock))
		k := copy(p[done:], patternBlock[pos:])
		if pos < 8 {
			blk := uint64((r.off + int64(done)) / int64(len(patternBlock)))
			for i := pos; i < 8 && int(i-pos) < k; i++ {
				p[done+int(i-pos)] = byte(blk >> (8 * i))
			}
		}
		done += k
	}
	r.off += int64(len(p))
	return len(p), nil
}

// vm reads a field (in KiB) of /proc/PID/status.
func vm(t *testing.T, pid int, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// rssSampler polls the server's /proc status while a transfer runs and
// keeps the peak of RssAnon (the Go heap and stacks: what buffering a body
// would grow; the memory tier's arena is RssShmem and Badger's mapped files
// RssFile, so neither counts).
type rssSampler struct {
	peakAnon atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

func sampleRSS(t *testing.T, pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err == nil {
				for _, line := range strings.Split(string(data), "\n") {
					if rest, ok := strings.CutPrefix(line, "RssAnon:"); ok {
						n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
						if n<<10 > s.peakAnon.Load() {
							s.peakAnon.Store(n << 10)
						}
					}
				}
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) finish() int64 {
	close(s.stop)
	<-s.done
	return s.peakAnon.Load()
}

// bigRoundTrip streams size bytes in and out of the server as object id and
// checks them; it returns the put and get rates in MiB/s.
func bigRoundTrip(t *testing.T, c *client.Client, id backend.ID, size int64, wantTier string) (float64, float64) {
	ctx := context.Background()
	sum := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	start := time.Now()
	info, err := c.PutReader(ctx, io.TeeReader(&patternReader{n: size}, sum), size, client.PutOptions{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	putTime := time.Since(start)
	if info.Checksum != sum.Sum32() || info.Tier != wantTier {
		t.Fatalf("put: %+v, checksum sent %08x, want tier %s", info, sum.Sum32(), wantTier)
	}
	start = time.Now()
	rc, err := c.GetReader(ctx, id, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, err := io.CopyBuffer(got, rc, make([]byte, 1<<20))
	rc.Close()
	if err != nil || n != size || got.Sum32() != info.Checksum {
		t.Fatalf("get: %d bytes, %v, crc %08x want %08x", n, err, got.Sum32(), info.Checksum)
	}
	getTime := time.Since(start)
	return float64(size) / putTime.Seconds() / (1 << 20), float64(size) / getTime.Seconds() / (1 << 20)
}

// bigStreamRSS bounds the server's memory beyond its memory-tier arena during
// a 1 GiB streamed put and get: the Go runtime, buffers and connections.
const bigStreamRSS = 200 << 20

// TestBigStream puts and gets 1 GiB through the server into the memory tier
// (1.25 GiB, prefaulted at start, so the arena is in RSS from the start) and
// checks that the server's peak RSS, VmHWM, stays under the arena's size +
// bigStreamRSS: the body streams, it never sits whole in the Go heap.
func TestBigStream(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfer; skipped with -short")
	}
	const size = 1 << 30
	const arena = 1280 << 20
	p := startServerBin(t, plainServerBin, "", "--levels", "memory", "--memory-capacity", fmt.Sprint(arena))
	c := p.client(t)
	pid := p.cmd.Process.Pid
	base := vm(t, pid, "VmHWM")
	s := sampleRSS(t, pid)
	put, get := bigRoundTrip(t, c, "gib", size, "memory")
	anon := s.finish()
	hwm := vm(t, pid, "VmHWM")
	t.Logf("memory tier: 1 GiB put %.0f MiB/s, get %.0f MiB/s; server VmHWM %d MiB (at start %d MiB, arena %d MiB), peak RssAnon %d MiB",
		put, get, hwm>>20, base>>20, arena>>20, anon>>20)
	if limit := int64(arena + bigStreamRSS); hwm > limit {
		t.Fatalf("server VmHWM %d MiB > arena %d MiB + %d MiB: a 1 GiB body was buffered", hwm>>20, arena>>20, bigStreamRSS>>20)
	}
}

// TestBigStreamDisk does the same with 512 MiB through the disk tier (the
// memory tier is 64 MiB). Badger maps its value-log files, which counts in VmHWM as file
// pages, so here the bound is on the peak RssAnon (heap, stacks), sampled
// every 20 ms during the transfers.
func TestBigStreamDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfer; skipped with -short")
	}
	const size = 512 << 20 // half the memory test's: Badger's writes are the slow part
	p := startServerBin(t, plainServerBin, "", "--levels", "memory,disk", "--memory-capacity", "64MiB")
	c := p.client(t)
	pid := p.cmd.Process.Pid
	s := sampleRSS(t, pid)
	put, get := bigRoundTrip(t, c, "gib", size, "disk")
	anon := s.finish()
	t.Logf("disk tier: 512 MiB put %.0f MiB/s, get %.0f MiB/s; server VmHWM %d MiB, peak RssAnon %d MiB",
		put, get, vm(t, pid, "VmHWM")>>20, anon>>20)
	if anon > bigStreamRSS+64<<20 {
		t.Fatalf("server peak RssAnon %d MiB > %d MiB: a 1 GiB body was buffered", anon>>20, (bigStreamRSS+64<<20)>>20)
	}
}

// TestShutdownAndRestart: SIGTERM lets an in-flight put finish, the process
// exits 0 and tears the tiers down; a restart on the same data dir finds the
// disk tier's objects.
func TestShutdownAndRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := startServer(t, dir, "--levels", "memory,disk", "--memory-capacity", "4MiB")
	c := p.client(t)
	data := randBytes(6, 6<<20) // larger than the memory tier: on disk
	if _, err := c.Put(ctx, data, client.PutOptions{ID: "durable"}); err != nil {
		t.Fatal(err)
	}
	small := randBytes(8, 64<<10) // in the memory tier, whose arena is kept
	if info, err := c.Put(ctx, small, client.PutOptions{ID: "in-memory", Importance: 9}); err != nil || info.Tier != "memory" {
		t.Fatalf("small put: %+v, %v", info, err)
	}
	// An in-flight put, half sent when SIGTERM arrives.
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	slow := randBytes(7, 1<<20)
	fmt.Fprintf(conn, "PUT /v1/objects/inflight HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(slow))
	conn.Write(slow[:len(slow)/2])
	time.Sleep(200 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	conn.Write(slow[len(slow)/2:])
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight put during shutdown: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("in-flight put during shutdown: %d", resp.StatusCode)
	}
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", p.waitErr, p.log)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30 s after SIGTERM")
	}
	if !strings.Contains(p.log.String(), "tiers torn down") {
		t.Errorf("no teardown in the log:\n%s", p.log)
	}
	p2 := startServer(t, dir, "--levels", "memory,disk", "--memory-capacity", "4MiB")
	got, err := p2.client(t).Get(ctx, "durable")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after restart: %d bytes, %v", len(got), err)
	}
	got, err = p2.client(t).Get(ctx, "in-memory")
	if err != nil || !bytes.Equal(got, small) {
		t.Fatalf("memory-tier object after restart: %d bytes, %v", len(got), err)
	}
}

// TestConfigFile: a YAML config sets tiers and server options, flags
// override it, unknown keys are errors.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "distore.yaml")
	os.WriteFile(conf, []byte(`
levels: memory
listen: 127.0.0.1:1  # overridden by the test's --listen
owner: node7
tiers:
  memory:
    capacity: 3MiB
    high_watermark: 0.8
`), 0o644)
	p := startServer(t, dir, "--config", conf)
	if !strings.Contains(p.log.String(), `capacity="3.0 MiB"`) || strings.Contains(p.log.String(), "name=disk") {
		t.Errorf("config not applied:\n%s", p.log)
	}
	info, err := p.client(t).Put(context.Background(), []byte("x"), client.PutOptions{})
	if err != nil || info.ID.Owner() != "node7" {
		t.Errorf("generated ID %q does not name owner node7: %v", info.ID, err)
	}
	// The documented example config starts as it is (with a smaller memory tier).
	example, _ := filepath.Abs("../../conf/distore.yaml")
	p3 := startServer(t, "", "--config", example, "--memory-capacity", "8MiB")
	if !strings.Contains(p3.log.String(), "name=disk") || !strings.Contains(p3.log.String(), `capacity="8.0 MiB"`) {
		t.Errorf("conf/distore.yaml:\n%s", p3.log)
	}
	p3.stop(t)
	p.stop(t) // a data dir serves one server at a time
	// The flag beats the file's tier option (in a new data dir: a kept memory
	// arena keeps the capacity it was made with).
	p2 := startServer(t, "", "--config", conf, "--memory-capacity", "5MiB")
	if !strings.Contains(p2.log.String(), `capacity="5.0 MiB"`) {
		t.Errorf("--memory-capacity did not override the file:\n%s", p2.log)
	}
	for name, text := range map[string]string{
		"unknown key":         "levels: memory\nlisten_addr: 1\n",
		"unknown tier":        "tiers:\n  ramdisk:\n    capacity: 1GiB\n",
		"unknown tier option": "levels: memory\ntiers:\n  memory:\n    capacty: 1GiB\n",
	} {
		os.WriteFile(conf, []byte(text), 0o644)
		out, err := exec.Command(serverBin, "--config", conf, "--listen", "127.0.0.1:0", "--data-dir", dir).CombinedOutput()
		if err == nil || (!strings.Contains(string(out), "not found") && !strings.Contains(string(out), "unknown") &&
			!strings.Contains(string(out), "no tier")) {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
	out, err := exec.Command(serverBin, "--no-such-flag").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 64 {
		t.Errorf("bad flag: %v\n%s", err, out)
	}
}
