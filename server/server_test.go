package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"distore/backend"
	"distore/backend/backendtest"
	"distore/client"
	"distore/internal/testutil"
	"distore/shmem"
	"distore/wire"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testServer is a Server running in Serve (net/http, tuned) on a
// loopback port.
type testServer struct {
	URL      string
	Listener net.Listener
}

// serve runs a Server over b with Serve on a loopback port until cancel is
// called; done then yields what Serve returned.
func serve(t *testing.T, b backend.Backend) (ln net.Listener, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	s, err := New(b, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, 5*time.Second) }()
	return ln, cancel, served
}

// start serves b with Serve on a loopback port and returns a client of it.
// At cleanup the server shuts down and must return nil.
func start(t *testing.T, b backend.Backend) (*testServer, *client.Client) {
	t.Helper()
	ln, cancel, done := serve(t, b)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	ts := &testServer{URL: "http://" + ln.Addr().String(), Listener: ln}
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return ts, c
}

// randBytes returns n deterministic pseudo-random bytes.
func randBytes(n int) []byte { return backendtest.Payload(int64(n), 7) }

// do sends a raw request and returns status, error code and body.
func do(t *testing.T, method, url string, body io.Reader, hdr ...string) (int, string, []byte) {
	t.Helper()
	resp, data := testutil.Do(t, method, url, body, hdr...)
	code := resp.Header.Get(wire.HeaderErrorCode)
	if resp.StatusCode >= 400 && method != http.MethodHead {
		var eb wire.ErrorBody
		if err := json.Unmarshal(data, &eb); err != nil || eb.Code != code || eb.Message == "" {
			t.Errorf("%s %s: error body %q is not {code,message} matching header %q", method, url, data, code)
		}
	}
	return resp.StatusCode, code, data
}

// TestRoundTrip runs over the real memory tier, whose Get is zero-copy (the
// server writes straight from its arena).
func TestRoundTrip(t *testing.T) { testRoundTrip(t, newMemory(t, 64<<20), shmem.Name) }

func testRoundTrip(t *testing.T, b backend.Backend, tier string) {
	ctx := context.Background()
	_, c := start(t, b)
	for _, size := range []int{0, 1, 4 << 10, 64<<10 + 1, 3 << 20} {
		data := randBytes(size)
		info, err := c.Put(ctx, data, client.PutOptions{Importance: 3})
		if err != nil {
			t.Fatalf("put %d: %v", size, err)
		}
		if info.ID == "" || info.Size != int64(size) || info.Importance != 3 || info.Checksum != backend.Checksum(data) {
			t.Fatalf("put %d: info %+v", size, info)
		}
		got, err := c.Get(ctx, info.ID)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get %d: %d bytes, %v", size, len(got), err)
		}
		hi, err := c.Info(ctx, info.ID)
		if err != nil || hi.Size != info.Size || hi.Checksum != info.Checksum || hi.Tier != tier ||
			hi.Importance != 3 || !hi.Created.Equal(info.Created) || hi.Level != info.Level {
			t.Fatalf("info %d: %+v, %v (put said %+v)", size, hi, err, info)
		}
	}
	// Chosen ID, with checksum verification.
	data := randBytes(100 << 10)
	if _, err := c.Put(ctx, data, client.PutOptions{ID: "chosen", Checksum: backend.Checksum(data)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, data, client.PutOptions{ID: "bad-sum", Checksum: backend.Checksum(data) + 1}); !errors.Is(err, backend.ErrCorrupt) {
		t.Fatalf("wrong checksum: %v", err)
	} else if ce := (*client.Error)(nil); !errors.As(err, &ce) || ce.Status != 422 {
		t.Fatalf("wrong checksum: status %v, want 422", err)
	}
	if _, err := c.Put(ctx, []byte("small"), client.PutOptions{ID: "bad-sum", Checksum: 1}); !errors.Is(err, backend.ErrCorrupt) {
		t.Fatalf("wrong checksum, small put: %v", err)
	}
	if _, err := c.Info(ctx, "bad-sum"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("object with wrong checksum stored: %v", err)
	}
	// Ranges through the client.
	for _, r := range [][2]int64{{0, 1}, {5, 100}, {0, -1}, {1000, -1}, {int64(len(data)) - 1, 1}, {int64(len(data)), -1}, {7, 0}} {
		rc, err := c.GetReader(ctx, "chosen", r[0], r[1])
		if err != nil {
			t.Fatalf("range %v: %v", r, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		end := int64(len(data))
		if r[1] >= 0 {
			end = r[0] + r[1]
		}
		if err != nil || !bytes.Equal(got, data[r[0]:end]) {
			t.Fatalf("range %v: %d bytes, %v", r, len(got), err)
		}
	}
	for _, r := range [][2]int64{{int64(len(data)) + 1, -1}, {0, int64(len(data)) + 1}, {-1, 5}, {0, -2}} {
		if _, err := c.GetReader(ctx, "chosen", r[0], r[1]); !errors.Is(err, backend.ErrInvalidArgument) {
			t.Errorf("range %v: err %v, want ErrInvalidArgument", r, err)
		}
	}
	// Pins.
	if err := c.Pin(ctx, "chosen"); err != nil {
		t.Fatal(err)
	}
	if info, _ := c.Info(ctx, "chosen"); info.Pins != 1 {
		t.Fatalf("pins = %d after Pin", info.Pins)
	}
	if err := c.Delete(ctx, "chosen"); !errors.Is(err, backend.ErrPinned) {
		t.Fatalf("delete pinned: %v", err)
	}
	if err := c.Unpin(ctx, "chosen"); err != nil {
		t.Fatal(err)
	}
	if err := c.Unpin(ctx, "chosen"); !errors.Is(err, backend.ErrNotPinned) {
		t.Fatalf("unpin unpinned: %v", err)
	}
	if err := c.Prefetch(ctx, "chosen"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "chosen"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func() error{
		func() error { _, err := c.Get(ctx, "chosen"); return err },
		func() error { _, err := c.Info(ctx, "chosen"); return err },
		func() error { return c.Delete(ctx, "chosen") },
		func() error { return c.Pin(ctx, "chosen") },
		func() error { return c.Prefetch(ctx, "chosen") },
	} {
		if err := f(); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("after delete: %v, want ErrNotFound", err)
		}
	}
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestListPages(t *testing.T) {
	ctx := context.Background()
	mem := newMemory(t, 1<<20)
	_, c := start(t, mem)
	want := map[backend.ID]bool{}
	for i := range 25 {
		id := backend.ID(fmt.Sprintf("p-%02d", i))
		want[id] = true
		if _, err := c.Put(ctx, []byte{byte(i)}, client.PutOptions{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Put(ctx, []byte("x"), client.PutOptions{ID: "other"}); err != nil {
		t.Fatal(err)
	}
	page, err := c.List(ctx, backend.ListOptions{Prefix: "p-", Limit: 10})
	if err != nil || len(page.Objects) != 10 || page.Next != "p-09" {
		t.Fatalf("first page: %d objects, next %q, %v", len(page.Objects), page.Next, err)
	}
	page, err = c.List(ctx, backend.ListOptions{Prefix: "p-", After: "p-19", Limit: 10})
	if err != nil || len(page.Objects) != 5 || page.Next != "" {
		t.Fatalf("last page: %d objects, next %q, %v", len(page.Objects), page.Next, err)
	}
	n := 0
	for o, err := range c.All(ctx, "p-") {
		if err != nil || !want[o.ID] {
			t.Fatalf("All: %v %v", o.ID, err)
		}
		n++
	}
	if n != 25 {
		t.Fatalf("All gave %d objects, want 25", n)
	}
	st, err := c.Stats(ctx)
	direct, _ := mem.Stats(ctx)
	if err != nil || st.Objects != 26 || st.Used != direct.Used || st.Used < 26 || st.Tier != shmem.Name {
		t.Fatalf("stats %+v (the tier says %+v), %v", st, direct, err)
	}
}

func TestErrorCodes(t *testing.T) {
	ctx := context.Background()
	fb := newMemory(t, 1<<20)
	ts, c := start(t, fb)
	u := ts.URL + "/v1/objects"
	if _, err := c.Put(ctx, randBytes(1000), client.PutOptions{ID: "obj"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, randBytes(512<<10), client.PutOptions{ID: "pinned"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Pin(ctx, "pinned"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, url string
		body        io.Reader
		hdr         []string
		status      int
		code        string
	}{
		{"PUT", u + "/-bad", strings.NewReader("x"), nil, 400, wire.CodeInvalidID},
		{"PUT", u + "/a%20b", strings.NewReader("x"), nil, 400, wire.CodeInvalidID},
		{"PUT", u + "/a%2Fb", strings.NewReader("x"), nil, 400, wire.CodeInvalidID},
		{"GET", u + "/" + strings.Repeat("x", 201), nil, nil, 400, wire.CodeInvalidID},
		{"GET", u + "/obj?foo=1", nil, nil, 400, wire.CodeInvalidArgument},
		{"PUT", u + "/new?importance=high", strings.NewReader("x"), nil, 400, wire.CodeInvalidArgument},
		{"PUT", u + "/new?importance=1", strings.NewReader("x"), []string{wire.HeaderImportance, "2"}, 400, wire.CodeInvalidArgument},
		{"PUT", u + "/new", strings.NewReader("x"), []string{wire.HeaderChecksum, "zz"}, 400, wire.CodeInvalidArgument},
		{"PUT", u + "/new?ttl=5", strings.NewReader("x"), nil, 400, wire.CodeInvalidArgument},
		{"GET", u + "?limit=0", nil, nil, 400, wire.CodeInvalidArgument},
		{"GET", u + "?limit=abc", nil, nil, 400, wire.CodeInvalidArgument},
		{"GET", u + "?after=../x", nil, nil, 400, wire.CodeInvalidArgument},
		{"GET", u + "?cursor=x", nil, nil, 400, wire.CodeInvalidArgument},
		{"GET", u + "?limit=1&limit=2", nil, nil, 400, wire.CodeInvalidArgument},
		{"GET", ts.URL + "/v1/stats?x=1", nil, nil, 400, wire.CodeInvalidArgument},
		{"GET", u + "/missing", nil, nil, 404, wire.CodeNotFound},
		{"HEAD", u + "/missing", nil, nil, 404, wire.CodeNotFound},
		{"DELETE", u + "/missing", nil, nil, 404, wire.CodeNotFound},
		{"POST", u + "/missing/pin", nil, nil, 404, wire.CodeNotFound},
		{"POST", u + "/obj/frobnicate", nil, nil, 404, wire.CodeNoRoute},
		{"GET", ts.URL + "/v2/nothing", nil, nil, 404, wire.CodeNoRoute},
		{"GET", u + "/a/b/c", nil, nil, 404, wire.CodeNoRoute},
		{"DELETE", ts.URL + "/v1/stats", nil, nil, 405, wire.CodeMethod},
		{"POST", u + "/obj", strings.NewReader("x"), nil, 405, wire.CodeMethod},
		{"GET", u + "/obj/pin", nil, nil, 405, wire.CodeMethod},
		{"PATCH", u, nil, nil, 405, wire.CodeMethod},
		{"PUT", u + "/obj", strings.NewReader("x"), nil, 409, wire.CodeExists},
		{"DELETE", u + "/pinned", nil, nil, 409, wire.CodePinned},
		{"POST", u + "/obj/unpin", nil, nil, 409, wire.CodeNotPinned},
		{"PUT", u + "/big", bytes.NewReader(make([]byte, 2<<20)), nil, 413, wire.CodeTooLarge},
		{"PUT", u + "/full", bytes.NewReader(make([]byte, 700<<10)), nil, 507, wire.CodeFull},
		{"GET", u + "/obj", nil, []string{"Range", "bytes=1000-"}, 416, wire.CodeBadRange},
		{"GET", u + "/obj", nil, []string{"Range", "bytes=5-2"}, 416, wire.CodeBadRange},
		{"GET", u + "/obj", nil, []string{"Range", "bytes=-5-10"}, 416, wire.CodeBadRange},
		{"GET", u + "/obj", nil, []string{"Range", "bytes=0-1,4-5"}, 416, wire.CodeBadRange},
		{"GET", u + "/obj", nil, []string{"Range", "bytes=99999999999999999999999-"}, 416, wire.CodeBadRange},
		{"GET", u + "/obj", nil, []string{"Range", "items=0-1"}, 416, wire.CodeBadRange},
		{"GET", u + "/obj", nil, []string{"Range", "bytes=-0"}, 416, wire.CodeBadRange},
	}
	for _, tc := range cases {
		status, code, body := do(t, tc.method, tc.url, tc.body, tc.hdr...)
		if status != tc.status || code != tc.code {
			t.Errorf("%s %s %v: %d %s (%s), want %d %s", tc.method, tc.url, tc.hdr, status, code, body, tc.status, tc.code)
		}
	}
	// 507 names the pinned bytes (the object's and its record's in the arena).
	tierStats, err := fb.Stats(ctx)
	if err != nil || tierStats.Pinned < 512<<10 {
		t.Fatalf("tier stats %+v, %v", tierStats, err)
	}
	_, _, body := do(t, "POST", u, bytes.NewReader(make([]byte, 700<<10)))
	if pinned := backend.FormatBytes(tierStats.Pinned) + " pinned"; !strings.Contains(string(body), pinned) {
		t.Errorf("507 body does not name the pinned bytes (%s): %s", pinned, body)
	}
	var fe *backend.FullError
	if _, err := c.Put(ctx, make([]byte, 700<<10), client.PutOptions{}); !errors.Is(err, backend.ErrFull) ||
		!errors.As(err, &fe) || fe.Pinned != tierStats.Pinned || fe.Requested != 700<<10 {
		t.Errorf("client full error: %v (%+v)", err, fe)
	}
	if _, err := c.Put(ctx, make([]byte, 2<<20), client.PutOptions{}); !errors.Is(err, backend.ErrTooLarge) {
		t.Errorf("client too-large error: %v", err)
	}
	// A huge but satisfiable end is clamped (RFC 9110), served as 206.
	status, _, body := do(t, "GET", u+"/obj", nil, "Range", "bytes=990-99999999999")
	if status != 206 || len(body) != 10 {
		t.Errorf("clamped range: %d, %d bytes", status, len(body))
	}
	// 411: a chunked body has no Content-Length.
	req, _ := http.NewRequest("PUT", u+"/chunked", io.MultiReader(strings.NewReader("abc")))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 411 || resp.Header.Get(wire.HeaderErrorCode) != wire.CodeLengthRequired {
		t.Errorf("chunked put: %d %s", resp.StatusCode, resp.Header.Get(wire.HeaderErrorCode))
	}

	// 503 and 500 come from the backend's errors.
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{backend.Errorf("info", "gpu", "x", backend.ErrUnavailable, "no GPU"), 503, wire.CodeUnavailable},
		{errors.New("disk on fire"), 500, wire.CodeInternal},
		{backend.Errorf("info", "disk", "x", backend.ErrCorrupt, ""), 500, wire.CodeCorrupt},
	} {
		ts2, c2 := start(t, failing{newMemory(t, 1<<20), tc.err})
		status, code, _ := do(t, "GET", ts2.URL+"/v1/objects/x", nil)
		if status != tc.status || code != tc.code {
			t.Errorf("backend error %v: %d %s, want %d %s", tc.err, status, code, tc.status, tc.code)
		}
		if _, err := c2.Info(ctx, "x"); err == nil {
			t.Errorf("client got no error for %v", tc.err)
		} else if s := wire.CodeSentinel(tc.code); s != nil && !errors.Is(err, s) {
			t.Errorf("client error %v does not wrap %v", err, s)
		}
	}
	// A closed backend answers 503 closed.
	_ = fb.Teardown(ctx)
	if status, code, _ := do(t, "GET", ts.URL+"/healthz", nil); status != 503 || code != wire.CodeClosed {
		t.Errorf("healthz on closed backend: %d %s", status, code)
	}
	if _, err := c.Get(ctx, "obj"); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("get on closed backend: %v", err)
	}
	// Invalid IDs fail in the client before a round trip.
	if _, err := c.Get(ctx, "../etc/passwd"); !errors.Is(err, backend.ErrInvalidID) {
		t.Errorf("client bad id: %v", err)
	}
}

// TestTruncatedPut: a client that disconnects halfway through a put leaves
// nothing stored.
func TestTruncatedPut(t *testing.T) {
	ctx := context.Background()
	fb := newMemory(t, 64<<20)
	ts, c := start(t, fb)
	for _, size := range []int{10 << 10, 4 << 20} { // the small (one Put) and streamed paths
		id := fmt.Sprintf("trunc-%d", size)
		conn, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "PUT /v1/objects/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", id, size)
		if _, err := conn.Write(randBytes(size / 2)); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		// Wait for the handler to see the end of the body.
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(scrape(t, ts.URL), `distore_http_requests_total{code="400",route="PUT /v1/objects/{id}"} `+fmt.Sprint(map[int]int{10 << 10: 1, 4 << 20: 2}[size])) {
			if time.Now().After(deadline) {
				t.Fatalf("the truncated put of %d bytes was not answered with 400", size)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := c.Info(ctx, backend.ID(id)); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("truncated put of %d bytes left an object: %v", size, err)
		}
		// A truthful client sending fewer bytes than declared is refused too.
		_, err = c.PutReader(ctx, bytes.NewReader(randBytes(size/2)), int64(size), client.PutOptions{ID: backend.ID(id)})
		if err == nil {
			t.Fatalf("short PutReader succeeded")
		}
		if _, err := c.Info(ctx, backend.ID(id)); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("short PutReader left an object: %v", err)
		}
	}
	// The memory tier counts a writer's reservation until the server sees the
	// body end and aborts it, which can be after the client gave up.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, err := fb.Stats(ctx)
		if err == nil && st.Objects == 0 && st.Used == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats after truncated puts: %+v, %v", st, err)
		}
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data)
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	mem := newMemory(t, 1<<20)
	ts, c := start(t, mem)
	if _, err := c.Put(ctx, make([]byte, 1000), client.PutOptions{ID: "m"}); err != nil {
		t.Fatal(err)
	}
	st, err := mem.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Get(ctx, "nope")
	m := scrape(t, ts.URL)
	for _, want := range []string{
		`distore_http_requests_total{code="201",route="PUT /v1/objects/{id}"} 1`,
		`distore_http_requests_total{code="200",route="GET /v1/objects/{id}"} 1`,
		`distore_http_requests_total{code="404",route="GET /v1/objects/{id}"} 1`,
		`distore_http_request_duration_seconds_count{code="200",route="GET /v1/objects/{id}"} 1`,
		`distore_http_received_bytes_total 1000`,
		`distore_tier_used_bytes{level="memory",tier="memory"} ` + strconv.FormatFloat(float64(st.Used), 'g', -1, 64),
		`distore_tier_capacity_bytes{level="memory",tier="memory"} ` + strconv.FormatFloat(float64(st.Capacity), 'g', -1, 64),
		`distore_tier_objects{level="memory",tier="memory"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(m, "distore_http_sent_bytes_total") {
		t.Error("no sent bytes metric")
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		h           string
		size        int64
		off, n      int64
		partial, ok bool
	}{
		{"", 10, 0, 10, false, true},
		{"bytes=0-0", 10, 0, 1, true, true},
		{"bytes=2-", 10, 2, 8, true, true},
		{"bytes=-3", 10, 7, 3, true, true},
		{"bytes=-30", 10, 0, 10, true, true},
		{"bytes=5-100", 10, 5, 5, true, true},
		{"bytes=10-", 10, 0, 0, false, false},
		{"bytes=0-", 0, 0, 0, false, false},
		{"bytes=-1", 0, 0, 0, false, false},
		{"bytes=+1-2", 10, 0, 0, false, false},
		{"bytes= 1-2", 10, 1, 2, true, true},
		{"bytes=1", 10, 0, 0, false, false},
		{"bytes=", 10, 0, 0, false, false},
	} {
		off, n, partial, err := parseRange(tc.h, tc.size)
		if (err == nil) != tc.ok || (tc.ok && (off != tc.off || n != tc.n || partial != tc.partial)) {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v, %v", tc.h, tc.size, off, n, partial, err)
		}
	}
}

// TestGracefulServe: Serve lets an in-flight request finish after its
// context ends, and then returns.
func TestGracefulServe(t *testing.T) {
	fb := newMemory(t, 64<<20)
	ln, cancel, done := serve(t, fb)
	defer cancel()

	// Start a slow streamed put, then ask the server to stop midway.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 1 << 20
	data := randBytes(size)
	fmt.Fprintf(conn, "PUT /v1/objects/slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
	conn.Write(data[:size/2])
	time.Sleep(100 * time.Millisecond)
	cancel()
	time.Sleep(100 * time.Millisecond)
	if _, err := conn.Write(data[size/2:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight put during shutdown: %d", resp.StatusCode)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	if _, err := fb.ObjectInfo(context.Background(), "slow"); err != nil {
		t.Fatalf("in-flight put lost: %v", err)
	}
}

// TestStalledPut: a put whose body stops arriving is aborted after
// IOTimeout, leaving nothing and freeing its space.
func TestStalledPut(t *testing.T) {
	ctx := context.Background()
	mem := newMemory(t, 16<<20)
	s, _ := New(mem, Options{Logger: quietLogger(), IOTimeout: 200 * time.Millisecond})
	ts := httptest.NewServer(s)
	defer ts.Close()
	for _, size := range []int{8 << 10, 4 << 20} {
		conn, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PUT /v1/objects/stall HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
		conn.Write(randBytes(size / 2))
		// The server gives up after 200 ms and answers (or closes).
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Fatalf("stalled put of %d: %d", size, resp.StatusCode)
			}
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("stalled put of %d: the server still waits after 5 s", size)
		}
		if _, err := mem.ObjectInfo(ctx, "stall"); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("stalled put of %d left an object: %v", size, err)
		}
		if st, _ := mem.Stats(ctx); st.Used != 0 {
			t.Fatalf("stalled put of %d holds %d bytes", size, st.Used)
		}
	}
}
