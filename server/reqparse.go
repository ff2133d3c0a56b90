package server

// A fast path for reading the common request heads. http.ReadRequest costs
// about ten allocations per request (a textproto reader's line copies, a
// header map, a value slice, a URL, a request, a body); a small request's
// head is usually all in the read buffer already, so the loop parses it
// there, into a header map and URL that the connection reuses. Anything out
// of the ordinary is left to http.ReadRequest, on the untouched buffer.

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"sync/atomic"

	"distore/backend"
	"distore/internal/httpwire"
)

// maxFastHeaders is the most header lines the fast path takes.
const maxFastHeaders = 64

// How the fast path treats a header it knows.
const (
	hPlain = iota
	hHost
	hContentLength
	hFallback // net/http gives it meaning beyond a header: its business
)

// knownHeaders are header names the fast path has without canonicalizing.
var knownHeaders = [...]struct {
	name string
	kind int
}{
	{"Host", hHost}, {"User-Agent", hPlain}, {"Accept", hPlain}, {"Accept-Encoding", hPlain},
	{"Content-Length", hContentLength}, {"Content-Type", hPlain}, {"Connection", hPlain},
	{"Expect", hPlain}, {"Range", hPlain}, {"Authorization", hPlain}, {"Cache-Control", hPlain},
	{"If-Match", hPlain}, {"If-None-Match", hPlain}, {"If-Modified-Since", hPlain}, {"Keep-Alive", hPlain},
	{HeaderImportance, hPlain}, {HeaderChecksum, hPlain}, {HeaderID, hPlain},
	{"Transfer-Encoding", hFallback}, {"Trailer", hFallback}, {"Pragma", hFallback}, {"Te", hFallback}, {"Upgrade", hFallback},
}

// headerField is one header line's name and value, as offsets into the head.
type headerField struct {
	known  int // index in knownHeaders, -1 if none
	ns, ne int
	vs, ve int
}

// reqParser parses request heads for one connection, reusing its header
// map, URL and value storage from request to request. Handlers must not keep
// a request's Header or URL past the request (as with any reused buffer).
type reqParser struct {
	req    http.Request
	url    url.URL
	hdr    http.Header
	vals   []string
	fields []headerField
	body   fastBody

	// What scan found, for build or quick: the head (aliasing the read
	// buffer), its method and minor version, the target's offsets, the
	// head's length, and whether the target is a plain path.
	buf       []byte
	method    string
	minor     int
	ts, te    int
	pos       int
	plainPath bool
}

// parse reads the request head at the start of br's buffer. ok false: the
// head is not wholly buffered or not one the fast path takes; br is then
// untouched, for http.ReadRequest. The request returned is p's own, valid
// until the next parse.
func (p *reqParser) parse(br *bufio.Reader) (req *http.Request, ok bool) {
	if !p.scan(br) {
		return nil, false
	}
	return p.build(br)
}

// scan finds the request line and header lines of the head at the start of
// br's buffer, without consuming it or making a string: false if the head
// is not wholly buffered or not one the fast path takes.
func (p *reqParser) scan(br *bufio.Reader) bool {
	buf, _ := br.Peek(br.Buffered())
	p.buf = nil

	// Request line: METHOD SP /target SP HTTP/1.x CRLF.
	eol := bytes.IndexByte(buf, '\n')
	if eol < 1 || buf[eol-1] != '\r' {
		return false
	}
	line := buf[:eol-1]
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return false
	}
	var method string
	switch string(line[:sp]) {
	case http.MethodGet:
		method = http.MethodGet
	case http.MethodHead:
		method = http.MethodHead
	case http.MethodPut:
		method = http.MethodPut
	case http.MethodPost:
		method = http.MethodPost
	case http.MethodDelete:
		method = http.MethodDelete
	default:
		return false
	}
	ts := sp + 1
	sp2 := bytes.IndexByte(line[ts:], ' ')
	if sp2 < 1 || line[ts] != '/' {
		return false // no target, or not origin-form
	}
	te := ts + sp2
	var minor int
	switch string(line[te+1:]) {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
		minor = 0
	default:
		return false
	}
	plainPath := true
	for _, c := range line[ts:te] {
		if !pathByte(c) {
			plainPath = false
			break
		}
	}

	// Header lines: name ":" OWS value OWS CRLF, up to an empty line.
	p.fields = p.fields[:0]
	pos := eol + 1
	hostSeen, clSeen := false, false
	for {
		n := bytes.IndexByte(buf[pos:], '\n')
		if n < 1 || buf[pos+n-1] != '\r' {
			return false // not all buffered, or a bare LF
		}
		end := pos + n - 1 // the line is buf[pos:end]
		if end == pos {
			pos += 2
			break
		}
		if len(p.fields) == maxFastHeaders {
			return false
		}
		colon := bytes.IndexByte(buf[pos:end], ':')
		if colon < 1 {
			return false // no name, no colon, or an obs-fold (it starts with a space)
		}
		f := headerField{known: -1, ns: pos, ne: pos + colon, vs: pos + colon + 1, ve: end}
		for _, c := range buf[f.ns:f.ne] {
			if !httpwire.TokenByte(c) {
				return false
			}
		}
		for _, c := range buf[f.vs:f.ve] {
			if (c < ' ' && c != '\t') || c >= 0x7f {
				return false
			}
		}
		for f.vs < f.ve && (buf[f.vs] == ' ' || buf[f.vs] == '\t') {
			f.vs++
		}
		for f.ve > f.vs && (buf[f.ve-1] == ' ' || buf[f.ve-1] == '\t') {
			f.ve--
		}
		f.known = knownHeader(buf[f.ns:f.ne])
		kind := hPlain
		if f.known >= 0 {
			kind = knownHeaders[f.known].kind
		}
		switch kind {
		case hFallback:
			return false
		case hHost:
			if hostSeen {
				return false
			}
			hostSeen = true
		case hContentLength:
			if clSeen {
				return false
			}
			clSeen = true
		}
		p.fields = append(p.fields, f)
		pos += n + 1
	}
	p.buf, p.method, p.minor, p.ts, p.te, p.pos, p.plainPath = buf, method, minor, ts, te, pos, plainPath
	return true
}

// build makes the request of the head scan found, and consumes the head
// from br. ok false: a part of it is not one the fast path takes (br is
// then untouched).
func (p *reqParser) build(br *bufio.Reader) (req *http.Request, ok bool) {
	buf, method, minor, ts, te, pos, plainPath := p.buf, p.method, p.minor, p.ts, p.te, p.pos, p.plainPath
	p.buf = nil

	// One string for all the head's strings.
	head := string(buf[:pos])
	var u *url.URL
	target := head[ts:te]
	if plainPath {
		p.url = url.URL{Path: target}
		u = &p.url
	} else {
		var err error
		if u, err = url.ParseRequestURI(target); err != nil {
			return nil, false
		}
	}
	if p.hdr == nil {
		p.hdr = make(http.Header, 8)
		p.vals = make([]string, maxFastHeaders)
	}
	clear(p.hdr)
	h := p.hdr
	var cl int64
	for i, f := range p.fields {
		v := head[f.vs:f.ve]
		var key string
		if f.known >= 0 {
			key = knownHeaders[f.known].name
		} else {
			key = textproto.CanonicalMIMEHeaderKey(head[f.ns:f.ne])
		}
		if f.known >= 0 && knownHeaders[f.known].kind == hContentLength {
			n, err := strconv.ParseUint(v, 10, 63)
			if err != nil {
				return nil, false
			}
			cl = int64(n)
		}
		if vv, dup := h[key]; dup {
			h[key] = append(vv, v)
		} else {
			p.vals[i] = v
			h[key] = p.vals[i : i+1 : i+1]
		}
	}
	conn := h["Connection"]
	closing := hasToken(conn, "close")
	if minor == 0 && !closing {
		closing = !hasToken(conn, "keep-alive")
	}
	// As http.ReadRequest: the Host header is the request's Host, not in
	// its Header.
	var host string
	if hv := h["Host"]; len(hv) > 0 {
		host = hv[0]
		delete(h, "Host")
	}
	var body io.ReadCloser = http.NoBody
	if cl > 0 {
		p.body = fastBody{br: br, n: cl}
		body = &p.body
	}
	proto := "HTTP/1.1"
	if minor == 0 {
		proto = "HTTP/1.0"
	}
	p.req = http.Request{
		Method: method, URL: u, Proto: proto, ProtoMajor: 1, ProtoMinor: minor,
		Header: h, Body: body, ContentLength: cl, Close: closing, Host: host, RequestURI: target,
	}
	_, _ = br.Discard(pos)
	return &p.req, true
}

// objectPrefix is the path under which an object's ID follows.
const objectPrefix = "/v1/objects/"

// quickReq is a request the loop may answer without an http.Request (see
// reqParser.quick).
type quickReq struct {
	method string // http.MethodGet or http.MethodPut
	id     string
	// PUT only: the body, aliasing the read buffer (valid until skip), and
	// the X-Distore-Checksum and X-Distore-Importance values (nil: absent).
	body                 []byte
	checksum, importance []byte
	// closing, if set, tells that the server began shutting down: the
	// answer then says Connection: close (read when it is written).
	closing *atomic.Bool
}

// shuttingDown reports whether the answer to q must close the connection.
func (q quickReq) shuttingDown() bool { return q.closing != nil && q.closing.Load() }

// quick returns the request of the head scan found when it is one of the
// two the loop answers itself: GET or PUT /v1/objects/{id} over HTTP/1.1
// with a valid ID and no query, whose other headers change nothing in the
// answer (Host once, User-Agent, Accept, Accept-Encoding, Connection:
// keep-alive) and, for a PUT, Content-Length of at most quickMax bytes that
// are all in the read buffer, with Content-Type, X-Distore-Checksum and
// X-Distore-Importance at most once each.
func (p *reqParser) quick() (quickReq, bool) {
	buf := p.buf
	if buf == nil || p.minor != 1 || !p.plainPath || (p.method != http.MethodGet && p.method != http.MethodPut) {
		return quickReq{}, false
	}
	rest, ok := bytes.CutPrefix(buf[p.ts:p.te], []byte(objectPrefix))
	if !ok || len(rest) == 0 || len(rest) > backend.MaxIDLen {
		return quickReq{}, false
	}
	put := p.method == http.MethodPut
	q := quickReq{method: p.method}
	hosts, types := 0, 0
	cl := []byte(nil)
	for _, f := range p.fields {
		if f.known < 0 {
			return quickReq{}, false
		}
		v := buf[f.vs:f.ve]
		switch name := knownHeaders[f.known].name; {
		case name == "Host":
			hosts++
		case name == "User-Agent", name == "Accept", name == "Accept-Encoding":
		case name == "Connection":
			if len(v) != len("keep-alive") || !asciiEqualFold(v, "keep-alive") {
				return quickReq{}, false
			}
		case !put:
			return quickReq{}, false
		case name == "Content-Length":
			cl = v // scan took at most one
		case name == "Content-Type":
			types++
		case name == HeaderChecksum && q.checksum == nil:
			q.checksum = v
		case name == HeaderImportance && q.importance == nil:
			q.importance = v
		default:
			return quickReq{}, false
		}
	}
	if hosts != 1 || types > 1 {
		return quickReq{}, false
	}
	if put {
		n, err := strconv.ParseUint(string(cl), 10, 63)
		if cl == nil || err != nil || n > quickMax || uint64(len(buf)-p.pos) < n {
			return quickReq{}, false
		}
		q.body = buf[p.pos : p.pos+int(n)]
	}
	id := backend.ID(rest)
	if id.Validate() != nil {
		return quickReq{}, false
	}
	q.id = string(id)
	return q, true
}

// skip consumes the request quick took: the head scan found and q's body.
func (p *reqParser) skip(br *bufio.Reader, q quickReq) {
	_, _ = br.Discard(p.pos + len(q.body))
	p.buf = nil
}

// knownHeader returns name's index in knownHeaders, -1 if none.
func knownHeader(name []byte) int {
	for i, k := range knownHeaders {
		if len(k.name) == len(name) && asciiEqualFold(name, k.name) {
			return i
		}
	}
	return -1
}

func asciiEqualFold(b []byte, s string) bool {
	for i, c := range b {
		if lower(c) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// pathByte reports whether c is one that url.ParseRequestURI leaves as it is
// in a path (no escape, no query, so no RawPath); a target of these only is
// its own Path.
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '$', '&', '+', ',', '/', ':', ';', '=', '@':
		return true
	}
	return false
}

// fastBody is a request body of known length read from the connection's
// buffer; it reads as net/http's does: the last bytes come with io.EOF, and
// a body cut short ends in io.ErrUnexpectedEOF.
type fastBody struct {
	br  *bufio.Reader
	n   int64 // bytes left
	eof bool
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.eof || b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
		if b.n > 0 {
			err = io.ErrUnexpectedEOF
		}
	case err == nil && n > 0 && b.n == 0:
		b.eof = true
		err = io.EOF
	}
	return n, err
}

// Close implements io.Closer; the loop decides what happens to the rest.
func (b *fastBody) Close() error { return nil }
