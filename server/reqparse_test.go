package server

import (
	"bufio"
	"bytes"
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

// TestQuickGetID checks which heads the loop may answer without a request:
// only a plain GET of an object by a valid ID, whose other headers change
// nothing in the answer.
func TestQuickGetID(t *testing.T) {
	cases := []struct {
		name, raw, id string // id "": not quick
	}{
		{"plain", "GET /v1/objects/a-1.b_c HTTP/1.1\r\nHost: h\r\n\r\n", "a-1.b_c"},
		{"Go client headers", "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\nAccept: */*\r\n\r\n", "x"},
		{"keep-alive", "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n", "x"},
		{"pipelined", "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\n\r\nGET /v1/objects/y HTTP/1.1\r\nHost: h\r\n\r\n", "x"},
		{"head", "HEAD /v1/objects/x HTTP/1.1\r\nHost: h\r\n\r\n", ""},
		{"delete", "DELETE /v1/objects/x HTTP/1.1\r\nHost: h\r\n\r\n", ""},
		{"HTTP/1.0", "GET /v1/objects/x HTTP/1.0\r\nHost: h\r\n\r\n", ""},
		{"no host", "GET /v1/objects/x HTTP/1.1\r\n\r\n", ""},
		{"query", "GET /v1/objects/x?a=1 HTTP/1.1\r\nHost: h\r\n\r\n", ""},
		{"empty query", "GET /v1/objects/x? HTTP/1.1\r\nHost: h\r\n\r\n", ""},
		{"range", "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n", ""},
		{"connection close", "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", ""},
		{"connection list", "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n", ""},
		{"content length", "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", ""},
		{"expect", "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", ""},
		{"unknown header", "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nX-Other: 1\r\n\r\n", ""},
		{"conditional", "GET /v1/objects/x HTTP/1.1\r\nHost: h\r\nIf-None-Match: *\r\n\r\n", ""},
		{"list", "GET /v1/objects HTTP/1.1\r\nHost: h\r\n\r\n", ""},
		{"no ID", "GET /v1/objects/ HTTP/1.1\r\nHost: h\r\n\r\n", ""},
		{"action", "GET /v1/objects/x/pin HTTP/1.1\r\nHost: h\r\n\r\n", ""},
		{"dot segment", "GET /v1/objects/.. HTTP/1.1\r\nHost: h\r\n\r\n", ""},
		{"invalid ID", "GET /v1/objects/-x HTTP/1.1\r\nHost: h\r\n\r\n", ""},
		{"escaped", "GET /v1/objects/a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n", ""},
		{"ID too long", "GET /v1/objects/" + strings.Repeat("a", backend.MaxIDLen+1) + " HTTP/1.1\r\nHost: h\r\n\r\n", ""},
		{"other path", "GET /v1/objectsx/a HTTP/1.1\r\nHost: h\r\n\r\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tc.raw))
			br.Peek(1)
			var p reqParser
			if !p.scan(br) {
				t.Fatalf("scan did not take %q", tc.raw)
			}
			id, ok := p.quickGetID()
			if ok != (tc.id != "") || id != tc.id {
				t.Fatalf("quickGetID = %q, %v; want %q", id, ok, tc.id)
			}
			// Whether quick or not, the head still builds (the general path).
			req, ok := p.build(br)
			if !ok || req.RequestURI != strings.Fields(tc.raw)[1] {
				t.Fatalf("build after quickGetID: %v, %+v", ok, req)
			}
		})
	}
}
