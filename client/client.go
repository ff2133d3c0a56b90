// Package client is the Go client of the distore server's HTTP API
// (docs/http-api.md).
//
// A Client reuses connections (one http.Client with a tuned Transport) and
// takes its timeouts from the context of each call. The server's errors come
// back as *Error values that wrap the sentinels of package backend, so
//
//	if errors.Is(err, backend.ErrNotFound) { ... }
//
// works through the network, and errors.As(err, &fe) with fe a
// *backend.FullError gives the sizes of a full or too-large put.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"time"

	"distore/backend"
	"distore/levels"
)

// Wire names of the API (see docs/http-api.md).
const (
	headerSize       = "X-Distore-Size"
	headerImportance = "X-Distore-Importance"
	headerPins       = "X-Distore-Pins"
	headerLevel      = "X-Distore-Level"
	headerTier       = "X-Distore-Tier"
	headerCreated    = "X-Distore-Created"
	headerAccessed   = "X-Distore-Accessed"
	headerChecksum   = "X-Distore-Checksum"
	headerID         = "X-Distore-Id"
	headerErrorCode  = "X-Distore-Error-Code"
	headerErrorMsg   = "X-Distore-Error-Message"
)

// Client talks to one distore server. It is safe for concurrent use.
type Client struct {
	base      string // "http://host:port", no trailing slash
	hc        *http.Client
	ft        *fastTransport // hc's transport when the client made hc itself
	expectMin int64
	// own: ft can take the client's requests as ownReqs (plain http, a
	// host and base path that need no checks nor escaping).
	own      bool
	host     string
	basePath string // "" or "/path", no trailing slash
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client use hc instead of its own tuned one.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithExpectContinue sets the body size from which a put first asks the
// server whether it will take the object (Expect: 100-continue), so a put that
// fails (exists, too large) does not send its body. Default 8 MiB; a negative
// value never asks.
func WithExpectContinue(size int64) Option { return func(c *Client) { c.expectMin = size } }

// NewTransport returns a net/http Transport tuned for distore: keep-alive
// connections, many of them idle per host (a client is typically shared by many
// goroutines), no compression (objects are opaque bytes), large buffers. A
// Client's own transport runs plain-http round trips itself, on pooled
// connections with the same limits, and uses this one for the rest (https,
// Expect: 100-continue).
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: 2 * time.Second,
		ResponseHeaderTimeout: 0, // the context bounds each call
		DisableCompression:    true,
		WriteBufferSize:       256 << 10,
		ReadBufferSize:        256 << 10,
		ForceAttemptHTTP2:     false,
	}
}

// New returns a client of the server at baseURL ("http://127.0.0.1:7070").
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: %w: server URL %q must look like http://host:port", backend.ErrInvalidArgument, baseURL)
	}
	c := &Client{base: strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), expectMin: 8 << 20}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.ft = newFastTransport(NewTransport())
		c.hc = &http.Client{Transport: c.ft}
		c.host = u.Host
		c.basePath = strings.TrimPrefix(c.base, u.Scheme+"://"+u.Host)
		c.own = u.Scheme == "http" && plainURLPart(c.host, ":.-") && plainURLPart(c.basePath, "/.-_~")
	}
	return c, nil
}

// plainURLPart reports whether s has only letters, digits and bytes of
// extra, so that it goes into a request as it is.
func plainURLPart(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// URL returns the server's base URL.
func (c *Client) URL() string { return c.base }

// Close closes the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// PutOptions are the options of Put and PutReader.
type PutOptions struct {
	// ID, when set, is the object's ID; empty lets the server generate one.
	ID backend.ID
	// Importance orders objects for spilling; higher stays in faster tiers longer.
	Importance int
	// Checksum, when non-zero, is the CRC-32C of the data (backend.Checksum): the
	// server verifies it and stores nothing on a mismatch (ErrCorrupt).
	Checksum uint32
	// PrefetchGroup, when set, spreads the object to every server of this
	// group after the put (cluster.go): the put returns once the object is
	// stored on this server, and the spread runs in the background.
	PrefetchGroup string
}

// Error is an error response of the server. It wraps the backend sentinel its
// code stands for (a *backend.FullError for "full" and "too_large").
type Error struct {
	Op      string     // "put", "get", ...
	ID      backend.ID // the object, if any
	Status  int        // the HTTP status
	Code    string     // the API's error code ("not_found", ...)
	Message string     // the server's message
	err     error
}

// Error formats as `distore server: op "id": message (404 not_found)`.
func (e *Error) Error() string {
	s := "distore server: " + e.Op
	if e.ID != "" {
		s += fmt.Sprintf(" %q", string(e.ID))
	}
	return fmt.Sprintf("%s: %s (%d %s)", s, e.Message, e.Status, e.Code)
}

// Unwrap returns the sentinel of package backend for the error's code.
func (e *Error) Unwrap() error { return e.err }

// errorBody mirrors the server's JSON error body.
type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Requested int64  `json:"requested"`
	Free      int64  `json:"free"`
	Capacity  int64  `json:"capacity"`
	Pinned    int64  `json:"pinned"`
}

var codeSentinels = map[string]error{
	"invalid_id":       backend.ErrInvalidID,
	"invalid_argument": backend.ErrInvalidArgument,
	"bad_range":        backend.ErrInvalidArgument,
	"length_required":  backend.ErrInvalidArgument,
	"bad_body":         backend.ErrInvalidArgument,
	"not_found":        backend.ErrNotFound,
	"exists":           backend.ErrExists,
	"pinned":           backend.ErrPinned,
	"not_pinned":       backend.ErrNotPinned,
	"too_large":        backend.ErrTooLarge,
	"full":             backend.ErrFull,
	"unavailable":      backend.ErrUnavailable,
	"closed":           backend.ErrClosed,
	"corrupt":          backend.ErrCorrupt,
	"timeout":          context.DeadlineExceeded,
	"canceled":         context.Canceled,
}

// respError reads an error response into an *Error and closes its body.
func respError(op string, id backend.ID, resp *http.Response) error {
	defer resp.Body.Close()
	// The headers first: the fast transport's Header is only valid until the
	// body is read to its end.
	code, msg := resp.Header.Get(headerErrorCode), resp.Header.Get(headerErrorMsg)
	var eb errorBody
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &eb) != nil || eb.Code == "" {
		eb.Code = code
		eb.Message = strings.TrimSpace(string(data))
		if eb.Message == "" {
			eb.Message = msg
		}
		if eb.Message == "" {
			eb.Message = http.StatusText(resp.StatusCode)
		}
	}
	e := &Error{Op: op, ID: id, Status: resp.StatusCode, Code: eb.Code, Message: eb.Message}
	switch s := codeSentinels[eb.Code]; {
	case s == backend.ErrFull || s == backend.ErrTooLarge:
		fe := backend.NewFullError(op, "server", id, eb.Requested, eb.Free, eb.Capacity, eb.Pinned)
		fe.TooLarge = s == backend.ErrTooLarge
		e.err = fe
	case s != nil:
		e.err = s
	case resp.StatusCode == http.StatusNotFound && eb.Code == "":
		e.err = backend.ErrNotFound
	default:
		e.err = errors.New(http.StatusText(resp.StatusCode))
	}
	return e
}

// request is one of the client's requests on an object (or on all of them,
// with no ID). With the client's own transport it goes out as an ownReq;
// else as an http.Request.
type request struct {
	own     ownReq
	nh      int  // headers set in own.hdr
	putBody bool // a put's body, sent as PutReader always did
}

// newRequest returns a request for method on the object id (on the
// collection when id is empty), with the sub-path sub. id must be valid
// (checkID).
func (c *Client) newRequest(ctx context.Context, method string, id backend.ID, sub string) request {
	r := request{own: ownReq{ctx: ctx, method: method, host: c.host}}
	r.own.path[0] = c.basePath
	if id == "" {
		r.own.path[1] = "/v1/objects"
	} else {
		// A valid ID needs no escaping (url.PathEscape returns it as it is).
		r.own.path[1], r.own.path[2] = "/v1/objects/", url.PathEscape(string(id))
	}
	if sub != "" {
		r.own.path[3], r.own.path[4] = "/", sub
	}
	return r
}

// set sets a header (at most len(ownReq.hdr) of them, each once, names in
// canonical form, values plain).
func (r *request) set(name, value string) {
	r.own.hdr[r.nh] = [2]string{name, value}
	r.nh++
}

// expect reports whether r has an Expect header (the fallback transport's
// business).
func (r *request) expect() bool {
	for _, h := range r.own.hdr[:r.nh] {
		if h[0] == "Expect" {
			return true
		}
	}
	return false
}

// url returns the request's URL.
func (r *request) url(c *Client) string {
	return c.base + strings.Join(r.own.path[1:], "")
}

// sendRequest sends r.
func (c *Client) sendRequest(r *request) (*http.Response, error) {
	// A nil context, traces and Expect are http.Request's business.
	if c.own && r.own.ctx != nil && httptrace.ContextClientTrace(r.own.ctx) == nil && !r.expect() {
		resp, err := c.ft.do(&r.own, nil)
		if err != nil {
			return nil, &url.Error{Op: methodOp(r.own.method), URL: r.url(c), Err: err}
		}
		return resp, nil
	}
	body := r.own.body
	if r.own.data != nil {
		body = bytes.NewReader(r.own.data)
	} else if _, ok := body.(*bytes.Reader); !ok && r.putBody {
		body = io.LimitReader(body, r.own.size) // never send more than declared
	}
	req, err := http.NewRequestWithContext(r.own.ctx, r.own.method, r.url(c), body)
	if err != nil {
		return nil, err
	}
	if r.putBody {
		size := r.own.size
		req.ContentLength = size
		if br, ok := body.(*bytes.Reader); ok && int64(br.Len()) == size && size > 0 {
			req.Body = &bytesBody{br} // written whole (GetBody, from the reader, stays)
		}
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	for _, h := range r.own.hdr[:r.nh] {
		req.Header.Set(h[0], h[1])
	}
	return c.send(req)
}

// methodOp is the Op of a url.Error of method, as http.Client says it.
func methodOp(m string) string {
	if m == "" {
		m = http.MethodGet
	}
	return m[:1] + strings.ToLower(m[1:])
}

// send sends req. With the client's own transport it skips http.Client,
// whose redirect and cookie machinery the API does not use and which costs
// allocations on every small request; errors read the same.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	if c.ft == nil {
		return c.hc.Do(req)
	}
	resp, err := c.ft.RoundTrip(req)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &url.Error{Op: methodOp(req.Method), URL: req.URL.String(), Err: err}
	}
	return resp, nil
}

// do sends req and returns the response if its status is one of ok.
func (c *Client) do(op string, id backend.ID, req *http.Request, ok ...int) (*http.Response, error) {
	resp, err := c.send(req)
	return checkResponse(op, id, resp, err, ok...)
}

// doRequest is do for a request.
func (c *Client) doRequest(op string, id backend.ID, r *request, ok ...int) (*http.Response, error) {
	resp, err := c.sendRequest(r)
	return checkResponse(op, id, resp, err, ok...)
}

// checkResponse returns resp if its status is one of ok, else the error.
func checkResponse(op string, id backend.ID, resp *http.Response, err error, ok ...int) (*http.Response, error) {
	if err != nil {
		if id == "" {
			return nil, fmt.Errorf("distore client: %s: %w", op, err)
		}
		return nil, fmt.Errorf("distore client: %s %q: %w", op, string(id), err)
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return resp, nil
		}
	}
	return nil, respError(op, id, resp)
}

// checkID validates an ID locally, so a bad one fails before a round trip.
func checkID(op string, id backend.ID) error {
	if err := id.Validate(); err != nil {
		return &Error{Op: op, ID: id, Status: http.StatusBadRequest, Code: "invalid_id", Message: err.Error(), err: backend.ErrInvalidID}
	}
	return nil
}

// Put stores data and returns the object's info (its ID, when the server
// chose it).
func (c *Client) Put(ctx context.Context, data []byte, opts PutOptions) (backend.ObjectInfo, error) {
	return c.put(ctx, nil, data, int64(len(data)), opts)
}

// PutReader stores exactly size bytes read from r, streaming them. If r ends
// early or the context ends, the server stores nothing.
func (c *Client) PutReader(ctx context.Context, r io.Reader, size int64, opts PutOptions) (backend.ObjectInfo, error) {
	return c.put(ctx, r, nil, size, opts)
}

// put is Put (data, r nil) and PutReader (r).
func (c *Client) put(ctx context.Context, r io.Reader, data []byte, size int64, opts PutOptions) (backend.ObjectInfo, error) {
	var info backend.ObjectInfo
	if size < 0 {
		return info, &Error{Op: "put", ID: opts.ID, Status: http.StatusBadRequest, Code: "invalid_argument",
			Message: fmt.Sprintf("size %d is negative", size), err: backend.ErrInvalidArgument}
	}
	method := http.MethodPost
	if opts.ID != "" {
		if err := checkID("put", opts.ID); err != nil {
			return info, err
		}
		method = http.MethodPut
	}
	req := c.newRequest(ctx, method, opts.ID, "")
	req.own.body, req.own.data, req.own.size, req.putBody = r, data, size, true
	if opts.Importance != 0 {
		req.set(headerImportance, strconv.Itoa(opts.Importance))
	}
	if opts.Checksum != 0 {
		req.set(headerChecksum, fmt.Sprintf("%08x", opts.Checksum))
	}
	if c.expectMin >= 0 && size >= c.expectMin {
		req.set("Expect", "100-continue")
	}
	resp, err := c.doRequest("put", opts.ID, &req, http.StatusCreated)
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if err := decodeInfo(resp.Body, &info); err != nil {
		return info, fmt.Errorf("distore client: put %q: reading the reply: %w", string(opts.ID), err)
	}
	if opts.PrefetchGroup != "" {
		if _, err := c.SpreadToGroup(ctx, info.ID, opts.PrefetchGroup); err != nil {
			return info, err
		}
	}
	return info, nil
}

// Get returns the whole object in a new slice.
func (c *Client) Get(ctx context.Context, id backend.ID) ([]byte, error) {
	return c.GetInto(ctx, id, nil)
}

// GetInto reads the whole object into buf's memory when its capacity is
// enough (else into a new slice) and returns the bytes. Reusing one buffer
// across calls saves an allocation and the page faults of fresh memory per
// object, which matters for large objects read in a loop.
func (c *Client) GetInto(ctx context.Context, id backend.ID, buf []byte) ([]byte, error) {
	rc, n, err := c.getBody(ctx, id, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if int64(cap(buf)) >= n {
		buf = buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("distore client: get %q: %w", string(id), err)
	}
	return buf, nil
}

// GetReader streams length bytes of the object from offset (length -1: to
// the end). The caller closes the reader. The reader fails with
// io.ErrUnexpectedEOF if the connection ends before the range does.
func (c *Client) GetReader(ctx context.Context, id backend.ID, offset, length int64) (io.ReadCloser, error) {
	body, size, err := c.getBody(ctx, id, offset, length)
	if err != nil {
		return nil, err
	}
	return &objectReader{ReadCloser: body, size: size}, nil
}

// getBody is GetReader's body and its size, without a wrapper to allocate.
func (c *Client) getBody(ctx context.Context, id backend.ID, offset, length int64) (io.ReadCloser, int64, error) {
	if err := checkID("get", id); err != nil {
		return nil, 0, err
	}
	if offset < 0 || length < -1 {
		return nil, 0, &Error{Op: "get", ID: id, Status: http.StatusRequestedRangeNotSatisfiable, Code: "bad_range",
			Message: fmt.Sprintf("offset %d length %d", offset, length), err: backend.ErrInvalidArgument}
	}
	if length == 0 {
		// HTTP cannot ask for zero bytes; check the range with HEAD instead.
		info, err := c.Info(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		if offset > info.Size {
			return nil, 0, &Error{Op: "get", ID: id, Status: http.StatusRequestedRangeNotSatisfiable, Code: "bad_range",
				Message: fmt.Sprintf("offset %d is past the object's %d bytes", offset, info.Size), err: backend.ErrInvalidArgument}
		}
		return http.NoBody, 0, nil
	}
	req := c.newRequest(ctx, http.MethodGet, id, "")
	switch {
	case length > 0:
		req.set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		req.set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := c.sendRequest(&req)
	if err != nil {
		return nil, 0, fmt.Errorf("distore client: get %q: %w", string(id), err)
	}
	switch {
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && length == -1 &&
		resp.Header.Get("Content-Range") == fmt.Sprintf("bytes */%d", offset):
		// Reading from the very end gives nothing, as backend.OpenReader does;
		// HTTP has no way to ask for it.
		resp.Body.Close()
		return http.NoBody, 0, nil
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent:
		return nil, 0, respError("get", id, resp)
	}
	if length > 0 && resp.ContentLength != length {
		resp.Body.Close()
		return nil, 0, &Error{Op: "get", ID: id, Status: http.StatusRequestedRangeNotSatisfiable, Code: "bad_range",
			Message: fmt.Sprintf("asked %d bytes from offset %d, the object has %d there", length, offset, resp.ContentLength),
			err:     backend.ErrInvalidArgument}
	}
	if resp.ContentLength < 0 {
		resp.Body.Close()
		return nil, 0, fmt.Errorf("distore client: get %q: reply without Content-Length", string(id))
	}
	if resp.ContentLength == 0 {
		resp.Body.Close() // the connection goes back now, read or not
		return http.NoBody, 0, nil
	}
	return resp.Body, resp.ContentLength, nil
}

// objectReader is a response body of known size.
type objectReader struct {
	io.ReadCloser
	size int64
}

// Size returns the number of bytes the reader yields.
func (r *objectReader) Size() int64 { return r.size }

// Info returns the object's metadata (a HEAD request).
func (c *Client) Info(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	var info backend.ObjectInfo
	if err := checkID("info", id); err != nil {
		return info, err
	}
	req := c.newRequest(ctx, http.MethodHead, id, "")
	resp, err := c.doRequest("info", id, &req, http.StatusOK)
	if err != nil {
		return info, err
	}
	defer resp.Body.Close() // after parseInfo: the Header may be the connection's
	return parseInfo(id, resp.Header)
}

// parseInfo reads object info from response headers.
func parseInfo(id backend.ID, h http.Header) (backend.ObjectInfo, error) {
	info := backend.ObjectInfo{ID: backend.ID(h.Get(headerID)), Tier: h.Get(headerTier)}
	if info.ID == "" {
		info.ID = id
	}
	var errs []error
	num := func(name string) int64 {
		n, err := strconv.ParseInt(h.Get(name), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("header %s: %w", name, err))
		}
		return n
	}
	info.Size = num(headerSize)
	info.Importance = int(num(headerImportance))
	info.Pins = int(num(headerPins))
	if v := h.Get(headerLevel); v != "" && v != "none" {
		l, err := levels.Parse(v)
		if err != nil {
			errs = append(errs, err)
		}
		info.Level = l
	}
	if v := h.Get(headerChecksum); v != "" {
		c, err := strconv.ParseUint(v, 16, 32)
		if err != nil {
			errs = append(errs, fmt.Errorf("header %s: %w", headerChecksum, err))
		}
		info.Checksum = uint32(c)
	}
	when := func(name string) time.Time {
		v := h.Get(name)
		if v == "" {
			return time.Time{}
		}
		tm, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("header %s: %w", name, err))
		}
		return tm
	}
	info.Created = when(headerCreated)
	info.Accessed = when(headerAccessed)
	if err := errors.Join(errs...); err != nil {
		return info, fmt.Errorf("distore client: info %q: bad reply: %w", string(id), err)
	}
	return info, nil
}

// simple sends a body-less request that answers 204.
func (c *Client) simple(ctx context.Context, op, method string, id backend.ID, sub string) error {
	if err := checkID(op, id); err != nil {
		return err
	}
	req := c.newRequest(ctx, method, id, sub)
	resp, err := c.doRequest(op, id, &req, http.StatusNoContent)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Delete removes the object; a pinned object is not deleted (ErrPinned).
func (c *Client) Delete(ctx context.Context, id backend.ID) error {
	return c.simple(ctx, "delete", http.MethodDelete, id, "")
}

// Pin adds one to the object's pin count: it is never spilled nor deleted
// until as many Unpins.
func (c *Client) Pin(ctx context.Context, id backend.ID) error {
	return c.simple(ctx, "pin", http.MethodPost, id, "pin")
}

// Unpin takes one from the object's pin count (ErrNotPinned if it has none).
func (c *Client) Unpin(ctx context.Context, id backend.ID) error {
	return c.simple(ctx, "unpin", http.MethodPost, id, "unpin")
}

// Prefetch makes the object ready in the server's fastest tier and returns
// when it is there.
func (c *Client) Prefetch(ctx context.Context, id backend.ID) error {
	return c.simple(ctx, "prefetch", http.MethodPost, id, "prefetch")
}

// ListPage is one page of List. Next is the cursor of the next page (pass it
// as ListOptions.After); empty on the last page.
type ListPage struct {
	Objects []backend.ObjectInfo `json:"objects"`
	Next    backend.ID           `json:"next,omitempty"`
}

// List returns one page of objects in ascending ID order.
func (c *Client) List(ctx context.Context, opts backend.ListOptions) (ListPage, error) {
	var page ListPage
	q := url.Values{}
	if opts.Prefix != "" {
		q.Set("prefix", opts.Prefix)
	}
	if opts.After != "" {
		q.Set("after", string(opts.After))
	}
	if opts.Limit != 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	u := c.base + "/v1/objects"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	if err := c.getJSON(ctx, "list", u, &page); err != nil {
		return page, err
	}
	return page, nil
}

// All iterates over every object whose ID starts with prefix, a page at a
// time. It stops at the first error, which it yields.
func (c *Client) All(ctx context.Context, prefix string) iter.Seq2[backend.ObjectInfo, error] {
	return func(yield func(backend.ObjectInfo, error) bool) {
		opts := backend.ListOptions{Prefix: prefix}
		for {
			page, err := c.List(ctx, opts)
			if err != nil {
				yield(backend.ObjectInfo{}, err)
				return
			}
			for _, o := range page.Objects {
				if !yield(o, nil) {
					return
				}
			}
			if page.Next == "" {
				return
			}
			opts.After = page.Next
		}
	}
}

// Stats returns the server's usage, per tier in Tiers.
func (c *Client) Stats(ctx context.Context) (backend.Stats, error) {
	var st backend.Stats
	err := c.getJSON(ctx, "stats", c.base+"/v1/stats", &st)
	return st, err
}

// Health checks that the server answers and its store works.
func (c *Client) Health(ctx context.Context) error {
	var v map[string]string
	return c.getJSON(ctx, "health", c.base+"/healthz", &v)
}

func (c *Client) getJSON(ctx context.Context, op, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("distore client: %s: %w", op, err)
	}
	resp, err := c.do(op, "", req, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("distore client: %s: reading the reply: %w", op, err)
	}
	return nil
}
