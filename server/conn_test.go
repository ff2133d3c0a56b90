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
)

// loopServer runs the connection loop over h on a loopback port.
type loopServer struct {
	addr   string
	log    *testutil.SyncBuffer
	cancel context.CancelFunc
	done   chan error
}

// serveLoop serves h with the loop; tune changes the loop's settings. The
// server is shut down at cleanup (if the test did not) and must return nil.
func serveLoop(t *testing.T, h http.Handler, grace time.Duration, tune ...func(*httpLoop)) *loopServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveLoopOn(t, ln, h, grace, tune...)
}

func serveLoopOn(t *testing.T, ln net.Listener, h http.Handler, grace time.Duration, tune ...func(*httpLoop)) *loopServer {
	t.Helper()
	ls := &loopServer{addr: ln.Addr().String(), log: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	l := newLoop(h, slog.New(slog.NewTextHandler(ls.log, nil)))
	for _, f := range tune {
		f(l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ls.cancel = cancel
	go func() { ls.done <- l.serve(ctx, ln, grace) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err, ok := <-ls.done:
			if ok && err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return ls
}

// stop shuts the server down and returns Serve's error.
func (ls *loopServer) stop(t *testing.T, within time.Duration) error {
	t.Helper()
	ls.cancel()
	select {
	case err := <-ls.done:
		close(ls.done)
		return err
	case <-time.After(within):
		t.Fatalf("Serve did not return within %v", within)
		return nil
	}
}

// rawConn is a client connection that speaks raw HTTP.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{Conn: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// reply is a response read whole.
type reply struct {
	*http.Response
	body []byte
}

// read reads one response to a request of method, with its body.
func (c *rawConn) read(t *testing.T, method string) reply {
	t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	return reply{resp, body}
}

// expectEOF checks that the server closed the connection.
func (c *rawConn) expectEOF(t *testing.T) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.br.Read(make([]byte, 1))
	if n != 0 || (err != io.EOF && !errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("connection still open: read %d bytes, %v", n, err)
	}
}

// echo answers with the method, path and body length, and whatever the
// query asks: ?cl=1 declares a Content-Length, ?n=N writes N bytes.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	msg := fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, len(body))
	if n, _ := strconv.Atoi(r.URL.Query().Get("n")); n > 0 {
		msg = strings.Repeat("x", n)
	}
	if r.URL.Query().Get("cl") != "" {
		w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
	}
	io.WriteString(w, msg)
}

// TestConnPipelined: requests sent together on one connection are all
// answered, in order.
func TestConnPipelined(t *testing.T) {
	ls := serveLoop(t, http.HandlerFunc(echo), time.Second)
	c := dialRaw(t, ls.addr)
	c.send(t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"+
		"PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"+
		"GET /c?cl=1 HTTP/1.1\r\nHost: x\r\n\r\n"+
		"HEAD /d HTTP/1.1\r\nHost: x\r\n\r\n"+
		"DELETE /e HTTP/1.1\r\nHost: x\r\n\r\n")
	for i, want := range []string{"GET /a 0", "PUT /b 5", "GET /c 0", "", "DELETE /e 0"} {
		method := http.MethodGet
		if i == 3 {
			method = http.MethodHead
		}
		r := c.read(t, method)
		if r.StatusCode != 200 || string(r.body) != want || r.Close {
			t.Fatalf("response %d: %d %q close=%v, want 200 %q", i, r.StatusCode, r.body, r.Close, want)
		}
	}
}

// TestConnKeepAlive: many requests on one connection, each answered with a
// Content-Length (small bodies) or chunked (large ones), none closing it.
func TestConnKeepAlive(t *testing.T) {
	var conns sync.Map
	ls := serveLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Store(r.RemoteAddr, true)
		echo(w, r)
	}), time.Second)
	c := dialRaw(t, ls.addr)
	for i := range 500 {
		n := i % 7 * 5000 // up to 30000: past maxPending, chunked
		c.send(t, fmt.Sprintf("POST /k%d?n=%d HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", i, n))
		r := c.read(t, "POST")
		want := fmt.Sprintf("POST /k%d 3", i)
		if n > 0 {
			want = strings.Repeat("x", n)
		}
		if r.StatusCode != 200 || string(r.body) != want || r.Close {
			t.Fatalf("request %d: %d %d bytes close=%v", i, r.StatusCode, len(r.body), r.Close)
		}
		chunked := len(r.TransferEncoding) > 0
		if (n > maxPending) != chunked || (!chunked && r.ContentLength != int64(len(want))) {
			t.Fatalf("request %d, %d bytes: chunked %v, Content-Length %d", i, n, chunked, r.ContentLength)
		}
	}
	n := 0
	conns.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("requests came on %d connections, want 1", n)
	}
}

// TestConnHTTP10: an HTTP/1.0 request closes the connection unless it asks
// for keep-alive; a body of unknown length is then delimited by the close.
func TestConnHTTP10(t *testing.T) {
	ls := serveLoop(t, http.HandlerFunc(echo), time.Second)

	c := dialRaw(t, ls.addr)
	c.send(t, "GET /a HTTP/1.0\r\n\r\n")
	if r := c.read(t, "GET"); r.StatusCode != 200 || string(r.body) != "GET /a 0" || !r.Close {
		t.Fatalf("HTTP/1.0: %d %q close=%v", r.StatusCode, r.body, r.Close)
	}
	c.expectEOF(t)

	c = dialRaw(t, ls.addr)
	c.send(t, "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	r := c.read(t, "GET")
	if r.StatusCode != 200 || string(r.body) != "GET /b 0" || r.Close || r.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("HTTP/1.0 keep-alive: %d %q close=%v %v", r.StatusCode, r.body, r.Close, r.Header)
	}
	// Too big to hold back: no length known, so the body ends with the connection.
	c.send(t, fmt.Sprintf("GET /c?n=%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", maxPending+1))
	r = c.read(t, "GET")
	if r.StatusCode != 200 || len(r.body) != maxPending+1 || r.ContentLength != -1 || len(r.TransferEncoding) != 0 {
		t.Fatalf("HTTP/1.0 long body: %d, %d bytes, Content-Length %d, %v", r.StatusCode, len(r.body), r.ContentLength, r.TransferEncoding)
	}
	c.expectEOF(t)
}

// TestConnClose: Connection: close from the client, or from the handler,
// ends the connection after the response.
func TestConnClose(t *testing.T) {
	ls := serveLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bye" {
			w.Header().Set("Connection", "close")
		}
		echo(w, r)
	}), time.Second)
	c := dialRaw(t, ls.addr)
	c.send(t, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if r := c.read(t, "GET"); r.StatusCode != 200 || !r.Close || string(r.body) != "GET /a 0" {
		t.Fatalf("client close: %d %q close=%v", r.StatusCode, r.body, r.Close)
	}
	c.expectEOF(t)

	c = dialRaw(t, ls.addr)
	c.send(t, "GET /bye HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(t, "GET"); r.StatusCode != 200 || !r.Close {
		t.Fatalf("handler close: %d close=%v", r.StatusCode, r.Close)
	}
	c.expectEOF(t)
}

// TestConnHead: a HEAD response has no body, even when the handler writes
// one; its Content-Length is what a GET would send.
func TestConnHead(t *testing.T) {
	ls := serveLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/declared":
			w.Header().Set("Content-Length", "100000")
			w.Write(make([]byte, 100000))
		case "/big":
			w.Write(make([]byte, 3*maxPending))
		default:
			io.WriteString(w, "twelve bytes")
		}
	}), time.Second)
	c := dialRaw(t, ls.addr)
	// Pipelined: were a body sent, the next response would not parse.
	c.send(t, "HEAD /written HTTP/1.1\r\nHost: x\r\n\r\nHEAD /declared HTTP/1.1\r\nHost: x\r\n\r\n"+
		"HEAD /big HTTP/1.1\r\nHost: x\r\n\r\nGET /written HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []int64{12, 100000, 3 * maxPending} {
		r := c.read(t, "HEAD")
		if r.StatusCode != 200 || r.ContentLength != want || len(r.body) != 0 {
			t.Fatalf("HEAD: %d, Content-Length %d, body %q", r.StatusCode, r.ContentLength, r.body)
		}
	}
	// The raw bytes of the GET's response: exactly its header and 12 bytes.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, _ := c.br.Peek(c.br.Buffered())
	if r := c.read(t, "GET"); string(r.body) != "twelve bytes" {
		t.Fatalf("GET after HEADs: %q (raw %q)", r.body, raw)
	}
}

// TestConnNoBodyStatus: 204 and 304 carry no body, and writing one fails.
func TestConnNoBodyStatus(t *testing.T) {
	var writeErr atomic.Value
	ls := serveLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(code)
		if _, err := io.WriteString(w, "nope"); err != nil {
			writeErr.Store(err)
		}
	}), time.Second)
	c := dialRaw(t, ls.addr)
	c.send(t, "GET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /200 HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []int{204, 304} {
		if r := c.read(t, "GET"); r.StatusCode != want || len(r.body) != 0 || r.Header.Get("Content-Length") != "" {
			t.Fatalf("%d: got %d, body %q, %v", want, r.StatusCode, r.body, r.Header)
		}
	}
	if r := c.read(t, "GET"); r.StatusCode != 200 || string(r.body) != "nope" {
		t.Fatalf("200 after 204/304: %d %q", r.StatusCode, r.body)
	}
	if err, _ := writeErr.Load().(error); !errors.Is(err, http.ErrBodyNotAllowed) {
		t.Fatalf("writing a 204's body: %v", err)
	}
}

// TestConnChunkedBody: a chunked request body reaches the handler whole and
// the connection goes on after it.
func TestConnChunkedBody(t *testing.T) {
	ls := serveLoop(t, http.HandlerFunc(echo), time.Second)
	c := dialRaw(t, ls.addr)
	c.send(t, "POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
	if r := c.read(t, "POST"); r.StatusCode != 200 || string(r.body) != "POST /chunks 11" {
		t.Fatalf("chunked body: %d %q", r.StatusCode, r.body)
	}
	c.send(t, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(t, "GET"); r.StatusCode != 200 || string(r.body) != "GET /after 0" {
		t.Fatalf("after a chunked body: %d %q", r.StatusCode, r.body)
	}
}

// TestConnUnreadBody: a body the handler did not read is discarded to keep
// the connection when it is small, and closes the connection when it is not.
func TestConnUnreadBody(t *testing.T) {
	ls := serveLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict) // answers without reading
	}), time.Second)
	c := dialRaw(t, ls.addr)
	small := 100 << 10
	c.send(t, fmt.Sprintf("PUT /small HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", small))
	c.send(t, strings.Repeat("s", small))
	if r := c.read(t, "PUT"); r.StatusCode != 409 || r.Close {
		t.Fatalf("small unread body: %d close=%v", r.StatusCode, r.Close)
	}
	c.send(t, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(t, "GET"); r.StatusCode != 409 {
		t.Fatalf("after the small unread body: %d", r.StatusCode)
	}

	c = dialRaw(t, ls.addr)
	huge := 64 << 20
	c.send(t, fmt.Sprintf("PUT /huge HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", huge))
	go func() { // the server stops reading: send from the side
		c.Write(make([]byte, huge))
	}()
	r := c.read(t, "PUT")
	if r.StatusCode != 409 || !r.Close {
		t.Fatalf("huge unread body: %d close=%v", r.StatusCode, r.Close)
	}
	c.expectEOF(t)
}

// TestConnExpectContinue: 100 Continue comes when the handler reads the
// body, not before; a handler that answers without reading closes the
// connection (the client never sent the body).
func TestConnExpectContinue(t *testing.T) {
	ls := serveLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reject" {
			http.Error(w, "no room", http.StatusInsufficientStorage)
			return
		}
		echo(w, r)
	}), time.Second)
	c := dialRaw(t, ls.addr)
	c.send(t, "PUT /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	if r := c.read(t, "PUT"); r.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue first, got %d", r.StatusCode)
	}
	c.send(t, "hello")
	if r := c.read(t, "PUT"); r.StatusCode != 200 || string(r.body) != "PUT /ok 5" || r.Close {
		t.Fatalf("after 100 Continue: %d %q close=%v", r.StatusCode, r.body, r.Close)
	}

	c.send(t, "PUT /reject HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	if r := c.read(t, "PUT"); r.StatusCode != http.StatusInsufficientStorage || !r.Close {
		t.Fatalf("rejected put: %d close=%v", r.StatusCode, r.Close)
	}
	c.expectEOF(t)

	c = dialRaw(t, ls.addr)
	c.send(t, "PUT /odd HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: something-else\r\n\r\nhello")
	if r := c.read(t, "PUT"); r.StatusCode != http.StatusExpectationFailed {
		t.Fatalf("unknown Expect: %d", r.StatusCode)
	}
}

// TestConnExpectContinueClient: the Go client's puts with Expect:
// 100-continue go through the real server.
func TestConnExpectContinueClient(t *testing.T) {
	ctx := context.Background()
	mem := newMemory(t, 32<<20)
	s, err := New(mem, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx2, ln, time.Second) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	c, err := client.New("http://"+ln.Addr().String(), client.WithExpectContinue(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, size := range []int{1, 100 << 10, 3 << 20} {
		data := randBytes(size)
		id := backend.ID(fmt.Sprintf("e%d", i))
		if _, err := c.Put(ctx, data, client.PutOptions{ID: id}); err != nil {
			t.Fatalf("put %d: %v", size, err)
		}
		got, err := c.Get(ctx, id)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get %d: %d bytes, %v", size, len(got), err)
		}
	}
	// Refused before the body: the ID is taken.
	if _, err := c.Put(ctx, randBytes(3<<20), client.PutOptions{ID: "e2"}); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("put of a taken ID: %v", err)
	}
	if _, err := c.Put(ctx, randBytes(10), client.PutOptions{ID: "e3"}); err != nil {
		t.Fatalf("put after a refused one: %v", err)
	}
}

// TestConnMalformed: a request the loop cannot parse gets a 400 in the API's
// JSON error shape, and the connection closes.
func TestConnMalformed(t *testing.T) {
	var called atomic.Bool
	ls := serveLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called.Store(true) }), time.Second)
	for _, req := range []string{
		"NONSENSE\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
		"GET /x HTTP/1.1\r\n\r\n", // no Host
		"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: -4\r\n\r\n",
	} {
		c := dialRaw(t, ls.addr)
		c.send(t, req)
		r := c.read(t, "GET")
		var eb ErrorBody
		if err := json.Unmarshal(r.body, &eb); err != nil || r.StatusCode != 400 || eb.Code != CodeInvalidArgument ||
			eb.Message == "" || r.Header.Get(HeaderErrorCode) != CodeInvalidArgument || !r.Close {
			t.Fatalf("%q: %d %q %v", req, r.StatusCode, r.body, r.Header)
		}
		c.expectEOF(t)
	}
	if called.Load() {
		t.Fatal("the handler saw a malformed request")
	}
}

// TestConnHeaderTooLarge: headers over the limit get a 431.
func TestConnHeaderTooLarge(t *testing.T) {
	ls := serveLoop(t, http.HandlerFunc(echo), time.Second)
	c := dialRaw(t, ls.addr)
	go c.Write([]byte("GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 2*maxHeaderBytes) + "\r\n\r\n"))
	r := c.read(t, "GET")
	if r.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !r.Close || !strings.Contains(string(r.body), CodeInvalidArgument) {
		t.Fatalf("big header: %d %q", r.StatusCode, r.body)
	}
	// Just under the limit is fine.
	c = dialRaw(t, ls.addr)
	c.send(t, "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("b", maxHeaderBytes-1024)+"\r\n\r\n")
	if r := c.read(t, "GET"); r.StatusCode != 200 {
		t.Fatalf("header under the limit: %d", r.StatusCode)
	}
}

// TestConnPanic: a panic of a handler or of a quick request is logged and
// answered 500 (if nothing was sent yet) or cuts the response (if it was);
// the server goes on.
func TestConnPanic(t *testing.T) {
	ls := serveLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "partial")
		}
		if r.URL.Path != "/fine" {
			panic("handler bug " + r.URL.Path)
		}
		io.WriteString(w, "fine")
	}), time.Second)
	c := dialRaw(t, ls.addr)
	c.send(t, "GET /early HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.read(t, "GET")
	var eb ErrorBody
	if err := json.Unmarshal(r.body, &eb); err != nil || r.StatusCode != 500 || eb.Code != CodeInternal || !r.Close {
		t.Fatalf("panic before the header: %d %q", r.StatusCode, r.body)
	}
	c.expectEOF(t)

	c = dialRaw(t, ls.addr)
	c.send(t, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("panic after the header: %v", err)
	}
	if body, err := io.ReadAll(resp.Body); string(body) != "partial" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("panic after the header: body %q, %v (want a cut body)", body, err)
	}

	c = dialRaw(t, ls.addr)
	c.send(t, "GET /fine HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(t, "GET"); r.StatusCode != 200 || string(r.body) != "fine" {
		t.Fatalf("after panics: %d %q", r.StatusCode, r.body)
	}
	for _, p := range []string{"handler bug /early", "handler bug /late"} {
		if !strings.Contains(ls.log.String(), p) {
			t.Errorf("panic %q not logged: %s", p, ls.log.String())
		}
	}

	// A quick request's panic is answered as a handler's before its header.
	ls = serveLoop(t, http.HandlerFunc(echo), time.Second, func(l *httpLoop) {
		l.quick = quickFunc(func(context.Context, *bufio.Writer, quickReq) bool { panic("quick bug") })
	})
	c = dialRaw(t, ls.addr)
	c.send(t, "GET /v1/objects/x HTTP/1.1\r\nHost: x\r\n\r\n")
	r = c.read(t, "GET")
	if err := json.Unmarshal(r.body, &eb); err != nil || r.StatusCode != 500 || eb.Code != CodeInternal || !r.Close {
		t.Fatalf("panic in a quick request: %d %q", r.StatusCode, r.body)
	}
	c.expectEOF(t)
	if !strings.Contains(ls.log.String(), "quick bug") {
		t.Errorf("quick panic not logged: %s", ls.log.String())
	}
}

// TestConnGracefulShutdown: on shutdown, idle connections close at once, an
// in-flight request finishes (told Connection: close), and Serve returns nil.
func TestConnGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var ctxErr atomic.Value
	ls := serveLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
			if err := r.Context().Err(); err != nil {
				ctxErr.Store(err)
			}
		}
		io.WriteString(w, "done "+r.URL.Path)
	}), 10*time.Second)
	idle := dialRaw(t, ls.addr)
	idle.send(t, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := idle.read(t, "GET"); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	busy := dialRaw(t, ls.addr)
	busy.send(t, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered

	stopped := make(chan error, 1)
	go func() { stopped <- ls.stop(t, 10*time.Second) }()
	idle.expectEOF(t) // at once, while /slow still runs
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned while a request was in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := net.DialTimeout("tcp", ls.addr, time.Second); err == nil {
		t.Error("still accepting after shutdown began")
	}
	close(release)
	r := busy.read(t, "GET")
	if r.StatusCode != 200 || string(r.body) != "done /slow" || !r.Close {
		t.Fatalf("in-flight request: %d %q close=%v", r.StatusCode, r.body, r.Close)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve after a clean shutdown: %v", err)
	}
	if err := ctxErr.Load(); err != nil {
		t.Fatalf("the in-flight request's context was cancelled: %v", err)
	}
}

// TestConnForceClose: requests still running after the grace period have
// their connections closed and contexts cancelled, and Serve says so.
func TestConnForceClose(t *testing.T) {
	entered := make(chan struct{})
	cancelled := make(chan struct{})
	ls := serveLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(20 * time.Second):
		}
	}), 200*time.Millisecond)
	c := dialRaw(t, ls.addr)
	c.send(t, "GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered
	start := time.Now()
	err := ls.stop(t, 10*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Serve after a forced shutdown: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Serve returned after %v with a 200ms grace", d)
	}
	select {
	case <-cancelled:
	default:
		t.Fatal("the stuck request's context was not cancelled")
	}
	c.expectEOF(t)
}

// quickFunc is a quickServer made of a function.
type quickFunc func(ctx context.Context, bw *bufio.Writer, q quickReq) bool

func (f quickFunc) serveQuick(ctx context.Context, bw *bufio.Writer, q quickReq) bool {
	return f(ctx, bw, q)
}

// TestConnClientGone: a request that runs longer than watchDelay — served by
// a handler, or a quick put waiting for room — learns that its client left
// (its context is cancelled); and the watch of a slow one keeps the first
// byte of the request pipelined behind it.
func TestConnClientGone(t *testing.T) {
	gone := make(chan error, 1)
	wait := func(ctx context.Context) {
		select {
		case <-ctx.Done():
			gone <- ctx.Err()
		case <-time.After(10 * time.Second):
			gone <- nil
		}
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/wait":
			wait(r.Context())
		case "/slow":
			time.Sleep(100 * time.Millisecond)
		}
		io.WriteString(w, r.URL.Path)
	})
	quick := quickFunc(func(ctx context.Context, bw *bufio.Writer, q quickReq) bool {
		switch q.id {
		case "wait":
			wait(ctx)
			return false
		case "slow":
			time.Sleep(100 * time.Millisecond)
		}
		bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
		return true
	})
	for _, tc := range []struct {
		name        string
		quick       quickServer
		wait, slow  string
		slowMethod  string
		slowAnswers string
	}{
		{"handler", nil, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n", "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/slow"},
		{"quick put", quick, "PUT /v1/objects/wait HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
			"PUT /v1/objects/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx", "PUT", "slow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls := serveLoop(t, handler, time.Second, func(l *httpLoop) { l.quick = tc.quick })
			c := dialRaw(t, ls.addr)
			c.send(t, tc.wait)
			time.Sleep(2 * watchDelay)
			c.Close()
			select {
			case err := <-gone:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("context of a request whose client left: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the request did not learn that its client left")
			}

			c = dialRaw(t, ls.addr)
			c.send(t, tc.slow)
			time.Sleep(2 * watchDelay)
			c.send(t, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
			for _, want := range []struct{ method, body string }{{tc.slowMethod, tc.slowAnswers}, {"GET", "/next"}} {
				if r := c.read(t, want.method); r.StatusCode != 200 || string(r.body) != want.body {
					t.Fatalf("want %s: %d %q", want.body, r.StatusCode, r.body)
				}
			}
		})
	}
}

// TestConnIdleBuffers: a connection idle past idleKeep gives its buffers
// back and still serves the next request; past the idle timeout it closes.
func TestConnIdleBuffers(t *testing.T) {
	ls := serveLoop(t, http.HandlerFunc(echo), time.Second, func(l *httpLoop) {
		l.idleKeep = 10 * time.Millisecond
		l.idleTimeout = 300 * time.Millisecond
	})
	c := dialRaw(t, ls.addr)
	for i := range 3 {
		c.send(t, fmt.Sprintf("PUT /i%d HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", i))
		if r := c.read(t, "PUT"); r.StatusCode != 200 || string(r.body) != fmt.Sprintf("PUT /i%d 3", i) {
			t.Fatalf("request %d after idling: %d %q", i, r.StatusCode, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	c.expectEOF(t)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("idle connection closed after %v, idle timeout 300ms", d)
	}
}

// TestConnFlush: Flush sends the header and what was written at once,
// chunked, while the handler goes on.
func TestConnFlush(t *testing.T) {
	release := make(chan struct{})
	ls := serveLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first ")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Error(err)
		}
		<-release
		io.WriteString(w, "second")
	}), time.Second)
	c := dialRaw(t, ls.addr)
	c.send(t, "GET /f HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first " {
		t.Fatalf("flushed part: %q %v", first, err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second" || len(resp.TransferEncoding) == 0 {
		t.Fatalf("rest: %q %v %v", rest, err, resp.TransferEncoding)
	}
}

// flakyListener fails its first Accepts with a temporary error.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

type tempErr struct{}

func (tempErr) Error() string   { return "too many open files (test)" }
func (tempErr) Temporary() bool { return true }
func (tempErr) Timeout() bool   { return false }

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, tempErr{}
	}
	return l.Listener.Accept()
}

// TestConnAcceptBackoff: temporary accept errors are retried, not fatal.
func TestConnAcceptBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: ln}
	fl.fails.Store(3)
	ls := serveLoopOn(t, fl, http.HandlerFunc(echo), time.Second)
	c := dialRaw(t, ls.addr)
	c.send(t, "GET /up HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(t, "GET"); r.StatusCode != 200 {
		t.Fatalf("after temporary accept errors: %d", r.StatusCode)
	}
	if n := strings.Count(ls.log.String(), "accept failed"); n != 3 {
		t.Fatalf("%d accept failures logged, want 3", n)
	}
}

// TestConnRequestFields: handlers see RemoteAddr, the local address, and a
// context that ends when the handler returns.
func TestConnRequestFields(t *testing.T) {
	var mu sync.Mutex
	var ctxs []context.Context
	ls := serveLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ctxs = append(ctxs, r.Context())
		mu.Unlock()
		fmt.Fprintf(w, "%s %v", r.RemoteAddr, r.Context().Value(http.LocalAddrContextKey))
	}), time.Second)
	c := dialRaw(t, ls.addr)
	c.send(t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.read(t, "GET")
	if want := c.LocalAddr().String() + " " + ls.addr; string(r.body) != want {
		t.Fatalf("got %q, want %q", r.body, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ctxs) != 1 {
		t.Fatalf("%d requests seen", len(ctxs))
	}
	select {
	case <-ctxs[0].Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a request's context lives on after its handler")
	}
}
