package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// readResult is what a caller sees of one response.
type readResult struct {
	resp    *http.Response
	header  http.Header // a copy, taken before the body is read
	body    []byte
	bodyErr error
	err     error
}

// readAllRef reads the responses in raw one after another with
// http.ReadResponse.
func readAllRef(raw []byte, method string) []readResult {
	br := bufio.NewReader(bytes.NewReader(raw))
	var out []readResult
	for {
		if _, err := br.Peek(1); err != nil && len(out) > 0 {
			return out
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		r := readResult{resp: resp, err: err}
		if err == nil {
			r.header = resp.Header.Clone()
			r.body, r.bodyErr = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		out = append(out, r)
		if err != nil || r.bodyErr != nil || len(out) > 16 {
			return out
		}
	}
}

// readAllFast reads the responses in raw one after another as the fast
// transport does, and reports for each whether the fast path took it.
func readAllFast(t testing.TB, raw []byte, method string) ([]readResult, []bool) {
	nc, peer := net.Pipe()
	defer peer.Close()
	defer nc.Close()
	ft := newFastTransport(NewTransport())
	defer ft.CloseIdleConnections()
	br := bufio.NewReader(bytes.NewReader(raw))
	c := &fconn{nc: nc, br: br}
	req := &http.Request{Method: method}
	var out []readResult
	var fast []bool
	for {
		if _, err := br.Peek(1); err != nil && len(out) > 0 {
			return out, fast
		}
		fr := &fastResp{}
		resp, err := c.hp.readResponse(br, method, req, &fr.resp)
		r := readResult{resp: resp, err: err}
		fast = append(fast, err == nil && resp == &fr.resp)
		if err == nil {
			fr.attach(resp, method, fastBody{t: ft, c: c, host: "h", ctx: context.Background(), stop: noStop, reusable: !resp.Close})
			r.header = resp.Header.Clone()
			r.body, r.bodyErr = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		out = append(out, r)
		if err != nil || r.bodyErr != nil || len(out) > 16 {
			return out, fast
		}
	}
}

// sameResults reports how the fast reads differ from the reference ones.
func sameResults(ref, got []readResult) string {
	if len(ref) != len(got) {
		return "response counts differ"
	}
	for i := range ref {
		a, b := ref[i], got[i]
		if (a.err == nil) != (b.err == nil) {
			return "errors differ: " + errString(a.err) + " vs " + errString(b.err)
		}
		if a.err != nil {
			continue
		}
		x, y := a.resp, b.resp
		switch {
		case x.StatusCode != y.StatusCode, x.Status != y.Status:
			return "status differs: " + x.Status + " vs " + y.Status
		case x.Proto != y.Proto || x.ProtoMajor != y.ProtoMajor || x.ProtoMinor != y.ProtoMinor:
			return "proto differs"
		case !reflect.DeepEqual(a.header, b.header):
			return "headers differ"
		case x.ContentLength != y.ContentLength:
			return "ContentLength differs"
		case x.Close != y.Close:
			return "Close differs"
		case !reflect.DeepEqual(x.TransferEncoding, y.TransferEncoding) || !reflect.DeepEqual(x.Trailer, y.Trailer):
			return "transfer encoding or trailer differs"
		case !bytes.Equal(a.body, b.body):
			return "bodies differ"
		case !errors.Is(b.bodyErr, a.bodyErr) && errString(a.bodyErr) != errString(b.bodyErr):
			return "body errors differ: " + errString(a.bodyErr) + " vs " + errString(b.bodyErr)
		}
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

func TestReadResponseFast(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\n"
	tests := []struct {
		name   string
		method string
		raw    string
		fast   []bool // per response: taken by the fast path
	}{
		{"get", "GET", ok + "Content-Length: 5\r\nContent-Type: application/octet-stream\r\nX-Distore-Size: 5\r\n\r\nhello", []bool{true}},
		{"no headers", "GET", "HTTP/1.1 204 No Content\r\n\r\n", []bool{true}},
		{"no reason", "GET", "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx", []bool{true}},
		{"reason with spaces", "GET", "HTTP/1.1 404  Not\tFound \r\nContent-Length: 0\r\n\r\n", []bool{true}},
		{"empty body", "GET", ok + "Content-Length: 0\r\n\r\n", []bool{true}},
		{"lower-case names", "GET", ok + "content-length: 3\r\nx-distore-error-code: not_found\r\nx-some-thing: a\r\nCONTENT-TYPE: t\r\n\r\nabc", []bool{true}},
		{"spaces and tabs", "GET", ok + "Content-Length: \t 3 \t\r\nX-A:b\r\nX-B:   \r\nX-C:\t v w \t\r\n\r\nabc", []bool{true}},
		{"repeated header", "GET", ok + "X-A: 1\r\nContent-Length: 2\r\nX-A: 2\r\nx-a: 3\r\n\r\nab", []bool{true}},
		{"connection close", "GET", ok + "Connection: close\r\nContent-Length: 2\r\n\r\nab", []bool{true}},
		{"connection CLOSE", "GET", ok + "Connection: CLOSE\r\nContent-Length: 2\r\n\r\nab", []bool{true}},
		{"connection keep-alive", "GET", ok + "Connection: keep-alive\r\nContent-Length: 2\r\n\r\nab", []bool{true}},
		{"connection list", "GET", ok + "Connection: keep-alive, close\r\nContent-Length: 2\r\n\r\nab", []bool{false}},
		{"content-length plus", "GET", ok + "Content-Length: +2\r\n\r\nab", []bool{false}},
		{"content-length zeros", "GET", ok + "Content-Length: 0002\r\n\r\nab", []bool{true}},
		{"content-length empty", "GET", ok + "Content-Length:\r\n\r\nab", []bool{false}},
		{"content-length two same", "GET", ok + "Content-Length: 2\r\nContent-Length: 2\r\n\r\nab", []bool{false}},
		{"content-length two differ", "GET", ok + "Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc", []bool{false}},
		{"content-length comma", "GET", ok + "Content-Length: 2, 2\r\n\r\nab", []bool{false}},
		{"content-length huge", "GET", ok + "Content-Length: 99999999999999999999\r\n\r\nab", []bool{false}},
		{"chunked", "GET", ok + "Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", []bool{false}},
		{"chunked and length", "GET", ok + "Transfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n2\r\nab\r\n0\r\n\r\n", []bool{false}},
		{"204 without length", "DELETE", "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n", []bool{true}},
		{"204 with length", "DELETE", "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", []bool{true}},
		{"304 without length", "GET", "HTTP/1.1 304 Not Modified\r\n\r\n", []bool{true}},
		{"head", "HEAD", ok + "Content-Length: 4096\r\nX-Distore-Size: 4096\r\n\r\n", []bool{true}},
		{"head without length", "HEAD", ok + "X-Distore-Size: 4096\r\n\r\n", []bool{true}},
		{"head 404", "HEAD", "HTTP/1.1 404 Not Found\r\nX-Distore-Error-Code: not_found\r\nContent-Length: 40\r\n\r\n", []bool{true}},
		{"head then get", "HEAD", ok + "Content-Length: 3\r\n\r\n" + ok + "Content-Length: 0\r\n\r\n", []bool{true, true}},
		{"no length", "GET", ok + "Content-Type: t\r\n\r\nto the end", []bool{false}},
		{"short body", "GET", ok + "Content-Length: 10\r\n\r\nabc", []bool{true}},
		{"pipelined", "GET", ok + "Content-Length: 3\r\n\r\nabc" + "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}" +
			"HTTP/1.1 204 No Content\r\n\r\n" + ok + "Content-Length: 4\r\n\r\n\r\n\r\n", []bool{true, true, true, true}},
		{"pipelined then chunked", "GET", ok + "Content-Length: 1\r\n\r\na" + ok + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []bool{true, false}},
		{"body looks like a head", "GET", ok + "Content-Length: 19\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", []bool{true}},
		{"100 continue", "PUT", "HTTP/1.1 100 Continue\r\n\r\n" + ok + "Content-Length: 0\r\n\r\n", []bool{false, true}},
		{"http/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", []bool{false}},
		{"http/1.0 keep-alive", "GET", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", []bool{false}},
		{"obs-fold", "GET", ok + "X-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", []bool{false}},
		{"leading space", "GET", ok + " X-A: a\r\nContent-Length: 0\r\n\r\n", []bool{false}},
		{"space before colon", "GET", ok + "X-A : a\r\nContent-Length: 0\r\n\r\n", []bool{false}},
		{"no colon", "GET", ok + "X-A a\r\nContent-Length: 0\r\n\r\n", []bool{false}},
		{"bare lf", "GET", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", []bool{false}},
		{"bare lf in header", "GET", ok + "X-A: a\nX-B: b\r\nContent-Length: 0\r\n\r\n", []bool{false}},
		{"bare cr in value", "GET", ok + "X-A: a\rb\r\nContent-Length: 0\r\n\r\n", []bool{false}},
		{"nul in value", "GET", ok + "X-A: a\x00b\r\nContent-Length: 0\r\n\r\n", []bool{false}},
		{"utf-8 in value", "GET", ok + "X-A: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n", []bool{false}},
		{"pragma", "GET", ok + "Pragma: no-cache\r\nContent-Length: 0\r\n\r\n", []bool{false}},
		{"trailer", "GET", ok + "Trailer: X-A\r\nContent-Length: 0\r\n\r\n", []bool{false}},
		{"bad status", "GET", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", []bool{false}},
		{"long status", "GET", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", []bool{false}},
		{"many headers", "GET", ok + strings.Repeat("X-A: a\r\n", 70) + "Content-Length: 0\r\n\r\n", []bool{false}},
		{"64 headers", "GET", ok + strings.Repeat("X-A: a\r\n", 63) + "Content-Length: 0\r\n\r\n", []bool{true}},
		{"truncated head", "GET", ok + "Content-Length: 0\r\n", []bool{false}},
		{"empty", "GET", "", []bool{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := readAllRef([]byte(tt.raw), tt.method)
			got, fast := readAllFast(t, []byte(tt.raw), tt.method)
			if d := sameResults(ref, got); d != "" {
				t.Fatalf("%s\nref:  %+v\nfast: %+v", d, ref, got)
			}
			if !reflect.DeepEqual(fast, tt.fast) {
				t.Errorf("fast path taken: %v, want %v", fast, tt.fast)
			}
		})
	}
}

// TestShortBodyConn: a connection that ends before Content-Length bytes
// fails the read instead of waiting.
func TestShortBodyConn(t *testing.T) {
	nc, peer := net.Pipe()
	defer nc.Close()
	go func() {
		peer.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
		peer.Close()
	}()
	ft := newFastTransport(NewTransport())
	c := &fconn{nc: nc, br: bufio.NewReader(nc)}
	req := &http.Request{Method: "GET"}
	fr := &fastResp{}
	resp, err := c.hp.readResponse(c.br, req.Method, req, &fr.resp)
	if err != nil {
		t.Fatal(err)
	}
	if resp != &fr.resp {
		t.Fatal("fast path not taken")
	}
	fr.attach(resp, req.Method, fastBody{t: ft, c: c, host: "h", ctx: context.Background(), stop: noStop, reusable: true})
	b, err := io.ReadAll(resp.Body)
	if string(b) != "abc" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read %q, %v; want \"abc\", unexpected EOF", b, err)
	}
	if len(ft.idle["h"]) != 0 {
		t.Fatal("a broken connection went back to the pool")
	}
}

func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Distore-Size: 5\r\n\r\nhello",
		"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length:  01 \r\n\r\nx",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		ref := readAllRef(raw, method)
		got, _ := readAllFast(t, raw, method)
		if d := sameResults(ref, got); d != "" {
			t.Fatalf("%s\nraw: %q", d, raw)
		}
	})
}
