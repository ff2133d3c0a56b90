// Package server is distore's storage server: an HTTP API over any
// backend.Backend — usually a spill.Stack of tiers — with streamed bodies both
// ways, JSON errors with stable codes, and Prometheus metrics.
//
// The API is described in docs/http-api.md. In short:
//
//	POST   /v1/objects               put, the server picks the ID
//	PUT    /v1/objects/{id}          put under a chosen ID
//	GET    /v1/objects/{id}          get (Range: a single byte range)
//	HEAD   /v1/objects/{id}          object info in headers
//	DELETE /v1/objects/{id}          delete
//	POST   /v1/objects/{id}/pin      pin, unpin, prefetch
//	GET    /v1/objects?prefix=&after=&limit=
//	GET    /v1/stats, /healthz, /metrics
//
// A Server is an http.Handler; Serve runs it on a listener until its context
// ends and then shuts down gracefully.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"distore/backend"
	"distore/levels"
)

// Header names of the API. Object info travels in these on GET and HEAD;
// importance and checksum may be sent on a put.
const (
	HeaderSize       = "X-Distore-Size"
	HeaderImportance = "X-Distore-Importance"
	HeaderPins       = "X-Distore-Pins"
	HeaderLevel      = "X-Distore-Level"
	HeaderTier       = "X-Distore-Tier"
	HeaderCreated    = "X-Distore-Created"
	HeaderAccessed   = "X-Distore-Accessed"
	HeaderChecksum   = "X-Distore-Checksum" // CRC-32C, 8 lower-case hex digits
	HeaderID         = "X-Distore-Id"
)

// Limits of List pages.
const (
	DefaultListLimit = backend.DefaultListLimit
	MaxListLimit     = 10000
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives request errors; nil means slog.Default().
	Logger *slog.Logger
	// Registry is where the server registers its metrics, served at /metrics;
	// nil means a new registry with the Go and process collectors.
	Registry *prometheus.Registry
	// Owner, when set, makes generated IDs "owner.random" (backend.NewOwnedID),
	// so that they name this node.
	Owner string
	// SmallObject is the size up to which a put is read whole into a pooled
	// buffer and stored with one Put call instead of a streamed writer; 0 means
	// 64 KiB, a negative value streams every put.
	SmallObject int64
	// IOTimeout bounds how long a request body may stall (no bytes arrive)
	// and how long a response may wait for the client to take more bytes;
	// 0 means one minute. A stalled put is aborted, freeing its reserved
	// space; a stalled get releases the object.
	IOTimeout time.Duration
	// Cluster, when set, serves /v1/cluster/ (package cluster's Handler),
	// behind the same handler chain as every other route.
	Cluster http.Handler
}

// Server serves a backend over HTTP. It is safe for concurrent use.
type Server struct {
	b     backend.Backend
	log   *slog.Logger
	reg   *prometheus.Registry
	met   *metrics
	mux   *http.ServeMux
	owner string
	small int64
	ioTO  time.Duration
}

// New returns a Server over b. The caller keeps ownership of b (sets it up
// before and tears it down after serving).
func New(b backend.Backend, opts Options) (*Server, error) {
	if b == nil {
		return nil, errors.New("server: nil backend")
	}
	if opts.Owner != "" {
		if _, err := backend.NewOwnedID(opts.Owner); err != nil {
			return nil, fmt.Errorf("server: owner: %w", err)
		}
	}
	s := &Server{b: b, log: opts.Logger, reg: opts.Registry, owner: opts.Owner, small: opts.SmallObject}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.small == 0 {
		s.small = 64 << 10
	}
	if s.ioTO = opts.IOTimeout; s.ioTO <= 0 {
		s.ioTO = time.Minute
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
		s.reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	}
	s.met = newMetrics(s.reg, b)
	registerBackendCollectors(s.reg, b)

	m := http.NewServeMux()
	m.HandleFunc("POST /v1/objects", s.handlePut)
	m.HandleFunc(routePutObject, s.handlePut)
	m.HandleFunc(routeGetObject, s.handleGet) // GET also answers HEAD
	m.HandleFunc("DELETE /v1/objects/{id}", s.handleDelete)
	m.HandleFunc("POST /v1/objects/{id}/{action}", s.handleAction)
	m.HandleFunc("GET /v1/objects", s.handleList)
	m.HandleFunc("GET /v1/stats", s.handleStats)
	m.HandleFunc("GET /healthz", s.handleHealth)
	m.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}))
	if opts.Cluster != nil {
		m.Handle("/v1/cluster/", opts.Cluster)
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(r.URL.Path); allow != "" {
			writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, code: CodeMethod, allow: allow,
				msg: fmt.Sprintf("%s %s: allowed methods are %s", r.Method, r.URL.Path, allow)})
			return
		}
		writeError(w, r, errorf(http.StatusNotFound, CodeNoRoute, fmt.Sprintf("no endpoint %s %s (see docs/http-api.md)", r.Method, r.URL.Path)))
	})
	s.mux = m
	return s, nil
}

// Registry returns the registry the server's metrics live in, so that a
// program can add its own collectors.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// ServeHTTP routes the request and records its metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var status int
	var n int64
	if lw, ok := w.(*response); ok {
		// The loop's own writer keeps the status and counts: no recorder.
		s.mux.ServeHTTP(lw, r)
		status, n = lw.status, lw.written
	} else {
		rec := &recorder{ResponseWriter: w}
		s.mux.ServeHTTP(rec, r)
		status, n = rec.status, rec.n
	}
	route := r.Pattern // set by the mux on r
	if route == "" || route == "/" {
		route = "unmatched"
	}
	if status == 0 {
		status = http.StatusOK
	}
	s.met.observe(route, status, time.Since(start), n)
}

// Serve serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, closes idle connections, lets in-flight requests finish for up
// to grace, and closes the rest (cancelling their contexts). It returns nil
// after a clean shutdown.
//
// Serve runs distore's own HTTP/1.1 connection loop (see conn.go), not
// net/http's server: fewer syscalls and wake-ups per request. Request
// contexts derive from ctx without its cancellation.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	return newLoop(s, s.log).serve(ctx, ln, grace)
}

// allowed returns the methods the API serves on path, "" if none.
func allowed(path string) string {
	rest, ok := strings.CutPrefix(path, "/v1/objects")
	switch {
	case path == "/v1/stats" || path == "/healthz" || path == "/metrics":
		return "GET, HEAD"
	case !ok:
		return ""
	case rest == "":
		return "GET, HEAD, POST"
	case !strings.HasPrefix(rest, "/"):
		return ""
	}
	switch strings.Count(rest, "/") {
	case 1:
		return "GET, HEAD, PUT, DELETE"
	case 2:
		return "POST"
	}
	return ""
}

// zeroCopyGet serves memory-tier objects from Get's bytes (a benchmark
// toggles it to compare with OpenReader).
var zeroCopyGet = true

// bufPool holds the copy buffers of streamed bodies.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// query returns r's query parameters; nil (which reads as empty) when there
// are none, sparing a map on every plain request.
func query(r *http.Request) url.Values {
	if r.URL.RawQuery == "" {
		return nil
	}
	return r.URL.Query()
}

// checkQuery fails with 400 when the query has a parameter not in allowed, or
// one given twice.
func checkQuery(q url.Values, allowed ...string) error {
	for k, v := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return errorf(http.StatusBadRequest, CodeInvalidArgument,
				fmt.Sprintf("unknown query parameter %q (allowed here: %s)", truncate(k), strings.Join(allowed, ", ")))
		}
		if len(v) > 1 {
			return errorf(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("query parameter %q given %d times", k, len(v)))
		}
	}
	return nil
}

// pathID returns the {id} of the path, validated.
func pathID(r *http.Request, op string) (backend.ID, error) {
	id := backend.ID(r.PathValue("id"))
	if err := backend.CheckID(op, "server", id); err != nil {
		return "", err
	}
	return id, nil
}

func badParam(format string, args ...any) error {
	return errorf(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf(format, args...))
}

// putOptions reads importance (query or header) and checksum (header).
func putOptions(r *http.Request, q url.Values) (backend.PutOptions, error) {
	var o backend.PutOptions
	qi, hi := q.Get("importance"), r.Header.Get(HeaderImportance)
	if qi != "" && hi != "" && qi != hi {
		return o, badParam("importance %q in the query and %q in %s differ", truncate(qi), truncate(hi), HeaderImportance)
	}
	if v := qi + hi; v != "" {
		if qi != "" {
			v = qi
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return o, badParam("importance %q is not an integer", truncate(v))
		}
		o.Importance = n
	}
	if v := r.Header.Get(HeaderChecksum); v != "" {
		c, err := strconv.ParseUint(v, 16, 32)
		if err != nil {
			return o, badParam("%s %q is not 8 hex digits (CRC-32C)", HeaderChecksum, truncate(v))
		}
		o.Checksum = uint32(c)
	}
	return o, nil
}

func (s *Server) handlePut(w http.ResponseWriter, r *http.Request) {
	if err := s.put(w, r); err != nil {
		s.fail(w, r, err)
	}
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	if err := checkQuery(q, "importance"); err != nil {
		return err
	}
	var id backend.ID
	if r.Method == http.MethodPut {
		var err error
		if id, err = pathID(r, "put"); err != nil {
			return err
		}
	} else if s.owner != "" {
		id, _ = backend.NewOwnedID(s.owner) // owner validated in New
	} else {
		id = backend.NewID()
	}
	opts, err := putOptions(r, q)
	if err != nil {
		return err
	}
	size := r.ContentLength
	if size < 0 {
		return errorf(http.StatusLengthRequired, CodeLengthRequired,
			"a put needs Content-Length: the size is declared before the body streams in (no chunked bodies)")
	}
	ctx := r.Context()
	var info backend.ObjectInfo
	if size <= s.small {
		// Small objects: one read and one Put beat a writer's set-up.
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		buf := (*bp)[:size]
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(s.ioTO))
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return bodyError(id, size, err)
		}
		s.met.bytesIn.Add(float64(size))
		if info, err = s.b.Put(ctx, id, buf, opts); err != nil {
			return putError(err)
		}
	} else {
		wr, err := s.b.OpenWriter(ctx, id, size, opts)
		if err != nil {
			return err
		}
		bp := bufPool.Get().(*[]byte)
		body := &bodyReader{r: r.Body, rc: http.NewResponseController(w), timeout: s.ioTO}
		n, err := io.CopyBuffer(writerOnly{wr}, io.LimitReader(body, size), *bp)
		bufPool.Put(bp)
		s.met.bytesIn.Add(float64(n))
		if err == nil && n < size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			_ = wr.Abort()
			if ctx.Err() != nil || isBodyError(err) {
				return bodyError(id, size, err)
			}
			return putError(err)
		}
		if err := wr.Close(); err != nil {
			return putError(err)
		}
		if info, err = s.b.ObjectInfo(ctx, id); err != nil {
			return err
		}
	}
	h := w.Header()
	h["Location"] = []string{"/v1/objects/" + string(id)}
	h["Content-Type"] = jsonType
	w.WriteHeader(http.StatusCreated)
	return writeInfo(w, info)
}

// putError makes a checksum mismatch on a put a 422: the request's bytes
// do not match the checksum it gave, which is not the store's fault.
func putError(err error) error {
	if errors.Is(err, backend.ErrCorrupt) {
		return errorf(http.StatusUnprocessableEntity, CodeCorrupt, err.Error())
	}
	return err
}

// writerOnly hides a writer's ReadFrom so that CopyBuffer uses our buffer
// rather than a small one of the writer's choosing.
type writerOnly struct{ io.Writer }

// bodyReader reads a request body, giving each read its deadline, and marks
// the errors of reading it, to tell them from the backend's.
type bodyReader struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
}

func (b *bodyReader) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = bodyReadError{err}
	}
	return n, err
}

// bodyReadError marks errors that came from reading the request body.
type bodyReadError struct{ err error }

func (e bodyReadError) Error() string { return e.err.Error() }
func (e bodyReadError) Unwrap() error { return e.err }

func isBodyError(err error) bool {
	var be bodyReadError
	return errors.As(err, &be) || errors.Is(err, io.ErrUnexpectedEOF)
}

func bodyError(id backend.ID, size int64, err error) error {
	return errorf(http.StatusBadRequest, CodeBadBody,
		fmt.Sprintf("put %q: body ended before its %d bytes (Content-Length): %v; nothing stored", string(id), size, err))
}

// setInfoHeaders puts an object's info in response headers: all of it for
// HEAD; for GET only what a reader needs to check the bytes (size and
// checksum), as every header costs both ends time on small objects. It sets
// Content-Length to n too.
func setInfoHeaders(h http.Header, info backend.ObjectInfo, all bool, n int64) {
	// Direct assignment: the names are already canonical. One backing array
	// holds every value (one allocation, not one per header).
	vals := make([]string, 0, 13)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	size := strconv.FormatInt(info.Size, 10)
	set(HeaderSize, size)
	if n != info.Size {
		size = strconv.FormatInt(n, 10)
	}
	set("Content-Length", size)
	set(HeaderChecksum, hex8(info.Checksum))
	h["Content-Type"] = octetType
	if !all {
		return
	}
	set(HeaderID, string(info.ID))
	set(HeaderImportance, strconv.Itoa(info.Importance))
	set(HeaderPins, strconv.Itoa(info.Pins))
	set(HeaderLevel, info.Level.String())
	set(HeaderTier, info.Tier)
	if !info.Created.IsZero() {
		set(HeaderCreated, info.Created.UTC().Format(time.RFC3339Nano))
		set("Last-Modified", info.Created.UTC().Format(http.TimeFormat))
	}
	if !info.Accessed.IsZero() {
		set(HeaderAccessed, info.Accessed.UTC().Format(time.RFC3339Nano))
	}
	h["Accept-Ranges"] = bytesRanges
}

// Header values shared by every response that has them (Header.Set and Add
// replace a slice, never write into it).
var (
	jsonType    = []string{"application/json"}
	octetType   = []string{"application/octet-stream"}
	bytesRanges = []string{"bytes"}
)

// hex8 formats a CRC-32C as 8 lower-case hex digits.
func hex8(c uint32) string {
	var b [8]byte
	return string(appendHex8(b[:0], c))
}

// appendHex8 appends a CRC-32C as 8 lower-case hex digits.
func appendHex8(b []byte, c uint32) []byte {
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, "0123456789abcdef"[c>>shift&15])
	}
	return b
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	if err := s.get(w, r); err != nil {
		s.fail(w, r, err)
	}
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(query(r)); err != nil {
		return err
	}
	id, err := pathID(r, "get")
	if err != nil {
		return err
	}
	ctx := r.Context()
	info, err := s.b.ObjectInfo(ctx, id)
	if err != nil {
		return err
	}
	off, n, partial, err := parseRange(r.Header.Get("Range"), info.Size)
	if err != nil {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", info.Size))
		return err
	}
	h := w.Header()
	setInfoHeaders(h, info, r.Method == http.MethodHead, n)
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, info.Size))
		status = http.StatusPartialContent
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return nil
	}
	if info.Level == levels.Memory && zeroCopyGet {
		// The memory tier's Get is zero-copy: write straight from the arena.
		obj, err := s.b.Get(ctx, id)
		if err != nil {
			return err
		}
		defer obj.Close()
		data := obj.Bytes()
		if int64(len(data)) != info.Size {
			return fmt.Errorf("server: get %q: object is %d bytes, its info says %d", string(id), len(data), info.Size)
		}
		if c := obj.Info().Checksum; c != info.Checksum {
			// Deleted and put again, as big, since ObjectInfo: the
			// checksum must be that of the bytes sent.
			h[HeaderChecksum] = []string{hex8(c)}
		}
		w.WriteHeader(status)
		_, err = s.writeBody(w, data[off:off+n])
		return s.afterHeader(r, id, err)
	}
	rc, err := s.b.OpenReader(ctx, id, off, n)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.WriteHeader(status)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	got, err := io.CopyBuffer(&deadlineWriter{w: w, rc: http.NewResponseController(w), timeout: s.ioTO}, rc, *bp)
	if err == nil && got != n {
		err = fmt.Errorf("object ended after %d of %d bytes", got, n)
	}
	return s.afterHeader(r, id, err)
}

// writeChunk is the most written under one write deadline.
const writeChunk = 4 << 20

// writeBody writes data in chunks, each with its deadline, so a client that
// stops reading cannot hold the object forever, while one that reads slowly
// but steadily is served.
func (s *Server) writeBody(w http.ResponseWriter, data []byte) (int, error) {
	if len(data) <= writeChunk {
		return w.Write(data) // small: the socket buffer takes it
	}
	return (&deadlineWriter{w: w, rc: http.NewResponseController(w), timeout: s.ioTO}).Write(data)
}

// deadlineWriter sets a write deadline before each chunk it writes.
type deadlineWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	// net/http keeps a write deadline for the connection's next requests:
	// clear it after.
	defer d.rc.SetWriteDeadline(time.Time{})
	done := 0
	for done < len(p) {
		_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
		n, err := d.w.Write(p[done:min(len(p), done+writeChunk)])
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// afterHeader handles an error met once the status was sent: the client sees
// a short body (its Content-Length is not met); we log it.
func (s *Server) afterHeader(r *http.Request, id backend.ID, err error) error {
	if err != nil && r.Context().Err() == nil {
		s.log.Warn("get: response cut short", "id", string(id), "remote", r.RemoteAddr, "err", err)
	}
	return nil
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	err := checkQuery(query(r))
	var id backend.ID
	if err == nil {
		id, err = pathID(r, "delete")
	}
	if err == nil {
		err = s.b.Delete(r.Context(), id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAction(w http.ResponseWriter, r *http.Request) {
	err := checkQuery(query(r))
	var id backend.ID
	if err == nil {
		id, err = pathID(r, r.PathValue("action"))
	}
	if err == nil {
		ctx := r.Context()
		switch a := r.PathValue("action"); a {
		case "pin":
			err = s.b.Pin(ctx, id)
		case "unpin":
			err = s.b.Unpin(ctx, id)
		case "prefetch":
			err = s.b.Prefetch(ctx, id)
		default:
			err = errorf(http.StatusNotFound, CodeNoRoute, fmt.Sprintf("no action %q (pin, unpin, prefetch)", truncate(a)))
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ListPage is the JSON body of GET /v1/objects. Next is the cursor of the
// next page (pass it as after=), empty on the last page.
type ListPage struct {
	Objects []backend.ObjectInfo `json:"objects"`
	Next    backend.ID           `json:"next,omitempty"`
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	if err := s.list(w, r); err != nil {
		s.fail(w, r, err)
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	if err := checkQuery(q, "prefix", "after", "limit"); err != nil {
		return err
	}
	opts := backend.ListOptions{Prefix: q.Get("prefix"), After: backend.ID(q.Get("after")), Limit: DefaultListLimit}
	if opts.After != "" {
		if err := opts.After.Validate(); err != nil {
			return badParam("after: %v", err)
		}
	}
	if opts.Prefix != "" && len(opts.Prefix) > backend.MaxIDLen {
		return badParam("prefix is %d bytes, longer than an ID (%d)", len(opts.Prefix), backend.MaxIDLen)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			return badParam("limit %q must be an integer from 1 to %d", truncate(v), MaxListLimit)
		}
		opts.Limit = n
	}
	want := opts.Limit
	opts.Limit++ // one more tells whether there is a next page
	objs, err := s.b.List(r.Context(), opts)
	if err != nil {
		return err
	}
	page := ListPage{Objects: objs}
	if len(objs) > want {
		page.Objects = objs[:want]
		page.Next = objs[want-1].ID
	}
	if page.Objects == nil {
		page.Objects = []backend.ObjectInfo{}
	}
	return writeJSON(w, page)
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	err := checkQuery(query(r))
	var st backend.Stats
	if err == nil {
		st, err = s.b.Stats(r.Context())
	}
	if err == nil {
		err = writeJSON(w, st)
	}
	if err != nil {
		s.fail(w, r, err)
	}
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.b.Stats(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	_ = writeJSON(w, map[string]string{"status": "ok"})
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header()["Content-Type"] = jsonType
	return json.NewEncoder(w).Encode(v)
}

// fail sends err to the client and logs what is the server's fault.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, _ := classify(err)
	if status >= 500 && status != http.StatusInsufficientStorage && status != http.StatusServiceUnavailable {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeError(w, r, err)
}
