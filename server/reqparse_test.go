package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"

	"distore/backend"
)

// reqParseCases are raw requests and whether the fast path takes them.
var reqParseCases = []struct {
	name string
	raw  string
	fast bool
}{
	{"get", "GET /v1/objects/a HTTP/1.1\r\nHost: h\r\nUser-Agent: Go-http-client/1.1\r\n\r\n", true},
	{"put", "PUT /v1/objects/a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-Distore-Checksum: 0a0b0c0d\r\n\r\nhello", true},
	{"post empty", "POST /v1/objects HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", true},
	{"put no length", "PUT /v1/objects/a HTTP/1.1\r\nHost: h\r\n\r\nleft over", true},
	{"head", "HEAD /healthz HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"delete", "DELETE /v1/objects/a HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"pipelined", "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"body then next", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n", true},
	{"short body", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc", true},
	{"lower-case names", "GET /a HTTP/1.1\r\nhost: h\r\ncontent-type: text/plain\r\nx-custom-thing: 1\r\nACCEPT: */*\r\n\r\n", true},
	{"odd-case unknown", "GET /a HTTP/1.1\r\nHost: h\r\nx-fOO_bar: 1\r\n\r\n", true},
	{"spaces around values", "GET /a HTTP/1.1\r\nHost:   h  \r\nX-A:v\r\nX-B: \r\nX-C:\r\n\r\n", true},
	{"tabs", "GET /a HTTP/1.1\r\nHost:\th\t\r\nX-A: a\tb \t \r\n\r\n", true},
	{"repeated header", "GET /a HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nAccept: a\r\nAccept: b\r\n\r\n", true},
	{"escaped slash", "GET /v1/objects/a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"escaped space", "GET /a%20b HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"bad escape", "GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"query", "GET /v1/objects?prefix=a&limit=10 HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"empty query", "GET /v1/objects? HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"two queries", "GET /v1/objects?a?b HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"fragment", "GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"odd path bytes", "GET /a!b'(c)*{d}|^` HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"double slash", "GET //a/b HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"non-ASCII path", "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"HTTP/1.0", "GET /a HTTP/1.0\r\n\r\n", true},
	{"HTTP/1.0 keep-alive", "GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
	{"HTTP/1.0 keep-alive close", "GET /a HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", true},
	{"connection close", "GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", true},
	{"connection list", "GET /a HTTP/1.1\r\nHost: h\r\nConnection: x-foo , CLOSE\r\n\r\n", true},
	{"connection twice", "GET /a HTTP/1.1\r\nHost: h\r\nConnection: x\r\nConnection: close\r\n\r\n", true},
	{"no host 1.1", "GET /a HTTP/1.1\r\n\r\n", true},
	{"expect", "PUT /a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", true},
	{"length leading zeros", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n1234567", true},
	{"length spaces", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length:  2 \r\n\r\nhi", true},
	{"length plus", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: +2\r\n\r\nhi", false},
	{"length minus", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", false},
	{"length empty", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", false},
	{"length hex", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0x2\r\n\r\nhi", false},
	{"length underscore", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1_0\r\n\r\nhi", false},
	{"length huge", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", false},
	{"two lengths same", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", false},
	{"two lengths differ", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi", false},
	{"chunked", "PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", false},
	{"chunked and length", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", false},
	{"trailer", "GET /a HTTP/1.1\r\nHost: h\r\nTrailer: X\r\n\r\n", false},
	{"pragma", "GET /a HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n", false},
	{"two hosts", "GET /a HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", false},
	{"no colon", "GET /a HTTP/1.1\r\nHost: h\r\nX-A\r\n\r\n", false},
	{"empty name", "GET /a HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", false},
	{"space before colon", "GET /a HTTP/1.1\r\nHost : h\r\n\r\n", false},
	{"space in name", "GET /a HTTP/1.1\r\nHost: h\r\nX A: v\r\n\r\n", false},
	{"obs-fold", "GET /a HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", false},
	{"leading space first header", "GET /a HTTP/1.1\r\n Host: h\r\n\r\n", false},
	{"NUL in value", "GET /a HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n", false},
	{"NUL in name", "GET /a HTTP/1.1\r\nHost: h\r\nX-\x00: a\r\n\r\n", false},
	{"NUL in path", "GET /a\x00b HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"CR in value", "GET /a HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", false},
	{"DEL in value", "GET /a HTTP/1.1\r\nHost: h\r\nX-A: a\x7fb\r\n\r\n", false},
	{"obs-text value", "GET /a HTTP/1.1\r\nHost: h\r\nX-A: caf\xc3\xa9\r\n\r\n", false},
	{"bare LF", "GET /a HTTP/1.1\nHost: h\n\n", false},
	{"bare LF end", "GET /a HTTP/1.1\r\nHost: h\r\n\n", false},
	{"incomplete", "GET /a HTTP/1.1\r\nHost: h\r\n", false},
	{"absolute form", "GET http://h/a HTTP/1.1\r\nHost: i\r\n\r\n", false},
	{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"other method", "PATCH /a HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"lower-case method", "get /a HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false},
	{"HTTP/1.2", "GET /a HTTP/1.2\r\nHost: h\r\n\r\n", false},
	{"lower-case proto", "GET /a http/1.1\r\nHost: h\r\n\r\n", false},
	{"extra space", "GET  /a HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"trailing space", "GET /a HTTP/1.1 \r\nHost: h\r\n\r\n", false},
	{"no proto", "GET /a\r\nHost: h\r\n\r\n", false},
	{"leading CRLF", "\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"many headers", "GET /a HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-A: v\r\n", 63) + "\r\n", true},
	{"too many headers", "GET /a HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-A: v\r\n", 64) + "\r\n", false},
	{"long header", "GET /a HTTP/1.1\r\nHost: h\r\nX-Long: " + strings.Repeat("v", 40000) + "\r\n\r\n", true},
}

// parseBoth parses raw with the fast path and, on its own copy, with
// http.ReadRequest; it fails t where the fast path took a request that
// differs. It reports whether the fast path took it.
func parseBoth(t *testing.T, raw string) bool {
	t.Helper()
	var p reqParser
	br := bufio.NewReaderSize(strings.NewReader(raw), connBufSize)
	_, _ = br.Peek(1) // fill the buffer, as the loop has
	got, ok := p.parse(br)
	wbr := bufio.NewReaderSize(strings.NewReader(raw), connBufSize)
	want, werr := http.ReadRequest(wbr)
	if !ok {
		if n := br.Buffered(); n != min(len(raw), connBufSize) {
			t.Errorf("fallback consumed input: %d of %d bytes left", n, len(raw))
		}
		return false
	}
	if werr != nil {
		t.Fatalf("fast path took a request http.ReadRequest rejects (%v):\n%q", werr, truncate(raw))
	}
	checkSame(t, raw, got, want)

	gb, gerr := io.ReadAll(got.Body)
	wb, werr := io.ReadAll(want.Body)
	if !bytes.Equal(gb, wb) || gerr != werr {
		t.Errorf("%q: body %q, %v; want %q, %v", truncate(raw), gb, gerr, wb, werr)
	}
	// What follows (the next request) is left alike.
	grest, _ := io.ReadAll(br)
	wrest, _ := io.ReadAll(wbr)
	if !bytes.Equal(grest, wrest) {
		t.Errorf("%q: left %q, want %q", truncate(raw), truncate(string(grest)), truncate(string(wrest)))
	}
	return true
}

func checkSame(t *testing.T, raw string, got, want *http.Request) {
	t.Helper()
	type fields struct {
		Method, URL, Path, RawPath, RawQuery, Fragment, RawFragment, Proto, Host, RequestURI string
		ForceQuery, OmitHost                                                                 bool
		ProtoMajor, ProtoMinor                                                               int
		Header                                                                               http.Header
		ContentLength                                                                        int64
		Close, NoBody, NilBody                                                               bool
		TransferEncoding                                                                     []string
		Trailer                                                                              http.Header
		Scheme, Opaque, URLHost                                                              string
	}
	of := func(r *http.Request) fields {
		u := r.URL
		return fields{r.Method, u.String(), u.Path, u.RawPath, u.RawQuery, u.Fragment, u.RawFragment, r.Proto, r.Host, r.RequestURI,
			u.ForceQuery, u.OmitHost, r.ProtoMajor, r.ProtoMinor, r.Header, r.ContentLength,
			r.Close, r.Body == http.NoBody, r.Body == nil, r.TransferEncoding, r.Trailer, u.Scheme, u.Opaque, u.Host}
	}
	if g, w := of(got), of(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%q:\n got %+v\nwant %+v", truncate(raw), g, w)
	}
}

func TestReqParse(t *testing.T) {
	for _, tc := range reqParseCases {
		t.Run(tc.name, func(t *testing.T) {
			if fast := parseBoth(t, tc.raw); fast != tc.fast {
				t.Errorf("fast path took it: %v, want %v", fast, tc.fast)
			}
		})
	}
}

// TestReqParseReuse parses requests one after another with one parser, as
// a connection does: nothing of a request may leak into the next.
func TestReqParseReuse(t *testing.T) {
	var p reqParser
	var all string
	for _, tc := range reqParseCases {
		if tc.fast && !strings.Contains(tc.name, "body") && !strings.Contains(tc.raw, "left over") && !strings.Contains(tc.raw, "\r\n\r\nGET") {
			all += tc.raw
		}
	}
	br := bufio.NewReaderSize(strings.NewReader(all), connBufSize)
	wbr := bufio.NewReaderSize(strings.NewReader(all), connBufSize)
	for n := 0; ; n++ {
		if _, err := br.Peek(1); err == io.EOF {
			if n < 20 {
				t.Fatalf("only %d requests", n)
			}
			return
		}
		got, ok := p.parse(br)
		want, err := http.ReadRequest(wbr)
		if !ok || err != nil {
			t.Fatalf("request %d: fast %v, ReadRequest %v", n, ok, err)
		}
		checkSame(t, "request", got, want)
		gb, _ := io.ReadAll(got.Body)
		wb, _ := io.ReadAll(want.Body)
		if !bytes.Equal(gb, wb) {
			t.Fatalf("request %d: body %q, want %q", n, gb, wb)
		}
	}
}

// TestReqParseKnownHeaders checks that the table holds canonical names.
func TestReqParseKnownHeaders(t *testing.T) {
	for _, k := range knownHeaders {
		if c := textproto.CanonicalMIMEHeaderKey(k.name); c != k.name {
			t.Errorf("%q is not canonical (%q)", k.name, c)
		}
	}
}

// TestReqParseAllocs: the fast path's allocations for a plain get — the
// one string of the head.
func TestReqParseAllocs(t *testing.T) {
	raw := "GET /v1/objects/abc HTTP/1.1\r\nHost: 127.0.0.1:1234\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
	var p reqParser
	sr := strings.NewReader(raw)
	br := bufio.NewReaderSize(sr, connBufSize)
	allocs := testing.AllocsPerRun(100, func() {
		sr.Reset(raw)
		br.Reset(sr)
		_, _ = br.Peek(1)
		if _, ok := p.parse(br); !ok {
			t.Fatal("fast path refused")
		}
	})
	if allocs > 1 {
		t.Errorf("%v allocations per parse, want 1", allocs)
	}
}

func FuzzReqParse(f *testing.F) {
	for _, tc := range reqParseCases {
		f.Add(tc.raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		parseBoth(t, raw)
	})
}

func BenchmarkReqParse(b *testing.B) {
	raw := "PUT /v1/objects/o123 HTTP/1.1\r\nHost: 127.0.0.1:1234\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: 4096\r\nX-Distore-Checksum: 01234567\r\n\r\n"
	sr := strings.NewReader(raw)
	br := bufio.NewReaderSize(sr, connBufSize)
	b.Run("fast", func(b *testing.B) {
		var p reqParser
		b.ReportAllocs()
		for b.Loop() {
			sr.Reset(raw)
			br.Reset(sr)
			_, _ = br.Peek(1)
			if _, ok := p.parse(br); !ok {
				b.Fatal("fast path refused")
			}
		}
	})
	b.Run("ReadRequest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sr.Reset(raw)
			br.Reset(sr)
			if _, err := http.ReadRequest(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestQuick checks which requests the loop may answer without building
// one: only a plain GET or PUT of an object by a valid ID whose other
// headers change nothing in the answer, and a PUT whose body is all here.
func TestQuick(t *testing.T) {
	body4 := "PUT /v1/objects/x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
	big := fmt.Sprint(quickMax + 1)
	cases := []struct {
		name, raw, id, body  string // id "": not quick
		checksum, importance string
	}{
		{name: "get", raw: "GET /v1/objects/a-1.b_c HTTP/1.1\r\nHost: h\r\n\r\n", id: "a-1.b_c"},
		{name: "get Go client headers", raw: "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\nAccept: */*\r\n\r\n", id: "x"},
		{name: "get keep-alive", raw: "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n", id: "x"},
		{name: "get pipelined", raw: "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\n\r\nGET /v1/objects/y HTTP/1.1\r\nHost: h\r\n\r\n", id: "x"},
		{name: "put", raw: body4 + "\r\nabcdGET /v1/objects/y HTTP/1.1\r\n", id: "x", body: "abcd"},
		{name: "put options", raw: body4 + "Content-Type: application/octet-stream\r\nX-Distore-Checksum: 0a0b0c0d\r\nX-Distore-Importance: -3\r\n\r\nabcd",
			id: "x", body: "abcd", checksum: "0a0b0c0d", importance: "-3"},
		{name: "put empty", raw: "PUT /v1/objects/x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", id: "x"},
		{name: "put largest", raw: "PUT /v1/objects/x HTTP/1.1\r\nHost: h\r\nContent-Length: " + fmt.Sprint(quickMax) + "\r\n\r\n" + strings.Repeat("z", quickMax),
			id: "x", body: strings.Repeat("z", quickMax)},
		{name: "put too large", raw: "PUT /v1/objects/x HTTP/1.1\r\nHost: h\r\nContent-Length: " + big + "\r\n\r\n" + strings.Repeat("z", quickMax+1)},
		{name: "put body not all here", raw: body4 + "\r\nabc"},
		{name: "put no length", raw: "PUT /v1/objects/x HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "put two checksums", raw: body4 + "X-Distore-Checksum: 1\r\nX-Distore-Checksum: 2\r\n\r\nabcd"},
		{name: "put two types", raw: body4 + "Content-Type: a\r\nContent-Type: b\r\n\r\nabcd"},
		{name: "put expect", raw: body4 + "Expect: 100-continue\r\n\r\nabcd"},
		{name: "put query", raw: "PUT /v1/objects/x?importance=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
		{name: "post", raw: "POST /v1/objects HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
		{name: "get with put's headers", raw: "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nX-Distore-Checksum: 1\r\n\r\n"},
		{name: "head", raw: "HEAD /v1/objects/x HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "delete", raw: "DELETE /v1/objects/x HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "HTTP/1.0", raw: "GET /v1/objects/x HTTP/1.0\r\nHost: h\r\n\r\n"},
		{name: "no host", raw: "GET /v1/objects/x HTTP/1.1\r\n\r\n"},
		{name: "query", raw: "GET /v1/objects/x?a=1 HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "empty query", raw: "GET /v1/objects/x? HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "range", raw: "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n"},
		{name: "connection close", raw: "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"},
		{name: "connection list", raw: "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n"},
		{name: "get content length", raw: "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
		{name: "unknown header", raw: "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nX-Other: 1\r\n\r\n"},
		{name: "conditional", raw: "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nIf-None-Match: *\r\n\r\n"},
		{name: "list", raw: "GET /v1/objects HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "no ID", raw: "GET /v1/objects/ HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "action", raw: "GET /v1/objects/x/pin HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "dot segment", raw: "GET /v1/objects/.. HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "invalid ID", raw: "PUT /v1/objects/-x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
		{name: "escaped", raw: "GET /v1/objects/a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "ID too long", raw: "GET /v1/objects/" + strings.Repeat("a", backend.MaxIDLen+1) + " HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "other path", raw: "GET /v1/objectsx/a HTTP/1.1\r\nHost: h\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tc.raw), 2*quickMax)
			br.Peek(len(tc.raw))
			var p reqParser
			if !p.scan(br) {
				t.Fatalf("scan did not take %q", tc.raw)
			}
			q, ok := p.quick()
			if ok != (tc.id != "") || q.id != tc.id || string(q.body) != tc.body ||
				string(q.checksum) != tc.checksum || string(q.importance) != tc.importance {
				t.Fatalf("quick = %+v, %v; want id %q body %q checksum %q importance %q", q, ok, tc.id, tc.body, tc.checksum, tc.importance)
			}
			if ok {
				// skip consumes the head and the body: what follows is the
				// next request.
				p.skip(br, q)
				rest, _ := io.ReadAll(br)
				if want := tc.raw[strings.Index(tc.raw, "\r\n\r\n")+4+len(tc.body):]; string(rest) != want {
					t.Fatalf("after skip: %q, want %q", rest, want)
				}
				return
			}
			// Not quick: the head still builds (the general path).
			req, ok := p.build(br)
			if !ok || req.RequestURI != strings.Fields(tc.raw)[1] {
				t.Fatalf("build after quick: %v, %+v", ok, req)
			}
		})
	}
}
