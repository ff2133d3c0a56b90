package server

// distore's own HTTP/1.1 connection loop. net/http's server costs, per
// request, more syscalls and goroutine wake-ups than the request itself on
// loopback: 4 KiB buffers (a 4 KiB put takes two reads, a 4 KiB get two
// writes) and a background read per body-less request. This loop reads
// through 64 KiB buffers, writes a small response in one syscall at the end
// of the request, and only watches a connection for the client going away
// once a handler has run for a while.

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
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"distore/internal/httpwire"
)

// Limits and timeouts of the connection loop.
const (
	connBufSize      = 64 << 10        // read and write buffer of a connection
	maxHeaderBytes   = 64 << 10        // request line and headers; more is a 431
	maxPending       = 16 << 10        // response body held back to learn its length
	maxDiscard       = 256 << 10       // unread request body discarded to keep a connection
	discardTimeout   = 5 * time.Second // how long that discard may take
	lingerTimeout    = time.Second     // reading leftovers after a close, so the client sees the reply, not a reset
	forceWait        = 5 * time.Second // how long Serve waits for handlers after a force close
	watchDelay       = 20 * time.Millisecond
	defaultIdleKeep  = time.Second // an idle connection keeps its buffers this long
	defaultHeaderTO  = 30 * time.Second
	defaultIdleTO    = 5 * time.Minute
	maxAcceptBackoff = time.Second
)

// aLongTimeAgo is a deadline in the past: it aborts a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// quickServer answers a quick request (see reqParser.quick) straight into
// the connection's write buffer, without an http.Request, a header map or
// a context of its own: on loopback that is half of what a 4 KiB get or put
// costs the server. false: it wrote nothing and changed nothing, and the
// request takes the general path (which reports any error).
type quickServer interface {
	serveQuick(ctx context.Context, bw *bufio.Writer, q quickReq) bool
}

// httpLoop serves an http.Handler on a listener with distore's own loop.
type httpLoop struct {
	h             http.Handler
	quick         quickServer // nil: every request goes to h
	log           *slog.Logger
	headerTimeout time.Duration // from a request's first byte to its last header
	idleTimeout   time.Duration // between requests on a connection
	idleKeep      time.Duration // idle time after which a connection's buffers go back to the pool
}

func newLoop(h http.Handler, log *slog.Logger) *httpLoop {
	l := &httpLoop{h: h, log: log, headerTimeout: defaultHeaderTO, idleTimeout: defaultIdleTO, idleKeep: defaultIdleKeep}
	l.quick, _ = h.(quickServer)
	return l
}

// serveState tracks the connections of one Serve call.
type serveState struct {
	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing atomic.Bool // shutdown began: no new requests, close when idle
	wg      sync.WaitGroup
	base    context.Context // Serve's context without its cancellation: the root of request contexts
}

// add registers a new connection, or reports false during shutdown.
func (st *serveState) add(c *conn) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closing.Load() {
		return false
	}
	st.conns[c] = struct{}{}
	st.wg.Add(1)
	return true
}

func (st *serveState) remove(c *conn) {
	st.mu.Lock()
	delete(st.conns, c)
	st.mu.Unlock()
}

// setActive marks c as serving a request; false during shutdown, when c
// must close instead.
func (st *serveState) setActive(c *conn, active bool) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closing.Load() {
		return false
	}
	c.active = active
	return true
}

// serve accepts on ln until ctx ends, then shuts down: it stops accepting,
// closes idle connections, waits up to grace for the active ones, then closes
// them too (cancelling their requests' contexts).
func (l *httpLoop) serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	st := &serveState{conns: map[*conn]struct{}{}, base: context.WithoutCancel(ctx)}
	acceptErr := make(chan error, 1)
	go func() { acceptErr <- l.accept(ln, st) }()

	var err error
	select {
	case err = <-acceptErr: // the listener failed: shut down what runs
	case <-ctx.Done():
		_ = ln.Close()
		if e := <-acceptErr; !errors.Is(e, net.ErrClosed) {
			err = e
		}
	}

	st.mu.Lock()
	st.closing.Store(true)
	for c := range st.conns {
		if !c.active {
			_ = c.nc.Close()
		}
	}
	st.mu.Unlock()
	done := make(chan struct{})
	go func() { st.wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return err
	case <-t.C:
	}

	st.mu.Lock()
	n := len(st.conns)
	for c := range st.conns {
		_ = c.nc.Close()
		c.cancelRequest()
	}
	st.mu.Unlock()
	l.log.Warn("graceful shutdown incomplete; closed remaining connections", "grace", grace, "connections", n)
	select {
	case <-done:
	case <-time.After(forceWait):
		l.log.Error("handlers still running after their connections were closed", "wait", forceWait)
	}
	return errors.Join(err, fmt.Errorf("server: shutdown: %d connections still active after %v: %w", n, grace, context.DeadlineExceeded))
}

// accept runs the accept loop; it returns the listener's error.
func (l *httpLoop) accept(ln net.Listener, st *serveState) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() && !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: wait, do not spin.
				delay = min(max(2*delay, 5*time.Millisecond), maxAcceptBackoff)
				l.log.Warn("accept failed; retrying", "err", err, "in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("server: accept: %w", err)
		}
		delay = 0
		c := newConn(l, st, nc)
		if !st.add(c) {
			_ = nc.Close()
			continue
		}
		go c.serve()
	}
}

// bufs are a connection's buffers, pooled: 128 KiB that an idle connection
// gives back.
type bufs struct {
	br   *bufio.Reader
	bw   *bufio.Writer
	pend []byte // a response body held back until its length is known
}

var bufsPool = sync.Pool{New: func() any {
	return &bufs{br: bufio.NewReaderSize(nil, connBufSize), bw: bufio.NewWriterSize(nil, connBufSize)}
}}

// conn is one client connection.
type conn struct {
	l      *httpLoop
	st     *serveState
	nc     net.Conn
	cr     connReader
	b      *bufs // nil while long idle
	remote string
	base   context.Context // the parent of request contexts: never cancelled itself
	// quickCtx is the context of quick requests: the connection's, cancelled
	// when it dies or is force-closed (a quick request needs none of its own).
	quickCtx    context.Context
	quickCancel context.CancelFunc
	active      bool // serving a request; guarded by st.mu

	broken atomic.Bool // a read or write failed: close after this request
	resp   response    // the response of the current request
	body   reqBody     // the request body of the current request
	hdr    http.Header // the response header map, cleared for each request
	rp     reqParser   // the fast path's parser, with its reused request parts
	rd     time.Time   // the read deadline in force, as set through setReadDeadline

	// The watch: a handler that runs longer than watchDelay, once the
	// request body is read, gets a goroutine that reads the connection, so
	// that a client going away cancels the request's context (as
	// net/http's background read does, but only for slow requests).
	mu        sync.Mutex
	reqDone   bool // the handler returned: start no watch
	bodyDone  bool // the request body is read and nothing is buffered behind it
	late      bool // the timer fired before bodyDone
	watching  bool
	dead      bool               // the connection died or was force-closed
	reqCancel context.CancelFunc // cancels the current request's context
	timer     *time.Timer
	timerDone chan struct{} // the timer's function finished
	watchDone chan struct{} // the watch goroutine finished
}

func newConn(l *httpLoop, st *serveState, nc net.Conn) *conn {
	c := &conn{l: l, st: st, nc: nc, remote: nc.RemoteAddr().String(),
		timerDone: make(chan struct{}, 1), watchDone: make(chan struct{}, 1)}
	c.cr.c = c
	// Request contexts derive from a context that is never cancelled, so
	// that making and cancelling one per request touches no shared parent;
	// the connection cancels the current one itself when it dies.
	c.base = context.WithValue(st.base, http.LocalAddrContextKey, nc.LocalAddr())
	c.quickCtx, c.quickCancel = context.WithCancel(c.base)
	c.timer = time.AfterFunc(time.Hour, c.onTimer)
	c.timer.Stop()
	return c
}

// connReader is what the read buffer reads from: the connection, with the
// header size limit, a byte the watch read, and a flush of pending output
// before a read that may block (so a response never waits on input).
type connReader struct {
	c       *conn
	limited bool
	remain  int64
	hit     bool // the limit was reached
	hasByte bool
	byteBuf [1]byte
}

func (cr *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if cr.hasByte {
		p[0], cr.hasByte = cr.byteBuf[0], false
		return 1, nil
	}
	if cr.limited {
		if cr.remain <= 0 {
			cr.hit = true
			return 0, io.EOF
		}
		if int64(len(p)) > cr.remain {
			p = p[:cr.remain]
		}
	}
	if b := cr.c.b; b != nil && b.bw.Buffered() > 0 {
		if err := b.bw.Flush(); err != nil {
			return 0, err
		}
	}
	n, err := cr.c.nc.Read(p)
	cr.remain -= int64(n)
	return n, err
}

func (cr *connReader) setLimit(n int64) { cr.limited, cr.remain, cr.hit = true, n, false }

func (c *conn) getBufs() {
	c.b = bufsPool.Get().(*bufs)
	c.b.br.Reset(&c.cr)
	c.b.bw.Reset(c.nc)
}

func (c *conn) putBufs() {
	if c.b == nil {
		return
	}
	c.b.br.Reset(nil)
	c.b.bw.Reset(nil)
	if cap(c.b.pend) > maxPending {
		c.b.pend = nil
	}
	c.b.pend = c.b.pend[:0]
	bufsPool.Put(c.b)
	c.b = nil
}

// serve runs the connection's requests one after another.
func (c *conn) serve() {
	linger := false
	defer func() {
		if p := recover(); p != nil {
			c.l.log.Error("panic in the connection loop", "remote", c.remote, "panic", p, "stack", string(debug.Stack()))
			linger = false
		}
		c.close(linger)
		c.st.wg.Done()
	}()
	c.getBufs()
	for first := true; ; first = false {
		if !c.next(first) {
			return
		}
		var keep bool
		keep, linger = c.serveOne()
		if !keep || !c.st.setActive(c, false) {
			return
		}
	}
}

// close flushes and closes the connection. With linger, it first stops
// sending and reads what the client still sends for a moment, so that
// unread input does not make the kernel reset the connection before the
// client has read the response.
func (c *conn) close(linger bool) {
	c.st.mu.Lock()
	c.active = false // during shutdown, Serve closes a lingering connection at once
	c.st.mu.Unlock()
	if c.b != nil && !c.broken.Load() {
		_ = c.b.bw.Flush()
	}
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && linger && !c.broken.Load() {
		if cw.CloseWrite() == nil {
			_ = c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
			_, _ = io.CopyN(io.Discard, c.nc, 4<<20)
		}
	}
	_ = c.nc.Close()
	c.cancelRequest()
	c.timer.Stop()
	c.st.remove(c)
	c.putBufs()
}

// next waits for the first byte of the next request and marks the
// connection active. It returns false when the connection should close:
// the client closed it, it stayed idle too long, or the server shuts down.
func (c *conn) next(first bool) bool {
	if c.cr.hasByte || c.b.br.Buffered() > 0 {
		return c.st.setActive(c, true)
	}
	now := time.Now()
	timeout := c.l.idleTimeout
	if first {
		timeout = c.l.headerTimeout
	}
	deadline := now.Add(timeout)
	if keep := c.l.idleKeep; keep < timeout {
		// A deadline still at least keep/2 away stays: setting one on every
		// request costs, and the buffers may as well go back a little early
		// or late.
		if c.rd.Before(now.Add(keep/2)) || c.rd.After(deadline) {
			c.setReadDeadline(now.Add(keep))
		}
		_, err := c.b.br.Peek(1)
		if err == nil {
			return c.st.setActive(c, true)
		}
		if !isTimeout(err) {
			return false
		}
		// Idle for a while: give the buffers back until a request comes.
		c.putBufs()
	}
	c.setReadDeadline(deadline)
	if n, _ := c.nc.Read(c.cr.byteBuf[:]); n == 0 {
		return false
	}
	c.cr.hasByte = true
	if c.b == nil {
		c.getBufs()
	}
	return c.st.setActive(c, true)
}

// setReadDeadline sets the connection's read deadline and remembers it. (The
// watch sets one too, in its goroutine; stopWatch then records where it
// leaves it.)
func (c *conn) setReadDeadline(t time.Time) {
	c.rd = t
	_ = c.nc.SetReadDeadline(t)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var crlfEnd, lfEnd = []byte("\n\r\n"), []byte("\n\n")

// headerBuffered reports whether a whole request head is in the read buffer.
func headerBuffered(br *bufio.Reader) bool {
	buf, _ := br.Peek(br.Buffered())
	return bytes.Contains(buf, crlfEnd) || bytes.Contains(buf, lfEnd)
}

// serveOne reads one request and answers it. keep: the connection may serve
// another; linger: close with a linger (input may be left unread).
func (c *conn) serveOne() (keep, linger bool) {
	br := c.b.br
	var req *http.Request
	fast := false
	if c.cr.hasByte || !headerBuffered(br) {
		c.setReadDeadline(time.Now().Add(c.l.headerTimeout))
	} else if c.rp.scan(br) {
		// The whole head is here: parse the common ones without net/http,
		// and answer the commonest without even a request.
		if c.l.quick != nil && !c.st.closing.Load() {
			if q, ok := c.rp.quick(); ok {
				q.closing = &c.st.closing
				served, panicked := c.serveQuick(q)
				if panicked {
					// As after a handler's panic before its header.
					c.loopError(http.StatusInternalServerError, "internal error: the request handler failed", false)
					return false, true
				}
				if served {
					c.rp.skip(br, q)
					return c.sent()
				}
			}
		}
		req, fast = c.rp.build(br)
	}
	var err error
	if !fast {
		c.cr.setLimit(maxHeaderBytes)
		req, err = http.ReadRequest(br)
		c.cr.limited = false
	}
	if err != nil {
		switch {
		case c.cr.hit:
			c.loopError(http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request headers larger than %d bytes", maxHeaderBytes), false)
			return false, true
		case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, new(net.Error)):
			return false, false // the client went away or stalled: nobody to answer
		}
		c.loopError(http.StatusBadRequest, "malformed HTTP request: "+err.Error(), false)
		return false, true
	}
	head := req.Method == http.MethodHead
	if req.ProtoMajor != 1 {
		c.loopError(http.StatusHTTPVersionNotSupported, "HTTP version "+req.Proto+" not supported (HTTP/1.x only)", head)
		return false, true
	}
	if req.ProtoAtLeast(1, 1) && req.Host == "" {
		c.loopError(http.StatusBadRequest, "an HTTP/1.1 request needs a Host header", head)
		return false, true
	}
	needContinue := false
	if ex, ok := req.Header["Expect"]; ok {
		if len(ex) != 1 || !strings.EqualFold(ex[0], "100-continue") {
			c.loopError(http.StatusExpectationFailed, fmt.Sprintf("unsupported Expect %q (only 100-continue)", truncate(strings.Join(ex, ", "))), head)
			return false, true
		}
		needContinue = req.ProtoAtLeast(1, 1) && req.ContentLength != 0
		delete(req.Header, "Expect")
	}

	ctx, cancel := context.WithCancel(c.base)
	defer cancel()
	// WithContext copies the request: for a fast-path one, that copy is the
	// request's own, and c.rp's stays the parser's. (The copy is the only
	// way to set a context on a built request.)
	req = req.WithContext(ctx)
	req.RemoteAddr = c.remote
	// The response, its header map and the body wrapper are the
	// connection's, reused request after request.
	if c.hdr == nil {
		c.hdr = make(http.Header, 8)
	}
	clear(c.hdr)
	w := &c.resp
	*w = response{c: c, req: req, header: c.hdr, cl: -1, head: head}
	if req.Body != nil && req.Body != http.NoBody {
		c.body = reqBody{c: c, w: w, rc: req.Body, needContinue: needContinue}
		w.body = &c.body
		req.Body = w.body
	}
	if w.body != nil && !c.rd.IsZero() && (req.ContentLength < 0 || int64(br.Buffered()) < req.ContentLength) {
		// The body is still to come: no deadline of the loop's may cut it
		// (the handler sets its own).
		c.setReadDeadline(time.Time{})
	}

	c.armWatch(w.body == nil && br.Buffered() == 0 && !c.cr.hasByte, cancel)
	panicked := c.run(w, req)
	c.stopWatch()
	if w.wdSet {
		_ = c.nc.SetWriteDeadline(time.Time{})
	}
	if panicked {
		if !w.sent && !c.broken.Load() {
			c.b.pend = c.b.pend[:0]
			c.loopError(http.StatusInternalServerError, "internal error: the request handler failed", head)
		}
		return false, !w.bodyDone() || br.Buffered() > 0
	}
	w.finish()
	if w.closeAfter || c.broken.Load() || c.st.closing.Load() {
		return false, !w.bodyDone() || br.Buffered() > 0
	}
	return c.sent()
}

// serveQuick serves a quick request, recovering a panic as run does (a
// quick answer is written only at its end, so a panic leaves none). A put
// may wait for room in the store, so it is watched as a handler is: a
// client that goes away cancels it, and nothing is stored.
func (c *conn) serveQuick(q quickReq) (served, panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			panicked = true
			c.l.log.Error("panic serving a request", "method", q.method, "path", objectPrefix+q.id, "remote", c.remote,
				"panic", p, "stack", string(debug.Stack()))
		}
	}()
	if q.method == http.MethodPut {
		idle := c.b.br.Buffered() == c.rp.pos+len(q.body) && !c.cr.hasByte
		c.armWatch(idle, c.quickCancel)
		defer c.stopWatch()
	}
	return c.l.quick.serveQuick(c.quickCtx, c.b.bw, q), false
}

// sent ends a request whose response is whole in the write buffer.
func (c *conn) sent() (keep, linger bool) {
	if br := c.b.br; br.Buffered() == 0 || !headerBuffered(br) {
		// The next request is not here yet: send this response now. (When it
		// is, pipelined responses leave together.)
		if err := c.b.bw.Flush(); err != nil {
			c.fail()
			return false, false
		}
	}
	return true, false
}

// run calls the handler, recovering a panic.
func (c *conn) run(w *response, r *http.Request) (panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			panicked = true
			if p != http.ErrAbortHandler {
				c.l.log.Error("panic serving a request", "method", r.Method, "path", r.URL.Path, "remote", c.remote,
					"panic", p, "stack", string(debug.Stack()))
			}
		}
	}()
	c.l.h.ServeHTTP(w, r)
	return false
}

// fail marks the connection dead: its requests' contexts are cancelled and
// it closes after the current request.
func (c *conn) fail() {
	c.broken.Store(true)
	c.cancelRequest()
}

// cancelRequest cancels the current request's context, and those of any
// request after (the connection died or is force-closed).
func (c *conn) cancelRequest() {
	c.quickCancel()
	c.mu.Lock()
	c.dead = true
	cancel := c.reqCancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// loopError answers an error of the loop itself (not of a handler) in the
// API's JSON error shape, and the connection closes after it.
func (c *conn) loopError(status int, msg string, head bool) {
	code := CodeInvalidArgument
	if status >= 500 && status != http.StatusHTTPVersionNotSupported {
		code = CodeInternal
	}
	body, _ := json.Marshal(ErrorBody{Code: code, Message: msg})
	body = append(body, '\n')
	bw := c.b.bw
	bw.WriteString(statusLine(status))
	fmt.Fprintf(bw, "Content-Type: application/json\r\nCache-Control: no-store\r\n%s: %s\r\n", HeaderErrorCode, code)
	if head {
		fmt.Fprintf(bw, "%s: %s\r\n", HeaderErrorMessage, strings.Join(strings.Fields(truncate(msg)), " "))
	}
	fmt.Fprintf(bw, "Content-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	if !head {
		bw.Write(body)
	}
	if bw.Flush() != nil {
		c.fail()
	}
}

// armWatch starts the watch timer of a request and makes cancel the one
// that the connection's death calls. idle: the request is all read and
// nothing is buffered behind it (the watch may read the connection).
func (c *conn) armWatch(idle bool, cancel context.CancelFunc) {
	c.mu.Lock()
	c.reqDone, c.late, c.watching = false, false, false
	c.bodyDone = idle
	c.reqCancel = cancel
	dead := c.dead
	c.mu.Unlock()
	if dead {
		cancel()
	}
	c.timer.Reset(watchDelay)
}

// onTimer runs when a handler has run for watchDelay.
func (c *conn) onTimer() {
	c.mu.Lock()
	if !c.reqDone {
		if c.bodyDone {
			c.startWatchLocked()
		} else {
			c.late = true
		}
	}
	c.mu.Unlock()
	c.timerDone <- struct{}{}
}

// bodyRead is called in the handler's goroutine when the request body ends.
func (c *conn) bodyRead() {
	idle := c.b.br.Buffered() == 0 && !c.cr.hasByte
	c.mu.Lock()
	c.bodyDone = idle
	if c.late && idle && !c.reqDone {
		c.startWatchLocked()
	}
	c.mu.Unlock()
}

func (c *conn) startWatchLocked() {
	c.watching = true
	// No deadline of earlier reads may stop the watch. Under c.mu, so that
	// stopWatch's abort comes after.
	_ = c.nc.SetReadDeadline(time.Time{})
	go c.watch()
}

// watch reads the connection while the handler runs: a byte is the next
// request, kept for the read buffer; an error other than the abort's
// timeout means the client went away.
func (c *conn) watch() {
	n, err := c.nc.Read(c.cr.byteBuf[:])
	if n == 1 {
		c.cr.hasByte = true
	} else if err != nil && !isTimeout(err) {
		c.fail()
	}
	c.watchDone <- struct{}{}
}

// stopWatch ends the watch of a request whose handler returned.
func (c *conn) stopWatch() {
	c.mu.Lock()
	c.reqDone = true
	c.reqCancel = nil
	c.mu.Unlock()
	if !c.timer.Stop() {
		<-c.timerDone
	}
	c.mu.Lock()
	watching := c.watching
	c.mu.Unlock()
	if watching {
		c.setReadDeadline(aLongTimeAgo)
		<-c.watchDone
	}
}

// reqBody is a request's body as handlers see it: it sends 100 Continue
// before the first read when the client asked for it, and tells the loop
// when the body ends.
type reqBody struct {
	c            *conn
	w            *response
	rc           io.ReadCloser
	needContinue bool // the client waits for 100 Continue before sending
	eof          bool
	err          error // a read failed: the connection cannot go on
	closed       bool
}

func (b *reqBody) Read(p []byte) (int, error) {
	switch {
	case b.closed:
		return 0, http.ErrBodyReadAfterClose
	case b.eof:
		return 0, io.EOF
	case b.err != nil:
		return 0, b.err
	}
	if b.needContinue {
		b.needContinue = false
		if !b.w.wroteHeader {
			bw := b.c.b.bw
			bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := bw.Flush(); err != nil {
				b.c.fail()
				b.err = err
				return 0, err
			}
		}
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
		b.c.bodyRead()
	case err != nil:
		b.err = err
		b.c.fail()
	}
	return n, err
}

// Close marks the body closed. The loop decides after the handler whether
// to discard the rest or close the connection.
func (b *reqBody) Close() error {
	b.closed = true
	return nil
}

// response is the http.ResponseWriter of the loop. The status line, headers
// and body go to the connection's write buffer, so that a small response
// leaves in one write at the end of the request. A body written without a
// Content-Length is held back (up to maxPending) to learn its length; past
// that it is sent chunked (close-delimited to HTTP/1.0 clients).
type response struct {
	c           *conn
	req         *http.Request
	body        *reqBody // nil when the request has none
	header      http.Header
	status      int
	head        bool
	wroteHeader bool  // the status is chosen
	sent        bool  // the status line and headers are in the write buffer
	cl          int64 // the Content-Length sent, -1 if none
	chunked     bool
	written     int64 // body bytes the handler wrote
	closeAfter  bool
	wdSet       bool // the handler set a write deadline
}

// Header implements http.ResponseWriter.
func (w *response) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter.
func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// Informational: sent at once, the final status comes later.
		bw := w.c.b.bw
		bw.WriteString(statusLine(code))
		writeHeaders(bw, w.header)
		bw.WriteString("\r\n")
		if bw.Flush() != nil {
			w.c.fail()
		}
		return
	}
	w.wroteHeader, w.status = true, code
	if v, ok := w.header["Content-Length"]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(strings.Join(v, "")), 10, 64)
		if err != nil || n < 0 || len(v) != 1 {
			delete(w.header, "Content-Length") // not a length: frame the body ourselves
		} else if bodyAllowed(code) {
			w.cl = n
		}
	}
	if w.cl >= 0 || !bodyAllowed(code) {
		w.sendHeader(false)
	}
}

// bodyAllowed reports whether a response with this status has a body.
func bodyAllowed(code int) bool {
	return (code < 100 || code > 199) && code != http.StatusNoContent && code != http.StatusNotModified
}

// Write implements http.ResponseWriter.
func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.head {
		return len(p), nil // HEAD: counted (for its Content-Length), not sent
	}
	if !w.sent {
		b := w.c.b
		if len(b.pend)+len(p) <= maxPending {
			b.pend = append(b.pend, p...)
			return len(p), nil
		}
		w.sendHeader(false)
		if _, err := w.writeBody(b.pend); err != nil {
			return 0, err
		}
		b.pend = b.pend[:0]
	}
	return w.writeBody(p)
}

// writeBody writes p, framed, to the connection's buffer.
func (w *response) writeBody(p []byte) (int, error) {
	bw := w.c.b.bw
	if w.c.broken.Load() {
		return 0, net.ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if err == nil && w.chunked {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.c.fail()
	}
	return n, err
}

// sendHeader writes the status line and headers, choosing the framing of
// the body. done: the handler has returned and the whole body is known.
func (w *response) sendHeader(done bool) {
	w.sent = true
	h := w.header
	delete(h, "Transfer-Encoding") // the framing is ours to choose
	var framing string
	switch {
	case w.status == http.StatusNoContent || (w.status >= 100 && w.status <= 199):
		delete(h, "Content-Length")
	case !bodyAllowed(w.status) || w.cl >= 0:
	case done && w.head:
		if w.written > 0 {
			framing = "Content-Length: " + strconv.FormatInt(w.written, 10) + "\r\n"
		}
	case done:
		framing = "Content-Length: " + strconv.Itoa(len(w.c.b.pend)) + "\r\n"
	case w.head:
	case w.req.ProtoAtLeast(1, 1):
		w.chunked = true
		framing = "Transfer-Encoding: chunked\r\n"
	default:
		w.closeAfter = true // HTTP/1.0: the body ends when the connection does
	}
	if w.req.Close || w.c.st.closing.Load() {
		w.closeAfter = true
	}
	if conn, ok := h["Connection"]; ok {
		w.closeAfter = w.closeAfter || hasToken(conn, "close")
		delete(h, "Connection") // ours to say
	}
	bw := w.c.b.bw
	bw.WriteString(statusLine(w.status))
	writeHeaders(bw, h)
	bw.WriteString(framing)
	switch {
	case w.closeAfter:
		bw.WriteString("Connection: close\r\n")
	case !w.req.ProtoAtLeast(1, 1):
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
}

// finish completes the response after the handler returned.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent {
		// Decide about the unread body first, so the header can say close.
		w.dropBody()
		w.sendHeader(true)
		if !w.head && bodyAllowed(w.status) {
			w.c.b.bw.Write(w.c.b.pend)
		}
		w.c.b.pend = w.c.b.pend[:0]
		return
	}
	if w.chunked {
		w.c.b.bw.WriteString("0\r\n\r\n")
	}
	if w.cl >= 0 && w.written < w.cl && !w.head {
		w.closeAfter = true // a short body: the client must see the connection end
	}
	if !w.closeAfter {
		w.dropBody()
	}
}

// bodyDone reports whether the request body, if any, was read to its end.
func (w *response) bodyDone() bool { return w.body == nil || w.body.eof }

// dropBody discards what the handler left of the request body, up to
// maxDiscard; with more, or if the client never got its 100 Continue, the
// connection closes instead.
func (w *response) dropBody() {
	b := w.body
	if b == nil || b.eof {
		return
	}
	if b.needContinue || b.err != nil || w.c.broken.Load() {
		w.closeAfter = true
		return
	}
	w.c.setReadDeadline(time.Now().Add(discardTimeout))
	if _, err := io.CopyN(io.Discard, b.rc, maxDiscard+1); err == io.EOF {
		b.eof = true
		return
	}
	w.closeAfter = true
}

// FlushError sends what is buffered to the client.
func (w *response) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent {
		w.sendHeader(false)
		if _, err := w.writeBody(w.c.b.pend); err != nil {
			return err
		}
		w.c.b.pend = w.c.b.pend[:0]
	}
	if err := w.c.b.bw.Flush(); err != nil {
		w.c.fail()
		return err
	}
	return nil
}

// Flush implements http.Flusher.
func (w *response) Flush() { _ = w.FlushError() }

// SetReadDeadline sets the connection's read deadline (for
// http.ResponseController).
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.rd = t
	return w.c.nc.SetReadDeadline(t)
}

// SetWriteDeadline sets the connection's write deadline (for
// http.ResponseController); the loop clears it after the request.
func (w *response) SetWriteDeadline(t time.Time) error {
	w.wdSet = true
	return w.c.nc.SetWriteDeadline(t)
}

// writeHeaders writes h, dropping bad names and turning line breaks in
// values into spaces (a header must not inject another).
func writeHeaders(bw *bufio.Writer, h http.Header) {
	for k, vs := range h {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			continue
		}
		httpwire.WriteField(bw, k, vs)
	}
}

// hasToken reports whether a comma-separated header holds token.
func hasToken(vs []string, token string) bool {
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// statusLines caches the status lines of the codes net/http knows.
var statusLines = func() []string {
	lines := make([]string, 600)
	for code := range lines {
		if text := http.StatusText(code); text != "" {
			lines[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
		}
	}
	return lines
}()

func statusLine(code int) string {
	if code < len(statusLines) && statusLines[code] != "" {
		return statusLines[code]
	}
	return "HTTP/1.1 " + strconv.Itoa(code) + " status code " + strconv.Itoa(code) + "\r\n"
}
