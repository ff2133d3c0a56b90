// Package server is distore's storage server: an HTTP API over any
// backend.Backend — usually a spill.Stack of tiers — with streamed bodies both
// ways, JSON errors with stable codes, bearer tokens, TLS and Prometheus
// metrics.
//
// The API is described in docs/http-api.md and its wire contract in package
// distore/wire. In short:
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
// A Server is an http.Handler: every request, whichever door it came in by,
// passes its one handler chain (authentication, limits, metrics, logging).
// Serve runs it in a tuned net/http server until its context ends and then
// shuts down gracefully.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/http/httpguts"

	"distore/backend"
	"distore/wire"
)

// Options configure a Server. The zero value is usable: no tokens (serve
// on loopback only, see Serve), plain HTTP.
type Options struct {
	// Logger receives request errors and, at debug level, one line per
	// request; nil means slog.Default().
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
	// space; a stalled get is cut off and releases the object.
	IOTimeout time.Duration
	// MinBodyRate is the least average rate, in bytes per second, at which a
	// request body must arrive after a first IOTimeout of grace: a client
	// that trickles a byte at a time is cut off too. 0 means 64 KiB/s; a
	// negative value checks only stalls.
	MinBodyRate int64
	// HeaderTimeout bounds the time to read a request's head; 0 means 10 s.
	HeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long; 0 means 2 min.
	IdleTimeout time.Duration

	// Tokens, when set, are the bearer tokens the API accepts; every request
	// but /healthz (and /metrics unless MetricsAuth) then needs one with the
	// right for it. Nil: no authentication.
	Tokens []Token
	// MetricsAuth makes /metrics need a read token.
	MetricsAuth bool
	// TLS, when set, makes Serve speak HTTPS with this configuration.
	TLS *tls.Config
	// Cluster, when set, serves /v1/cluster/ (package cluster's Handler),
	// behind the same handler chain as every other route.
	Cluster http.Handler
}

// Server serves a backend over HTTP. It is safe for concurrent use.
type Server struct {
	b           backend.Backend
	ids         backend.Backend // b's Trusted view: for IDs pathID validated
	log         *slog.Logger
	reg         *prometheus.Registry
	met         *metrics
	mux         *http.ServeMux
	owner       string
	small       int64
	ioTO        time.Duration
	minRate     int64
	headerTO    time.Duration
	idleTO      time.Duration
	tokens      []authToken // nil: no authentication
	metricsAuth bool
	tls         *tls.Config
	pins        *pinLeases // pins with a TTL
	groups      Groups     // prefetch groups, when the server is in a cluster (SetGroups)
	arena       localArena // the memory tier, for puts read straight into it; nil if none
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
	s := &Server{b: b, ids: backend.Trusted(b), log: opts.Logger, reg: opts.Registry, owner: opts.Owner, small: opts.SmallObject,
		ioTO: opts.IOTimeout, minRate: opts.MinBodyRate, headerTO: opts.HeaderTimeout, idleTO: opts.IdleTimeout,
		metricsAuth: opts.MetricsAuth, tls: opts.TLS}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.small == 0 {
		s.small = 64 << 10
	}
	if s.ioTO <= 0 {
		s.ioTO = time.Minute
	}
	if s.minRate == 0 {
		s.minRate = 64 << 10
	}
	if s.headerTO <= 0 {
		s.headerTO = 10 * time.Second
	}
	if s.idleTO <= 0 {
		s.idleTO = 2 * time.Minute
	}
	if opts.Tokens != nil {
		if len(opts.Tokens) == 0 {
			return nil, errors.New("server: an empty token list would refuse every request")
		}
		for _, t := range opts.Tokens {
			if len(t.Secret) < minSecret || t.Right < RightRead || t.Right > RightAdmin {
				return nil, fmt.Errorf("server: token %q: secret shorter than %d bytes or no right", t.Name, minSecret)
			}
		}
		s.tokens = hashTokens(opts.Tokens)
	}
	s.arena = findArena(b)
	s.pins = newPinLeases(s.ids, s.log) // HTTP pins: IDs from pathID
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
		s.reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	}
	s.met = newMetrics(s.reg, b)
	registerBackendCollectors(s.reg, b)

	m := http.NewServeMux()
	m.HandleFunc("POST /v1/objects", s.handlePut)
	m.HandleFunc("PUT /v1/objects/{id}", s.handlePut)
	m.HandleFunc("GET /v1/objects/{id}", s.columnarOr(s.handleGet)) // GET also answers HEAD
	m.HandleFunc("GET /v1/objects/{id}/schema", s.handleSchema)
	m.HandleFunc("DELETE /v1/objects/{id}", s.handleDelete)
	m.HandleFunc("POST /v1/objects/{id}/{action}", s.handleAction)
	m.HandleFunc("GET /v1/objects", s.handleList)
	m.HandleFunc("GET /v1/stats", s.handleStats)
	m.HandleFunc("GET /healthz", s.handleHealth)
	prom := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)})
	m.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if err := checkQuery(query(r)); err != nil {
			s.fail(w, r, err)
			return
		}
		prom.ServeHTTP(w, r)
	})
	if opts.Cluster != nil {
		m.Handle("/v1/cluster/", opts.Cluster)
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wire.ObjectsPath+"/" { // an object path with an empty ID
			s.fail(w, r, backend.CheckID(strings.ToLower(r.Method), "server", ""))
			return
		}
		if allow := allowed(r.URL.Path); allow != "" {
			writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, code: wire.CodeMethod, allow: allow,
				msg: fmt.Sprintf("%s %s: allowed methods are %s", r.Method, truncate(r.URL.Path), allow)})
			return
		}
		writeError(w, r, errorf(http.StatusNotFound, wire.CodeNoRoute, fmt.Sprintf("no endpoint %s %s (see docs/http-api.md)", r.Method, truncate(r.URL.Path))))
	})
	s.mux = m
	return s, nil
}

// Registry returns the registry the server's metrics live in, so that a
// program can add its own collectors.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// ServeHTTP is the one handler chain every request passes: recovery,
// metrics and logging around authentication, the path check and the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	// Every write of the response, and net/http's flush after the handler
	// returns, must end within the I/O timeout: a client that stopped reading
	// cannot hold the connection and the object's memory. This also replaces
	// the deadline the connection's previous response left.
	rec.deadline = writeDeadline{rc: *http.NewResponseController(w), timeout: s.ioTO} // in rec: no allocation of its own
	rec.deadline.renew(start)
	var who string
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
			if rec.status == 0 {
				writeError(rec, r, errorf(http.StatusInternalServerError, wire.CodeInternal, "internal error (logged)"))
			}
		}
		// net/http flushes what is buffered after the handler returns: a
		// client that stopped reading must not hold that flush forever.
		rec.deadline.renew(time.Now())
		route := r.Pattern // set by the mux on r
		if route == "" || route == "/" {
			route = "unmatched"
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		d := time.Since(start)
		s.met.observe(route, status, d, rec.n)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", status, "bytes", rec.n,
				"duration", d, "remote", r.RemoteAddr, "token", who)
		}
	}()
	var err error
	if len(r.TransferEncoding) > 0 {
		// No route takes a chunked body (a put declares its size). A
		// request with both Transfer-Encoding and Content-Length is how
		// smuggling starts: answer, and read nothing more from this
		// connection.
		w.Header().Set("Connection", "close")
		err = errorf(http.StatusLengthRequired, wire.CodeLengthRequired,
			"Transfer-Encoding is not accepted: send the body with Content-Length")
	} else if who, err = s.authorize(r); err == nil {
		err = checkPath(r)
	}
	if err != nil {
		if status, _ := classify(err); status == http.StatusUnauthorized {
			rec.Header().Set("WWW-Authenticate", `Bearer realm="distore"`)
		}
		writeError(rec, r, err)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// checkPath refuses a path that is not clean (".", "..", "//", also when
// escaped): ServeMux would answer it with a redirect that has no JSON body,
// and a client following it would act on another object than it named.
// Under /v1/objects/ that is an invalid ID.
func checkPath(r *http.Request) error {
	p := r.URL.Path
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	if clean == p && strings.HasPrefix(p, "/") {
		return nil
	}
	if rest, ok := strings.CutPrefix(p, wire.ObjectsPath+"/"); ok {
		if err := backend.CheckID(strings.ToLower(r.Method), "server", backend.ID(rest)); err != nil {
			return err
		}
	}
	return errorf(http.StatusBadRequest, wire.CodeInvalidArgument,
		fmt.Sprintf("path %q is not clean: no \".\", \"..\" nor empty segments", truncate(p)))
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

// zeroCopyGet lets a reader that can write itself (the memory tier's, from
// the mapping) do so; a benchmark turns it off to compare with a buffer.
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
			return errorf(http.StatusBadRequest, wire.CodeInvalidArgument,
				fmt.Sprintf("unknown query parameter %q (allowed here: %s)", truncate(k), strings.Join(allowed, ", ")))
		}
		if len(v) > 1 {
			return errorf(http.StatusBadRequest, wire.CodeInvalidArgument, fmt.Sprintf("query parameter %q given %d times", k, len(v)))
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
	return errorf(http.StatusBadRequest, wire.CodeInvalidArgument, fmt.Sprintf(format, args...))
}

// putOptions reads importance (query or header) and checksum (header).
func putOptions(r *http.Request, q url.Values) (backend.PutOptions, error) {
	var o backend.PutOptions
	qi, hi := q.Get("importance"), r.Header.Get(wire.HeaderImportance)
	if qi != "" && hi != "" && qi != hi {
		return o, badParam("importance %q in the query and %q in %s differ", truncate(qi), truncate(hi), wire.HeaderImportance)
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
	if v := r.Header.Get(wire.HeaderChecksum); v != "" {
		c, err := wire.ParseChecksum(v)
		if err != nil {
			return o, badParam("%s %q is not 8 hex digits (CRC-32C)", wire.HeaderChecksum, truncate(v))
		}
		o.Checksum = c
	}
	if v := r.Header.Get(wire.HeaderCreated); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return o, badParam("%s %q is not an RFC 3339 time", wire.HeaderCreated, truncate(v))
		}
		o.Created = t
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
	if size < 0 || r.Header.Get("Content-Length") == "" { // net/http reads an absent length as 0
		return errorf(http.StatusLengthRequired, wire.CodeLengthRequired,
			"a put needs Content-Length: the size is declared before the body streams in (no chunked bodies)")
	}
	ctx := r.Context()
	if r.Method == http.MethodPut && r.Header.Get("Expect") != "" {
		// net/http sends "100 Continue" only once the body is read: a taken
		// ID is refused first, and the client keeps its body.
		if _, err := s.ids.ObjectInfo(ctx, id); err == nil {
			return fmt.Errorf("put %q: %w", string(id), backend.ErrExists)
		}
	}
	body := s.newBodyReader(w, r)
	var info backend.ObjectInfo
	if size <= s.small {
		// Small objects: one read and one Put beat a writer's set-up.
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		buf := (*bp)[:size]
		if _, err := io.ReadFull(body, buf); err != nil {
			return bodyError(id, size, err)
		}
		s.met.bytesIn.Add(float64(size))
		if info, err = s.ids.Put(ctx, id, buf, opts); err != nil {
			return putError(err)
		}
	} else {
		wr, err := s.ids.OpenWriter(ctx, id, size, opts)
		if err != nil {
			return err
		}
		var n int64
		if region, ok := s.pendingRegion(id, size); ok {
			n, err = readInPlace(body, wr, region)
		} else {
			bp := bufPool.Get().(*[]byte)
			n, err = io.CopyBuffer(writerOnly{wr}, io.LimitReader(body, size), *bp)
			bufPool.Put(bp)
		}
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
		if info, err = s.ids.ObjectInfo(ctx, id); err != nil {
			return err
		}
	}
	h := w.Header()
	if r.Method == http.MethodPost {
		// A PUT's object is at the request's path (RFC 9110, 201 Created).
		h["Location"] = []string{wire.ObjectPath(id)}
	}
	wire.SetInfo(h, info)
	if httpguts.HeaderValuesContainsToken(r.Header["Prefer"], wire.PreferMinimal) {
		// The client reads the info header: spare both sides the JSON (and
		// the optional Preference-Applied: no body says as much).
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	h["Content-Type"] = jsonType
	w.WriteHeader(http.StatusCreated)
	return json.NewEncoder(w).Encode(info)
}

// putError makes a checksum mismatch on a put a 422: the request's bytes
// do not match the checksum it gave, which is not the store's fault.
func putError(err error) error {
	if errors.Is(err, backend.ErrCorrupt) {
		return errorf(http.StatusUnprocessableEntity, wire.CodeCorrupt, err.Error())
	}
	return err
}

// pendingRegion returns the memory tier's bytes reserved for the put of id
// just opened, when the stack placed it there.
func (s *Server) pendingRegion(id backend.ID, size int64) ([]byte, bool) {
	if s.arena == nil {
		return nil, false
	}
	region, ok := s.arena.PendingRegion(id)
	return region, ok && int64(len(region)) == size
}

// inPlaceChunk is how much of the body is read into the mapping before the
// writer checksums it: small enough that the checksum reads cached bytes.
const inPlaceChunk = 256 << 10

// readInPlace reads the body straight into region, the memory tier's room
// for the object, and hands each chunk to wr, which then only checksums it
// (its bytes are in place already): one copy less than through a buffer.
func readInPlace(body io.Reader, wr io.Writer, region []byte) (int64, error) {
	var n int64
	for n < int64(len(region)) {
		chunk := region[n:min(int64(len(region)), n+inPlaceChunk)]
		got, err := io.ReadFull(body, chunk)
		if got > 0 {
			if _, werr := wr.Write(chunk[:got]); werr != nil {
				return n, werr
			}
			n += int64(got)
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // the body ended before its Content-Length
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// writerOnly hides a writer's ReadFrom so that CopyBuffer uses our buffer
// rather than a small one of the writer's choosing.
type writerOnly struct{ io.Writer }

// bodyReader reads a request body, giving each read its deadline, and marks
// the errors of reading it, to tell them from the backend's. A read must
// bring bytes within timeout (no stall), and the body as a whole must keep
// an average of minRate bytes per second after a first timeout of grace.
//
// Setting a deadline costs a timer update, so a read keeps the one set before
// when it is no later than its own and at most a tenth of the timeout
// earlier: a read gets between 0.9 and 1 times what it is due.
type bodyReader struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
	minRate int64 // bytes/s; <= 0: no rate check
	start   time.Time
	got     int64
	set     time.Time // the read deadline set last
}

func (s *Server) newBodyReader(w http.ResponseWriter, r *http.Request) *bodyReader {
	rc := http.NewResponseController(w)
	if rec, ok := w.(*recorder); ok && rec.deadline.active() {
		rc = &rec.deadline.rc // the chain's: one allocation less
	}
	return &bodyReader{r: r.Body, rc: rc, timeout: s.ioTO, minRate: s.minRate, start: time.Now()}
}

func (b *bodyReader) Read(p []byte) (int, error) {
	now := time.Now()
	deadline := now.Add(b.timeout)
	if b.minRate > 0 {
		// By then this read's bytes are due at the least rate: a few more
		// than minRate takes per read, so a rate just above it passes.
		due := b.start.Add(b.timeout + time.Duration(float64(b.got+int64(len(p)))/float64(b.minRate)*float64(time.Second)))
		if due.Before(deadline) {
			deadline = due
		}
	}
	if b.set.After(deadline) || deadline.Sub(b.set) > b.timeout/10 {
		b.set = deadline
		_ = b.rc.SetReadDeadline(deadline)
	}
	n, err := b.r.Read(p)
	b.got += int64(n)
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
	return errorf(http.StatusBadRequest, wire.CodeBadBody,
		fmt.Sprintf("put %q: body ended before its %d bytes (Content-Length): %v; nothing stored", string(id), size, err))
}

// setInfoHeaders puts an object's info in response headers (wire.SetInfo)
// and Content-Length n.
func setInfoHeaders(h http.Header, info backend.ObjectInfo, n int64) {
	wire.SetInfo(h, info)
	h["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	h["Content-Type"] = octetStream
	if !info.Created.IsZero() {
		h["Last-Modified"] = []string{info.Created.UTC().Format(http.TimeFormat)}
	}
	h["Accept-Ranges"] = bytesUnit
}

// Header values replies share: net/http never writes into a value slice.
var (
	octetStream = []string{"application/octet-stream"}
	bytesUnit   = []string{"bytes"}
	jsonType    = []string{"application/json"}
)

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
	if r.Method == http.MethodGet {
		h := r.Header.Get("Range")
		if h == "" {
			return s.getWhole(w, r, id)
		}
		if start, n, ok := rangeStart(h); ok {
			if served, err := s.getRange(w, r, id, start, n); served {
				return err
			}
		}
	}
	// Other ranges (and HEAD) are sized from the index first (ObjectInfo, no
	// tier I/O); the headers sent are those of the read itself, so they always
	// describe the bytes sent. If the object was deleted and put again with
	// another size in between, the range no longer fits: look again, a
	// bounded number of times.
	for attempt := 0; ; attempt++ {
		err := s.getOnce(w, r, id)
		if !errors.Is(err, errReplaced) || attempt == 2 {
			return err
		}
	}
}

// getWhole answers a GET of a whole object with one call to the store: the
// reader's info is that of the bytes it reads, and sizes the reply. From the
// memory tier the reader writes straight from the mapping (WriteTo).
func (s *Server) getWhole(w http.ResponseWriter, r *http.Request, id backend.ID) error {
	rc, err := s.ids.OpenReader(r.Context(), id, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	info := rc.Info()
	setInfoHeaders(w.Header(), info, info.Size)
	w.WriteHeader(http.StatusOK)
	return s.sendBody(w, r, id, rc, info.Size)
}

// getRange answers a range given by its first byte with one call to the
// store: the read's info has the object's size for Content-Range. served is
// false when the range needs the size first (it ends past the object, to be
// clamped, or starts at or past its end): getOnce answers it then.
func (s *Server) getRange(w http.ResponseWriter, r *http.Request, id backend.ID, start, n int64) (served bool, err error) {
	rc, err := s.ids.OpenReader(r.Context(), id, start, n)
	if errors.Is(err, backend.ErrInvalidArgument) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	info := rc.Info()
	if n < 0 {
		n = info.Size - start
	}
	if n <= 0 {
		rc.Close()
		return false, nil
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+n-1, info.Size))
	setInfoHeaders(h, info, n)
	w.WriteHeader(http.StatusPartialContent)
	return true, s.sendBody(w, r, id, rc, n)
}

// sendBody copies n bytes of rc to the response, each chunk under its
// write deadline.
func (s *Server) sendBody(w http.ResponseWriter, r *http.Request, id backend.ID, rc io.Reader, n int64) error {
	if !zeroCopyGet {
		rc = struct{ io.Reader }{rc} // through the buffer (a benchmark's comparison)
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	got, err := io.CopyBuffer(w, rc, *bp) // the recorder's Write renews the deadline per chunk
	if err == nil && got != n {
		err = fmt.Errorf("object ended after %d of %d bytes", got, n)
	}
	return s.afterHeader(r, id, err)
}

// errReplaced: the object read is not the one whose size the range was
// computed from (deleted and put again in between).
var errReplaced = errors.New("object replaced while reading")

func (s *Server) getOnce(w http.ResponseWriter, r *http.Request, id backend.ID) error {
	ctx := r.Context()
	info, err := s.ids.ObjectInfo(ctx, id)
	if err != nil {
		return err
	}
	off, n, partial, err := parseRange(r.Header.Get("Range"), info.Size)
	if err != nil {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", info.Size))
		return err
	}
	h := w.Header()
	h.Del("Content-Range") // from an earlier attempt
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, info.Size))
		status = http.StatusPartialContent
	}
	if r.Method == http.MethodHead {
		setInfoHeaders(h, info, n)
		w.WriteHeader(status)
		return nil
	}
	rc, err := s.ids.OpenReader(ctx, id, off, n)
	if err != nil {
		if errors.Is(err, backend.ErrInvalidArgument) {
			return errReplaced // shrunk since ObjectInfo: the range is outside it
		}
		return err
	}
	defer rc.Close()
	if rc.Info().Size != info.Size {
		return errReplaced
	}
	setInfoHeaders(h, rc.Info(), n)
	w.WriteHeader(status)
	return s.sendBody(w, r, id, rc, n)
}

// writeChunk is the most the recorder writes at a time: each chunk's write
// ends within the I/O timeout, so a reader that takes at least writeChunk per
// timeout is served, however slow.
const writeChunk = 1 << 20

// writeDeadline keeps a response's write deadline within the I/O timeout of
// now, setting it as seldom as it can: a timer update per write would be a
// cost every small response pays.
type writeDeadline struct {
	rc      http.ResponseController
	timeout time.Duration // > 0 once ServeHTTP set it up
	at      time.Time     // the deadline set last; zero: none yet
}

// active reports whether the handler chain set this deadline up (a recorder
// made elsewhere, as in a test, has none).
func (d *writeDeadline) active() bool { return d.timeout > 0 }

// renew moves the deadline to now+timeout unless nine tenths of the timeout
// remain on the one set: a write gets between 0.9 and 1 times the timeout.
func (d *writeDeadline) renew(now time.Time) {
	if d.at.Sub(now) >= d.timeout-d.timeout/10 {
		return
	}
	d.at = now.Add(d.timeout)
	_ = d.rc.SetWriteDeadline(d.at)
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
		err = s.ids.Delete(r.Context(), id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAction(w http.ResponseWriter, r *http.Request) {
	q := query(r)
	err := checkQuery(q, "ttl") // ttl: pin only (see pinlease.go)
	var id backend.ID
	if err == nil {
		id, err = pathID(r, r.PathValue("action"))
	}
	if err == nil {
		ctx := r.Context()
		switch a := r.PathValue("action"); a {
		case "pin":
			var ttl time.Duration
			if ttl, err = parseTTL(q.Get("ttl")); err == nil {
				err = s.pins.Pin(ctx, id, ttl)
			}
		case "unpin":
			err = s.pins.Unpin(ctx, id)
		case "prefetch":
			err = s.ids.Prefetch(ctx, id)
		default:
			err = errorf(http.StatusNotFound, wire.CodeNoRoute, fmt.Sprintf("no action %q (pin, unpin, prefetch)", truncate(a)))
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
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
	opts := backend.ListOptions{Prefix: q.Get("prefix"), After: backend.ID(q.Get("after")), Limit: wire.DefaultListLimit}
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
		if err != nil || n < 1 || n > wire.MaxListLimit {
			return badParam("limit %q must be an integer from 1 to %d", truncate(v), wire.MaxListLimit)
		}
		opts.Limit = n
	}
	want := opts.Limit
	opts.Limit++ // one more tells whether there is a next page
	objs, err := s.b.List(r.Context(), opts)
	if err != nil {
		return err
	}
	page := wire.ListPage{Objects: objs}
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
	if err := checkQuery(query(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.b.Stats(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	_ = writeJSON(w, map[string]string{"status": "ok"})
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
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
