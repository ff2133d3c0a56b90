package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"distore/backend"
	"distore/client"
	"distore/wire"
)

// exchange sends raw on a new connection to addr and reads every response
// until the server closes the connection or a second passes without one. It
// returns the statuses and whether the server closed the connection.
func exchange(t *testing.T, addr, raw string) (statuses []int, bodies []string, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for {
		// No further response within 2 s: there is none (the cases run in
		// parallel, on a machine that may be busy with other packages).
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			return statuses, bodies, !(errors.As(err, &ne) && ne.Timeout())
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		bodies = append(bodies, string(b))
	}
}

// smuggled is a request hidden in a body: running it deletes "victim".
const smuggled = "DELETE /v1/objects/victim HTTP/1.1\r\nHost: x\r\n\r\n"

// TestRawRequests sends malformed and ambiguous requests over raw TCP. The
// server must answer what net/http's own server answers (run beside it as
// the reference), answer every request, and never run a body as a request.
func TestRawRequests(t *testing.T) {
	if len(smuggled) != 47 {
		t.Fatalf("smuggled request is %d bytes", len(smuggled))
	}
	ctx := context.Background()
	mem := newMemory(t, 16<<20)
	ts, c := start(t, mem)
	addr := strings.TrimPrefix(ts.URL, "http://")

	// The reference: net/http's server with a handler that reads the body
	// and answers 204, with the same head limit.
	ref := &http.Server{MaxHeaderBytes: wire.MaxHeaderBytes, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})}
	rln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ref.Serve(rln)
	defer ref.Close()

	t.Run("cases", func(t *testing.T) { rawCases(t, mem, addr, rln.Addr().String()) })
	// The server still serves.
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

// rawCases runs TestRawRequests' cases in parallel, against distore at addr
// and net/http's own server at ref.
func rawCases(t *testing.T, mem backend.Backend, addr, ref string) {
	ctx := context.Background()
	// All at once (t.Run from goroutines, not limited by -parallel as
	// t.Parallel is): each case waits for a response that does not come.
	var wg sync.WaitGroup
	big := strings.Repeat("a", 70<<10)
	under := strings.Repeat("a", 60<<10)
	for _, tc := range []struct {
		name string
		raw  string
		want []int // distore's statuses; the first must be the reference's when it refuses
		// stricter: distore refuses what net/http would take (a body it
		// would read as chunked although it has a Content-Length).
		stricter bool
	}{
		{"CL space before colon", "PUT /v1/objects/a1 HTTP/1.1\r\nHost: x\r\nContent-Length : 47\r\n\r\n" + smuggled, []int{400}, false},
		{"TE space before colon", "PUT /v1/objects/a2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n" + smuggled, []int{400}, false},
		{"CL and TE", "PUT /v1/objects/a3 HTTP/1.1\r\nHost: x\r\nContent-Length: 52\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{411}, true},
		{"TE chunked only", "PUT /v1/objects/a4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{411}, true},
		{"two CLs", "PUT /v1/objects/a5 HTTP/1.1\r\nHost: x\r\nContent-Length: 47\r\nContent-Length: 0\r\n\r\n" + smuggled, []int{400}, false},
		// net/http unfolds obs-fold (RFC 9112 5.2 allows it): the body is the 47
		// bytes its Content-Length says, stored, not run.
		{"obs-fold", "PUT /v1/objects/a6 HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n b\r\nContent-Length: 47\r\n\r\n" + smuggled, []int{201}, false},
		{"bare LF", "GET /healthz HTTP/1.1\nHost: x\n\n", []int{200}, false},
		{"NUL in a header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", []int{400}, false},
		{"bad escape in target", "GET /v1/objects/%zz HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}, false},
		{"control byte in target", "GET /v1/objects/a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}, false},
		{"Host with a space", "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", []int{400}, false},
		{"empty Host", "GET /healthz HTTP/1.1\r\nHost:\r\n\r\n", []int{200}, false},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", []int{400}, false},
		{"head of 70 KiB", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n", []int{431}, false},
		{"head of 60 KiB", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + under + "\r\n\r\n", []int{200}, false},
		{"malformed request mid-pipeline", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /a b c d\r\nHost: x\r\n\r\n" + smuggled, []int{200, 400}, false},
		{"bad header mid-pipeline", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPUT /v1/objects/a7 HTTP/1.1\r\nHost: x\r\nContent-Length : 47\r\n\r\n" + smuggled, []int{200, 400}, false},
	} {
		wg.Go(func() {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := mem.Put(ctx, "victim", []byte("still here"), backend.PutOptions{}); err != nil && !errors.Is(err, backend.ErrExists) {
					t.Fatal(err)
				}
				got, bodies, closed := exchange(t, addr, tc.raw)
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Fatalf("statuses %v, want %v (bodies %q)", got, tc.want, bodies)
				}
				if last := tc.want[len(tc.want)-1]; last >= 400 && !closed {
					t.Errorf("connection left open after a %d", last)
				}
				refGot, _, _ := exchange(t, ref, tc.raw)
				if len(refGot) == 0 {
					t.Fatal("the reference answered nothing")
				}
				for i, s := range got {
					if s >= 400 && !tc.stricter && (i >= len(refGot) || refGot[i] != s) {
						t.Errorf("response %d: %d where net/http answers %v", i, s, refGot)
					}
					if s < 400 && i < len(refGot) && refGot[i] >= 400 {
						t.Errorf("response %d: %d where net/http refuses with %d", i, s, refGot[i])
					}
				}
				if _, err := mem.ObjectInfo(ctx, "victim"); err != nil {
					t.Fatalf("the body ran as a request: victim: %v", err)
				}
			})
		})
	}
	wg.Wait()
}

// TestPathAndQueryErrors: what ServeMux would redirect or take is a JSON error.
func TestPathAndQueryErrors(t *testing.T) {
	ts, _ := start(t, newMemory(t, 1<<20))
	addr := strings.TrimPrefix(ts.URL, "http://")
	var wg sync.WaitGroup // all at once, as in rawCases
	for _, tc := range []struct {
		raw    string
		status int
		code   string
	}{
		{"PUT /v1/objects/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx", 400, wire.CodeInvalidID},
		{"GET /v1/objects/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, wire.CodeInvalidID},
		{"GET /v1/objects/../x HTTP/1.1\r\nHost: x\r\n\r\n", 400, wire.CodeInvalidID},
		{"GET /v1/objects/%2e%2e/x HTTP/1.1\r\nHost: x\r\n\r\n", 400, wire.CodeInvalidID},
		{"GET /v1/../healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, wire.CodeInvalidArgument},
		{"GET //healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, wire.CodeInvalidArgument},
		{"GET /healthz?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", 400, wire.CodeInvalidArgument},
		{"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", 400, wire.CodeInvalidArgument},
		{"GET /v1/stats?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", 400, wire.CodeInvalidArgument},
		{"PATCH /v1/objects HTTP/1.1\r\nHost: x\r\n\r\n", 405, wire.CodeMethod},
	} {
		wg.Go(func() {
			t.Run(tc.raw[:strings.IndexByte(tc.raw, '\r')], func(t *testing.T) {
				got, bodies, _ := exchange(t, addr, tc.raw)
				if len(got) == 0 {
					t.Fatalf("%q: no answer", tc.raw)
				}
				var eb wire.ErrorBody
				if got[0] != tc.status || json.Unmarshal([]byte(bodies[0]), &eb) != nil || eb.Code != tc.code || eb.Message == "" {
					t.Errorf("%q: %d %q, want %d %s", tc.raw, got[0], bodies[0], tc.status, tc.code)
				}
			})
		})
	}
	wg.Wait()
}

// TestExpectContinueTaken: a put to a taken ID with Expect: 100-continue is
// refused before the body is asked for.
func TestExpectContinueTaken(t *testing.T) {
	ctx := context.Background()
	ts, c := start(t, newMemory(t, 1<<20))
	if _, err := c.Put(ctx, []byte("x"), client.PutOptions{ID: "taken"}); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /v1/objects/taken HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || resp.Header.Get(wire.HeaderErrorCode) != wire.CodeExists {
		t.Fatalf("put to a taken ID with Expect: %d %s, want 409 exists (and no 100 Continue)", resp.StatusCode, resp.Header.Get(wire.HeaderErrorCode))
	}
	// And a free ID gets its 100 Continue and is stored.
	info, err := c.PutReader(ctx, strings.NewReader("hello"), 5, client.PutOptions{ID: "free"})
	if err != nil || info.Size != 5 {
		t.Fatal(info, err)
	}
}

// dialSmallWindow dials addr with a 4 KiB receive buffer, so that a response
// the client does not read soon fills the socket and blocks the server's
// writes.
func dialSmallWindow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestStalledGet: a client that stops reading a get is cut off within the
// IO timeout, at every size, and the object's memory is freed once it is
// deleted.
func TestStalledGet(t *testing.T) {
	ctx := context.Background()
	const ioTO = 300 * time.Millisecond
	mem := newMemory(t, 96<<20)
	s, err := New(mem, Options{Logger: quietLogger(), IOTimeout: ioTO})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, ln, 5*time.Second) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	for _, size := range []int{4 << 10, 1 << 20, 64 << 20} {
		id := backend.ID(fmt.Sprintf("stall-%d", size))
		if _, err := mem.Put(ctx, id, randBytes(size), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		conn := dialSmallWindow(t, ln.Addr().String())
		fmt.Fprintf(conn, "GET /v1/objects/%s HTTP/1.1\r\nHost: x\r\n\r\n", id)
		time.Sleep(ioTO / 3) // the server is writing; the client reads nothing
		if err := mem.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for {
			st, err := mem.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Used == 0 {
				break
			}
			if time.Since(start) > ioTO+3*time.Second {
				t.Fatalf("%d bytes: a stalled reader still holds %d bytes %v after the delete (IO timeout %v)", size, st.Used, time.Since(start), ioTO)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// The server gave up on the connection: reading now ends (EOF or
		// reset) instead of waiting, and short of a large object's bytes. A
		// small response fits in the socket buffers and its connection may
		// stay open: reading it only drains what was sent.
		wait := 5 * time.Second
		if size <= 1<<20 {
			wait = ioTO + time.Second
		}
		conn.SetReadDeadline(time.Now().Add(wait))
		n, err := io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && size > 1<<20 {
			t.Fatalf("%d bytes: the connection is still open", size)
		}
		if size == 64<<20 && n >= int64(size) {
			t.Fatalf("%d bytes: all %d sent to a reader that had stopped", size, n)
		}
		conn.Close()
	}
}

// TestPutReply: a put answers its info in X-Distore-Info and, unless the
// client prefers return=minimal, the same info as a JSON body; a POST names
// the new object in Location, a PUT (whose path names it) does not.
func TestPutReply(t *testing.T) {
	ts, _ := start(t, newMemory(t, 16<<20))
	for _, tc := range []struct {
		method, path, prefer string
		minimal              bool
	}{
		{"PUT", "/v1/objects/p1", "", false},
		{"PUT", "/v1/objects/p2", "return=minimal", true},
		{"PUT", "/v1/objects/p3", "respond-async, RETURN=minimal", true},
		{"PUT", "/v1/objects/p4", "return=representation", false},
		{"POST", "/v1/objects", "return=minimal", true},
		{"POST", "/v1/objects", "", false},
	} {
		data := randBytes(1000)
		req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(string(data)))
		req.Header.Set("X-Distore-Importance", "4")
		if tc.prefer != "" {
			req.Header.Set("Prefer", tc.prefer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		name := tc.method + " " + tc.path + " Prefer: " + tc.prefer
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: %s %s", name, resp.Status, body)
		}
		info, err := wire.ParseInfo("", resp.Header)
		if err != nil || info.ID == "" || info.Size != 1000 || info.Importance != 4 || info.Checksum != backend.Checksum(data) ||
			info.Tier == "" || info.Created.IsZero() {
			t.Fatalf("%s: info header %q: %+v, %v", name, resp.Header.Get(wire.HeaderInfo), info, err)
		}
		if loc := resp.Header.Get("Location"); (tc.method == "POST") != (loc != "") ||
			(loc != "" && loc != wire.ObjectPath(info.ID)) {
			t.Errorf("%s: Location %q for %s", name, loc, info.ID)
		}
		if tc.minimal {
			if len(body) != 0 {
				t.Errorf("%s: body %q, want none", name, body)
			}
			continue
		}
		var fromJSON backend.ObjectInfo
		if err := json.Unmarshal(body, &fromJSON); err != nil || !fromJSON.Created.Equal(info.Created) ||
			fromJSON.ID != info.ID || fromJSON.Size != info.Size || fromJSON.Checksum != info.Checksum || fromJSON.Level != info.Level {
			t.Errorf("%s: JSON body %s (%v) is not the header's %+v", name, body, err, info)
		}
	}
}

// deadlineRecorder counts the deadlines a ResponseController sets on it.
type deadlineRecorder struct {
	http.ResponseWriter
	writes, reads []time.Time
	sizes         []int // of the writes
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.writes = append(d.writes, t)
	return nil
}
func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	d.reads = append(d.reads, t)
	return nil
}
func (d *deadlineRecorder) Write(p []byte) (int, error) {
	d.sizes = append(d.sizes, len(p))
	return len(p), nil
}

// TestDeadlineRenewal: a response's write deadline is moved only when less
// than nine tenths of the timeout remain on it, and after each renewal it is
// the timeout away; a body read keeps its deadline when the new one would be
// later by at most a tenth of the timeout, never when it would be earlier.
func TestDeadlineRenewal(t *testing.T) {
	const to = 10 * time.Second
	rw := &deadlineRecorder{}
	d := writeDeadline{rc: *http.NewResponseController(rw), timeout: to}
	t0 := time.Now()
	for _, step := range []struct {
		at  time.Duration
		set bool
	}{{0, true}, {to / 20, false}, {to / 10, false}, {to/10 + time.Millisecond, true}, {to / 5, false}, {5 * to, true}} {
		n := len(rw.writes)
		d.renew(t0.Add(step.at))
		if set := len(rw.writes) > n; set != step.set {
			t.Fatalf("renew at +%v: set %v, want %v", step.at, set, step.set)
		}
		if left := d.at.Sub(t0.Add(step.at)); left > to || left < to-to/10 {
			t.Fatalf("renew at +%v: the deadline is %v away", step.at, left)
		}
	}

	// Every route writes through the chain's recorder: in chunks of at most
	// writeChunk, each after a renewal (a timeout this short renews each time).
	under := &deadlineRecorder{}
	rec := &recorder{ResponseWriter: under}
	rec.deadline = writeDeadline{rc: *http.NewResponseController(under), timeout: time.Nanosecond}
	if n, err := rec.Write(make([]byte, 2*writeChunk+5)); n != 2*writeChunk+5 || err != nil {
		t.Fatalf("recorder wrote %d, %v", n, err)
	}
	if fmt.Sprint(under.sizes) != fmt.Sprint([]int{writeChunk, writeChunk, 5}) || len(under.writes) != 3 || rec.n != 2*writeChunk+5 {
		t.Fatalf("recorder: writes of %v under %d deadlines, counted %d", under.sizes, len(under.writes), rec.n)
	}
	// No ReadFrom: io.Copy into the recorder (sendBody, cluster fetches) must
	// come through Write, not net/http's ReadFrom under a single deadline.
	if _, ok := any(rec).(io.ReaderFrom); ok {
		t.Fatal("the recorder has ReadFrom: io.Copy into it would bypass the per-chunk deadline")
	}

	rd := &deadlineRecorder{}
	b := &bodyReader{r: strings.NewReader(strings.Repeat("x", 100)), rc: http.NewResponseController(rd), timeout: to, start: time.Now()}
	buf := make([]byte, 10)
	for range 5 {
		if _, err := b.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	if len(rd.reads) != 1 {
		t.Fatalf("5 quick reads set %d read deadlines, want 1", len(rd.reads))
	}
	b.set = time.Now().Add(2 * to) // later than a read may wait: moved back
	b.Read(buf)
	if len(rd.reads) != 2 || time.Until(rd.reads[1]) > to {
		t.Fatalf("read deadlines %v: want 2, the last at most %v away", rd.reads, to)
	}
	b.set = time.Now().Add(to / 2) // far earlier than a read is due: moved on
	b.Read(buf)
	if len(rd.reads) != 3 || time.Until(rd.reads[2]) < to-to/10 {
		t.Fatalf("read deadlines %v: want 3, the last about %v away", rd.reads, to)
	}
}
