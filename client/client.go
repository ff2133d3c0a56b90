// Package client is the Go client of the distore server's HTTP API
// (docs/http-api.md, package distore/wire).
//
// A Client reuses connections (one http.Client with a tuned http.Transport)
// and takes its timeouts from the context of each call. The server's errors
// come back as *Error values that wrap the sentinels of package backend, so
//
//	if errors.Is(err, backend.ErrNotFound) { ... }
//
// works through the network, and errors.As(err, &fe) with fe a
// *backend.FullError gives the sizes of a full or too-large put. NewBackend
// makes a Client a backend.Backend.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"distore/backend"
	"distore/wire"
)

// TokenEnv is the environment variable New reads the bearer token from when
// no WithToken option is given.
const TokenEnv = "DISTORE_TOKEN"

// Client talks to one distore server. It is safe for concurrent use.
type Client struct {
	base      string // "http://host:port", no trailing slash
	hc        *http.Client
	expectMin int64
	token     string
	tokenSet  bool
	tlsConfig *tls.Config
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client use hc instead of its own tuned one
// (WithTLSConfig then has no effect: hc's transport decides).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithExpectContinue sets the body size from which a put first asks the
// server whether it will take the object (Expect: 100-continue), so a put that
// fails (exists, too large) does not send its body. Default 8 MiB; a negative
// value never asks.
func WithExpectContinue(size int64) Option { return func(c *Client) { c.expectMin = size } }

// NewTransport returns a net/http Transport tuned for distore: keep-alive
// connections, many of them idle per host (a client is typically shared by
// many goroutines), no compression (objects are opaque bytes), 256 KiB
// buffers, HTTP/1.1.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 2 * time.Second,
		ResponseHeaderTimeout: 0, // the context bounds each call
		DisableCompression:    true,
		WriteBufferSize:       256 << 10,
		ReadBufferSize:        256 << 10,
		ForceAttemptHTTP2:     false,
	}
}

// New returns a client of the server at baseURL ("http://127.0.0.1:7070",
// or "https://..." for a server with TLS). Without WithToken it sends the
// token in $DISTORE_TOKEN, if set.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: %w: server URL %q must look like http://host:port", backend.ErrInvalidArgument, baseURL)
	}
	c := &Client{base: strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), expectMin: 8 << 20}
	for _, o := range opts {
		o(c)
	}
	if !c.tokenSet {
		c.token = os.Getenv(TokenEnv)
	}
	if strings.ContainsAny(c.token, "\r\n") {
		return nil, fmt.Errorf("client: %w: the token has a line break", backend.ErrInvalidArgument)
	}
	if c.hc == nil {
		tr := NewTransport()
		tr.TLSClientConfig = c.tlsConfig
		c.hc = &http.Client{
			Transport: tr,
			// The API never redirects: a redirect is an error, not a
			// request to another object (or host, with the token).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c, nil
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
	// Created, when non-zero, is kept as the object's creation time (an
	// object copied from elsewhere keeps its own).
	Created time.Time
	// PrefetchGroup, when set, spreads the object to every server of this
	// group after the put (cluster.go): the put returns once the object is
	// stored on this server, and the spread runs in the background.
	PrefetchGroup string
}

// Error is an error response of the server. It wraps the backend sentinel its
// code stands for (a *backend.FullError for "full" and "too_large";
// wire.ErrUnauthorized and wire.ErrForbidden for 401 and 403).
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

// respError reads an error response into an *Error and closes its body.
func respError(op string, id backend.ID, resp *http.Response) error {
	defer resp.Body.Close()
	var eb wire.ErrorBody
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &eb) != nil || eb.Code == "" {
		// Not the API's JSON (a HEAD, or a proxy's page): the headers and
		// the text tell what they can.
		eb = wire.ErrorBody{Code: resp.Header.Get(wire.HeaderErrorCode), Message: strings.TrimSpace(string(data))}
		if eb.Message == "" {
			eb.Message = resp.Header.Get(wire.HeaderErrorMessage)
		}
		if eb.Message == "" {
			eb.Message = http.StatusText(resp.StatusCode)
		}
	}
	return &Error{Op: op, ID: id, Status: resp.StatusCode, Code: eb.Code, Message: eb.Message, err: eb.Err(op, id, resp.StatusCode)}
}

// newRequest returns a request for method on path (the server's base is
// prefixed), with the client's token.
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// opError names op and id in err.
func opError(op string, id backend.ID, err error) error {
	if id == "" {
		return fmt.Errorf("distore client: %s: %w", op, err)
	}
	return fmt.Errorf("distore client: %s %q: %w", op, string(id), err)
}

// do sends req and returns the response if its status is one of ok.
func (c *Client) do(op string, id backend.ID, req *http.Request, ok ...int) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, opError(op, id, err)
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
		return &Error{Op: op, ID: id, Status: http.StatusBadRequest, Code: wire.CodeInvalidID, Message: err.Error(), err: backend.ErrInvalidID}
	}
	return nil
}

// preferMinimal is the Prefer header of a put: reply with the info header only.
var preferMinimal = []string{wire.PreferMinimal}

// Put stores data and returns the object's info (its ID, when the server
// chose it).
func (c *Client) Put(ctx context.Context, data []byte, opts PutOptions) (backend.ObjectInfo, error) {
	return c.put(ctx, bytes.NewReader(data), int64(len(data)), opts)
}

// PutReader stores exactly size bytes read from r, streaming them. If r ends
// early or the context ends, the server stores nothing.
func (c *Client) PutReader(ctx context.Context, r io.Reader, size int64, opts PutOptions) (backend.ObjectInfo, error) {
	return c.put(ctx, r, size, opts)
}

func (c *Client) put(ctx context.Context, r io.Reader, size int64, opts PutOptions) (backend.ObjectInfo, error) {
	var info backend.ObjectInfo
	if size < 0 {
		return info, &Error{Op: "put", ID: opts.ID, Status: http.StatusBadRequest, Code: wire.CodeInvalidArgument,
			Message: fmt.Sprintf("size %d is negative", size), err: backend.ErrInvalidArgument}
	}
	method, path := http.MethodPost, wire.ObjectsPath
	if opts.ID != "" {
		if err := checkID("put", opts.ID); err != nil {
			return info, err
		}
		method, path = http.MethodPut, wire.ObjectPath(opts.ID)
	}
	if _, ok := r.(*bytes.Reader); !ok {
		r = io.LimitReader(r, size) // never send more than declared
	}
	req, err := c.newRequest(ctx, method, path, r)
	if err != nil {
		return info, opError("put", opts.ID, err)
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	if opts.Importance != 0 {
		req.Header.Set(wire.HeaderImportance, strconv.Itoa(opts.Importance))
	}
	if opts.Checksum != 0 {
		req.Header.Set(wire.HeaderChecksum, wire.FormatChecksum(opts.Checksum))
	}
	if !opts.Created.IsZero() {
		req.Header.Set(wire.HeaderCreated, opts.Created.UTC().Format(time.RFC3339Nano))
	}
	if c.expectMin >= 0 && size >= c.expectMin {
		req.Header.Set("Expect", "100-continue")
	}
	req.Header["Prefer"] = preferMinimal // the info in a header, no JSON body
	resp, err := c.do("put", opts.ID, req, http.StatusCreated)
	if err != nil {
		return info, err
	}
	_, _ = io.Copy(io.Discard, resp.Body) // nothing, or a JSON body: the connection is reused either way
	resp.Body.Close()
	if info, err = wire.ParseInfo(opts.ID, resp.Header); err != nil {
		return info, opError("put", opts.ID, fmt.Errorf("reading the reply: %w", err))
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
	r, err := c.getReader(ctx, id, 0, -1, false)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if int64(cap(buf)) >= r.size {
		buf = buf[:r.size]
	} else {
		buf = make([]byte, r.size)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, opError("get", id, err)
	}
	return buf, nil
}

// GetReader streams length bytes of the object from offset (length -1: to
// the end). The caller closes the reader. The reader fails with
// io.ErrUnexpectedEOF if the connection ends before the range does. It also
// has the methods Size() int64 (the bytes it yields) and
// Info() backend.ObjectInfo (the info of the object these bytes are from).
func (c *Client) GetReader(ctx context.Context, id backend.ID, offset, length int64) (io.ReadCloser, error) {
	r, err := c.getReader(ctx, id, offset, length, true)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Reader is the reader GetReader returns.
type Reader struct {
	io.ReadCloser
	size int64
	info backend.ObjectInfo
}

// Size returns the number of bytes the reader yields.
func (r *Reader) Size() int64 { return r.size }

// Info returns the info of the object the reader's bytes are from.
func (r *Reader) Info() backend.ObjectInfo { return r.info }

// getReader is GetReader; withInfo parses the object's info from the
// headers (GetInto, which returns only bytes, skips it).
func (c *Client) getReader(ctx context.Context, id backend.ID, offset, length int64, withInfo bool) (*Reader, error) {
	if err := checkID("get", id); err != nil {
		return nil, err
	}
	badRange := func(msg string) error {
		return &Error{Op: "get", ID: id, Status: http.StatusRequestedRangeNotSatisfiable, Code: wire.CodeBadRange,
			Message: msg, err: backend.ErrInvalidArgument}
	}
	if offset < 0 || length < -1 {
		return nil, badRange(fmt.Sprintf("offset %d length %d", offset, length))
	}
	if length == 0 {
		// HTTP cannot ask for zero bytes; check the range with HEAD instead.
		info, err := c.Info(ctx, id)
		if err != nil {
			return nil, err
		}
		if offset > info.Size {
			return nil, badRange(fmt.Sprintf("offset %d is past the object's %d bytes", offset, info.Size))
		}
		return &Reader{ReadCloser: http.NoBody, info: info}, nil
	}
	req, err := c.newRequest(ctx, http.MethodGet, wire.ObjectPath(id), nil)
	if err != nil {
		return nil, opError("get", id, err)
	}
	switch {
	case length > 0:
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, opError("get", id, err)
	}
	switch {
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && length == -1 &&
		resp.Header.Get("Content-Range") == fmt.Sprintf("bytes */%d", offset):
		// Reading from the very end gives nothing, as backend.OpenReader does;
		// HTTP has no way to ask for it.
		resp.Body.Close()
		info, err := c.Info(ctx, id)
		if err != nil {
			return nil, err
		}
		return &Reader{ReadCloser: http.NoBody, info: info}, nil
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent:
		return nil, respError("get", id, resp)
	}
	var info backend.ObjectInfo
	if withInfo {
		info, err = wire.ParseInfo(id, resp.Header)
	}
	fail := func(err error) (*Reader, error) {
		resp.Body.Close()
		return nil, opError("get", id, err)
	}
	switch {
	case err != nil:
		return fail(fmt.Errorf("bad reply: %w", err))
	case length > 0 && resp.ContentLength != length:
		resp.Body.Close()
		return nil, badRange(fmt.Sprintf("asked %d bytes from offset %d, the object has %d there", length, offset, resp.ContentLength))
	case resp.ContentLength < 0:
		return fail(fmt.Errorf("reply without Content-Length"))
	case resp.ContentLength == 0:
		resp.Body.Close() // the connection goes back now, read or not
		return &Reader{ReadCloser: http.NoBody, info: info}, nil
	}
	return &Reader{ReadCloser: resp.Body, size: resp.ContentLength, info: info}, nil
}

// Info returns the object's metadata (a HEAD request).
func (c *Client) Info(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	var info backend.ObjectInfo
	if err := checkID("info", id); err != nil {
		return info, err
	}
	req, err := c.newRequest(ctx, http.MethodHead, wire.ObjectPath(id), nil)
	if err != nil {
		return info, opError("info", id, err)
	}
	resp, err := c.do("info", id, req, http.StatusOK)
	if err != nil {
		return info, err
	}
	resp.Body.Close()
	if info, err = wire.ParseInfo(id, resp.Header); err != nil {
		return info, opError("info", id, fmt.Errorf("bad reply: %w", err))
	}
	return info, nil
}

// simple sends a body-less request that answers 204.
func (c *Client) simple(ctx context.Context, op, method string, id backend.ID, sub string) error {
	if err := checkID(op, id); err != nil {
		return err
	}
	p := wire.ObjectPath(id)
	if sub != "" {
		p += "/" + sub
	}
	req, err := c.newRequest(ctx, method, p, nil)
	if err != nil {
		return opError(op, id, err)
	}
	resp, err := c.do(op, id, req, http.StatusNoContent)
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
type ListPage = wire.ListPage

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
	u := wire.ObjectsPath
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
	err := c.getJSON(ctx, "stats", wire.StatsPath, &st)
	return st, err
}

// Health checks that the server answers and its store works.
func (c *Client) Health(ctx context.Context) error {
	var v map[string]string
	return c.getJSON(ctx, "health", wire.HealthPath, &v)
}

// getJSON gets path and decodes its JSON reply into v.
func (c *Client) getJSON(ctx context.Context, op, path string, v any) error {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
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
