package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"time"

	"distore/internal/httpwire"
)

// fastTransport is a lean HTTP/1.1 RoundTripper for plain-http servers: each
// round trip runs in the caller's goroutine on a pooled keep-alive
// connection (net/http's Transport hands every request to two goroutines per
// connection, which costs as much as the request itself for small objects on
// loopback). Requests it does not handle — https, Expect: 100-continue,
// bodies of unknown length — go to the fallback Transport.
type fastTransport struct {
	fallback *http.Transport
	dialer   net.Dialer
	maxIdle  int           // idle connections kept per host
	idleMax  time.Duration // idle connections older than this are closed

	mu   sync.Mutex
	idle map[string][]*fconn
}

type fconn struct {
	nc        net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	hp        headParser // one response at a time on a connection
}

// staleAfter: a connection idle longer than this is probed before a
// non-idempotent request is sent on it (the server may have closed it).
const staleAfter = time.Second

// asyncBody is the body size above which the request is written in a
// goroutine while the response is read, so that a server answering early
// (an error before reading the body) is heard rather than met with a broken
// pipe. Up to this size the server reads the whole body first.
const asyncBody = 64 << 10

func newFastTransport(fallback *http.Transport) *fastTransport {
	return &fastTransport{
		fallback: fallback,
		dialer:   net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle:  fallback.MaxIdleConnsPerHost,
		idleMax:  fallback.IdleConnTimeout,
		idle:     map[string][]*fconn{},
	}
}

// CloseIdleConnections closes the pooled connections of both transports.
func (t *fastTransport) CloseIdleConnections() {
	t.mu.Lock()
	all := t.idle
	t.idle = map[string][]*fconn{}
	t.mu.Unlock()
	for _, cs := range all {
		for _, c := range cs {
			c.nc.Close()
		}
	}
	t.fallback.CloseIdleConnections()
}

// RoundTrip implements http.RoundTripper.
func (t *fastTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || req.Header.Get("Expect") != "" ||
		(req.Body != nil && req.Body != http.NoBody && req.ContentLength <= 0) {
		return t.fallback.RoundTrip(req)
	}
	r := ownReq{ctx: req.Context(), method: req.Method, host: req.URL.Host, size: req.ContentLength}
	if req.Body != nil {
		r.body = req.Body
	}
	return t.do(&r, req)
}

// ownReq is a request the client builds itself, which the transport writes
// without an http.Request (whose URL parsing and allocations cost a good part
// of a small round trip). The client makes sure that it is plain: method,
// path and headers need no checks nor escaping, the host is a plain
// host:port, the context carries no httptrace.
type ownReq struct {
	ctx    context.Context
	method string
	host   string
	path   [5]string    // the request-URI, in pieces
	hdr    [3][2]string // more headers, name and value; unused ones have no name
	body   io.Reader    // nil: none (or data)
	data   []byte       // the body, when body is nil
	size   int64        // the body's length
}

// do runs r: written as req if that is set (RoundTrip), else as an ownReq.
func (t *fastTransport) do(r *ownReq, req *http.Request) (*http.Response, error) {
	idempotent := r.method == http.MethodGet || r.method == http.MethodHead
	for attempt := 0; ; attempt++ {
		c, reused, err := t.conn(r.ctx, r.host, !idempotent)
		if err != nil {
			return nil, err
		}
		resp, err := t.roundTrip(c, r, req)
		if err == nil {
			return resp, nil
		}
		// A reused connection the server had closed: one retry of a request
		// that has no side effects, on a fresh connection.
		if reused && idempotent && attempt == 0 && r.body == nil && r.data == nil && r.ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

// conn returns an idle connection to host, or dials one.
func (t *fastTransport) conn(ctx context.Context, host string, probe bool) (*fconn, bool, error) {
	now := time.Now()
	for {
		t.mu.Lock()
		cs := t.idle[host]
		if len(cs) == 0 {
			t.mu.Unlock()
			break
		}
		c := cs[len(cs)-1]
		t.idle[host] = cs[:len(cs)-1]
		t.mu.Unlock()
		idle := now.Sub(c.idleSince)
		if idle > t.idleMax || (probe && idle > staleAfter && !alive(c)) {
			c.nc.Close()
			continue
		}
		return c, true, nil
	}
	nc, err := t.dialer.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, false, err
	}
	return &fconn{nc: nc, br: bufio.NewReaderSize(nc, 256<<10), bw: bufio.NewWriterSize(nc, 64<<10)}, false, nil
}

// alive reports whether an idle connection is still open (see peekAlive).
func alive(c *fconn) bool {
	if c.br.Buffered() > 0 {
		return false // nothing should have come while idle
	}
	return peekAlive(c.nc)
}

// put returns a connection to the pool.
func (t *fastTransport) put(host string, c *fconn) {
	c.idleSince = time.Now()
	t.mu.Lock()
	if len(t.idle[host]) < t.maxIdle {
		t.idle[host] = append(t.idle[host], c)
		c = nil
	}
	t.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

var longAgo = time.Unix(1, 0)

func noStop() bool { return true }

func (t *fastTransport) roundTrip(c *fconn, r *ownReq, req *http.Request) (*http.Response, error) {
	ctx := r.ctx
	// Cancellation breaks the connection's pending I/O; the connection is
	// then not reused.
	stop := noStop // a context that cannot end needs no watch
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(longAgo) })
	}
	fail := func(err error) (*http.Response, error) {
		stop()
		c.nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	var werr chan error
	if r.size > asyncBody {
		werr = make(chan error, 1)
		ra := *r // the writer's copy: r itself can stay on the caller's stack
		go func() {
			err := c.write(&ra, req)
			if err != nil {
				c.nc.Close() // the server would wait for the rest of the body
			}
			werr <- err
		}()
	} else if err := c.write(r, req); err != nil {
		return fail(err)
	}
	// The Response and its body come in one allocation; the Header is the
	// connection's, valid until the body is closed or read to its end (when
	// the connection goes back to the pool).
	fr := &fastResp{}
	resp, err := c.hp.readResponse(c.br, r.method, req, &fr.resp)
	if err != nil {
		if werr != nil {
			c.nc.Close() // unblocks the writer
			if e := <-werr; e != nil {
				err = e // the cause: the body fell short, or the write failed
			}
		}
		return fail(err)
	}
	reusable := !resp.Close
	if werr != nil {
		if !reusable {
			// The server answered early and will not read the rest of the
			// body (it said Connection: close): stop sending it.
			c.nc.Close()
		}
		// Otherwise the server reads (or discards) the whole body: wait for
		// the writer, and keep the connection if it got it all out.
		reusable = <-werr == nil && reusable
	}
	fr.attach(resp, r.method, fastBody{t: t, c: c, host: r.host, ctx: ctx, stop: stop, reusable: reusable})
	return resp, nil
}

// fastResp is a response read by the fast transport with its body.
type fastResp struct {
	resp http.Response
	body fastBody
}

// attach makes b, set to read what is left of resp's body, resp's Body. resp
// is fr.resp (read by the fast path: b reads ContentLength bytes from the
// connection) or http.ReadResponse's (b reads its Body).
func (fr *fastResp) attach(resp *http.Response, method string, b fastBody) {
	switch {
	case resp.ContentLength == 0 || method == http.MethodHead:
		if resp != &fr.resp {
			resp.Body.Close()
		}
		// Nothing to read; the connection goes back when the body is
		// closed (or read), as the Header may be the connection's.
	case resp == &fr.resp:
		b.n = resp.ContentLength
	default:
		b.rc = resp.Body
	}
	fr.body = b
	resp.Body = &fr.body
}

// write writes the request: req if set, else r.
func (c *fconn) write(r *ownReq, req *http.Request) error {
	if req != nil {
		return writeRequest(c.bw, req)
	}
	return writeOwn(c.bw, r)
}

// writeRequest writes req (its body closed after) and flushes.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	if !plainRequest(req) {
		if err := req.Write(bw); err != nil {
			return err
		}
		return bw.Flush()
	}
	err := writePlain(bw, req)
	if req.Body != nil {
		if cerr := req.Body.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// plainRequest reports whether req is one the client itself makes, which
// writePlain writes as Request.Write would, without its generality (on small
// objects Request.Write costs a good part of a round trip).
func plainRequest(req *http.Request) bool {
	u := req.URL
	if req.Close || len(req.TransferEncoding) > 0 || req.Trailer != nil || u.Opaque != "" || u.User != nil ||
		(req.Host != "" && req.Host != u.Host) || httptrace.ContextClientTrace(req.Context()) != nil {
		return false
	}
	for _, c := range u.Host {
		if c <= ' ' || c >= 0x7f || c == '/' || c == '%' || c == '[' || c == '@' {
			return false // IPv6 zones, odd hosts: Request.Write's business
		}
	}
	for k := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer", "Connection":
			return false
		}
	}
	return true
}

// writePlain writes a plainRequest.
func writePlain(bw *bufio.Writer, req *http.Request) error {
	ruri := req.URL.RequestURI()
	for i := 0; i < len(ruri); i++ {
		if c := ruri[i]; c < ' ' || c == 0x7f {
			return errors.New("net/http: can't write control character in Request.URL")
		}
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(ruri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(req.URL.Host)
	bw.WriteString("\r\nUser-Agent: Go-http-client/1.1\r\n")
	hasBody := req.Body != nil && req.Body != http.NoBody
	if req.ContentLength > 0 || (req.ContentLength == 0 && (method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch)) {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(req.ContentLength, 10))
		bw.WriteString("\r\n")
	}
	for k, vs := range req.Header {
		if !validHeaderName(k) {
			return fmt.Errorf("net/http: invalid header field name %q", k)
		}
		httpwire.WriteField(bw, k, vs)
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	if !hasBody || req.ContentLength <= 0 {
		return nil
	}
	var n int64
	var err error
	if b, ok := req.Body.(*bytesBody); ok && int64(b.Len()) == req.ContentLength {
		n, err = b.WriteTo(bw) // whole: big bodies go to the socket in one write
	} else {
		n, err = io.Copy(bw, io.LimitReader(req.Body, req.ContentLength))
	}
	if err == nil && n != req.ContentLength {
		err = fmt.Errorf("http: ContentLength=%d with Body length %d", req.ContentLength, n)
	}
	return err
}

// writeOwn writes r (as writePlain would the same request) and flushes.
func writeOwn(bw *bufio.Writer, r *ownReq) error {
	bw.WriteString(r.method)
	bw.WriteByte(' ')
	for _, p := range r.path {
		bw.WriteString(p)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.host)
	bw.WriteString("\r\nUser-Agent: Go-http-client/1.1\r\n")
	if r.size > 0 || (r.size == 0 && (r.method == http.MethodPost || r.method == http.MethodPut || r.method == http.MethodPatch)) {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), r.size, 10))
		bw.WriteString("\r\n")
	}
	for _, h := range r.hdr {
		if h[0] != "" {
			bw.WriteString(h[0])
			bw.WriteString(": ")
			bw.WriteString(h[1])
			bw.WriteString("\r\n")
		}
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	if r.body == nil && r.size > 0 {
		if int64(len(r.data)) != r.size {
			return fmt.Errorf("http: ContentLength=%d with Body length %d", r.size, len(r.data))
		}
		if _, err := bw.Write(r.data); err != nil { // big bodies go to the socket in one write
			return err
		}
	} else if r.size > 0 {
		var n int64
		var err error
		if b, ok := r.body.(*bytes.Reader); ok && int64(b.Len()) == r.size {
			n, err = b.WriteTo(bw) // whole: big bodies go to the socket in one write
		} else {
			n, err = io.Copy(bw, io.LimitReader(r.body, r.size))
		}
		if err == nil && n != r.size {
			err = fmt.Errorf("http: ContentLength=%d with Body length %d", r.size, n)
		}
		if err != nil {
			return err
		}
	}
	return bw.Flush()
}

// validHeaderName reports whether k is a header field name (an RFC 9110
// token).
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// bytesBody is the body of a put from a byte slice: it lets writePlain write
// the slice whole.
type bytesBody struct{ *bytes.Reader }

func (bytesBody) Close() error { return nil }

// fastBody returns the connection to the pool once the body is read to its
// end (or closed there), and closes it if the body is closed early. It reads
// n bytes from the connection, or rc (http.ReadResponse's body) when set.
type fastBody struct {
	t        *fastTransport
	c        *fconn
	host     string
	ctx      context.Context
	stop     func() bool
	reusable bool
	rc       io.ReadCloser
	n        int64
	finished bool
}

// done gives the connection back (ok: the body was read to its end) or
// closes it.
func (b *fastBody) done(ok bool) {
	b.finished = true
	if b.stop() && ok && b.reusable {
		b.t.put(b.host, b.c)
		return
	}
	b.c.nc.Close()
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.finished {
		return 0, io.EOF
	}
	var n int
	var err error
	if b.rc != nil {
		n, err = b.rc.Read(p)
	} else if b.n == 0 {
		err = io.EOF
	} else {
		if int64(len(p)) > b.n {
			p = p[:b.n]
		}
		n, err = b.c.br.Read(p)
		b.n -= int64(n)
		switch {
		case b.n == 0:
			err = io.EOF // at once, as net/http's body does
		case err == io.EOF:
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil {
		b.done(err == io.EOF)
		if err != io.EOF && b.ctx.Err() != nil {
			err = b.ctx.Err() // the deadline broke the read, say so
		}
	}
	return n, err
}

// Close keeps the connection if the body was read to its end (a read of
// nothing then reports EOF without touching the connection).
func (b *fastBody) Close() error {
	if !b.finished {
		if b.rc != nil {
			_, err := b.rc.Read(nil)
			b.done(err == io.EOF)
		} else {
			b.done(b.n == 0)
		}
	}
	return nil
}
