package client

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"strings"

	"distore/internal/httpwire"
)

// maxFastHeaders and maxFastHead bound the heads parseHead takes; bigger
// ones go to http.ReadResponse.
const (
	maxFastHeaders = 64
	maxFastHead    = 16 << 10
)

// headParser parses response heads into a Header it reuses (one per
// connection: the Header of a response is valid until its body is closed or
// read to its end, which every caller in this package respects).
type headParser struct {
	hdr  http.Header
	vals []string // backing store of hdr's one-value slices
}

var crlfcrlf = []byte("\r\n\r\n")

// readResponse reads the next response from br to a request of method (req,
// if not nil), as http.ReadResponse(br, req) would but without its
// allocations when the whole head is buffered and plain (HTTP/1.1, a
// Content-Length or no body, no Transfer-Encoding, ...): into resp when it
// can, else it returns http.ReadResponse's.
func (p *headParser) readResponse(br *bufio.Reader, method string, req *http.Request, resp *http.Response) (*http.Response, error) {
	if _, err := br.Peek(1); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // as http.ReadResponse says it
		}
		return nil, err
	}
	buf, _ := br.Peek(min(br.Buffered(), maxFastHead))
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 || !p.parseHead(buf[:end], method, resp) {
		if req == nil {
			req = &http.Request{Method: method} // all ReadResponse looks at
		}
		return http.ReadResponse(br, req)
	}
	if _, err := br.Discard(end + len(crlfcrlf)); err != nil {
		return nil, err // cannot happen: the bytes are buffered
	}
	resp.Request = req
	return resp, nil
}

// parseHead parses head (a response head without its final blank line) into
// resp, for a request of the given method, and reports whether it could. It
// takes only what it is sure http.ReadResponse reads the same way; on false
// resp is garbage and the caller falls back. resp.Body is left to the caller
// (http.NoBody or ContentLength bytes).
func (p *headParser) parseHead(head []byte, method string, resp *http.Response) bool {
	// The status line: "HTTP/1.1 ddd" and an optional reason.
	if len(head) < 12 || string(head[:9]) != "HTTP/1.1 " {
		return false
	}
	code := 0
	for _, c := range head[9:12] {
		if c < '0' || c > '9' {
			return false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 { // 1xx (and nonsense): ReadResponse's business
		return false
	}
	lineEnd := bytes.Index(head, crlfcrlf[:2])
	if lineEnd < 0 {
		lineEnd = len(head)
	}
	if lineEnd > 12 && head[12] != ' ' {
		return false
	}
	for _, c := range head[12:lineEnd] {
		if c != '\t' && (c < ' ' || c >= 0x7f) {
			return false
		}
	}
	// One string for the whole head: the status and header values are
	// substrings of it.
	s := string(head)
	*resp = http.Response{
		Status:     s[9:lineEnd],
		StatusCode: code,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
	}
	if p.hdr == nil {
		p.hdr = make(http.Header, 16)
		p.vals = make([]string, maxFastHeaders)
	}
	h := p.hdr
	clear(h)
	vals := p.vals
	rest := ""
	if lineEnd < len(s) {
		rest = s[lineEnd+2:]
	}
	for n := 0; rest != ""; n++ {
		if n == maxFastHeaders {
			return false
		}
		line, next, _ := strings.Cut(rest, "\r\n")
		rest = next
		colon := strings.IndexByte(line, ':')
		if colon <= 0 { // also a line that starts with a space (obs-fold) or is empty
			return false
		}
		key := line[:colon]
		for i := 0; i < len(key); i++ {
			if !httpwire.TokenByte(key[i]) {
				return false
			}
		}
		v := line[colon+1:]
		for i := 0; i < len(v); i++ {
			if c := v[i]; c != '\t' && (c < ' ' || c >= 0x7f) {
				return false
			}
		}
		for v != "" && (v[0] == ' ' || v[0] == '\t') {
			v = v[1:]
		}
		for v != "" && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
			v = v[:len(v)-1]
		}
		key = canonicalKey(key)
		if vv, ok := h[key]; ok {
			h[key] = append(vv, v)
		} else {
			vals[n] = v
			h[key] = vals[n : n+1 : n+1]
		}
	}
	resp.Header = h
	// What readTransfer would do differently, or treats specially: leave
	// it to ReadResponse.
	if h["Transfer-Encoding"] != nil || h["Trailer"] != nil || h["Pragma"] != nil {
		return false
	}
	if conn, ok := h["Connection"]; ok {
		switch {
		case len(conn) == 1 && strings.EqualFold(conn[0], "close"):
			resp.Close = true
			delete(h, "Connection") // as ReadResponse does
		case len(conn) == 1 && strings.EqualFold(conn[0], "keep-alive"):
		default:
			return false
		}
	}
	cl := int64(-1)
	if vv, ok := h["Content-Length"]; ok {
		if len(vv) != 1 || len(vv[0]) == 0 || len(vv[0]) > 18 {
			return false
		}
		cl = 0
		for i := 0; i < len(vv[0]); i++ {
			c := vv[0][i]
			if c < '0' || c > '9' {
				return false
			}
			cl = cl*10 + int64(c-'0')
		}
	}
	switch {
	case method == http.MethodHead:
		resp.ContentLength = cl // the size of what a GET would get
	case code == http.StatusNoContent || code == http.StatusNotModified:
		resp.ContentLength = 0
	case cl < 0:
		return false // a body to the connection's end
	default:
		resp.ContentLength = cl
	}
	return true
}

// knownHeaders maps the lower-case names of the headers the server sends to
// their canonical form, so that such names cost no allocation however they
// are spelled.
var knownHeaders = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Content-Length", "Content-Type", "Content-Range", "Connection", "Location", "Retry-After",
		"Date", "Accept-Ranges", "Last-Modified", "Allow", "Etag", "Server", "Keep-Alive",
		headerSize, headerImportance, headerPins, headerLevel, headerTier, headerCreated,
		headerAccessed, headerChecksum, headerID, headerErrorCode, headerErrorMsg,
	} {
		m[strings.ToLower(k)] = k
	}
	return m
}()

// canonicalKey returns textproto.CanonicalMIMEHeaderKey(k) for a token k.
func canonicalKey(k string) string {
	canonical := true
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
			break
		}
		upper = c == '-'
	}
	if canonical {
		return k
	}
	if len(k) <= 32 {
		var b [32]byte
		for i := 0; i < len(k); i++ {
			c := k[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		if ck, ok := knownHeaders[string(b[:len(k)])]; ok {
			return ck
		}
	}
	return textproto.CanonicalMIMEHeaderKey(k)
}
