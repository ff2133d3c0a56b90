package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"distore/backend"
	"distore/levels"
)

// TestDecodeInfo: decodeInfo decodes what json.Decoder does, to the same
// values and the same success, on the server's replies and on odd input.
func TestDecodeInfo(t *testing.T) {
	now := time.Date(2026, 11, 22, 22, 27, 11, 640442526, time.UTC)
	var inputs []string
	for _, info := range []backend.ObjectInfo{
		{},
		{ID: "traj-1", Size: 1 << 20, Level: levels.Memory, Tier: "memory", Importance: -5, Pins: 2,
			Created: now, Accessed: now.In(time.FixedZone("x", 3600)), Checksum: 467447939},
		{ID: "w", Tier: `we"ird<&>`},
	} {
		b, _ := json.Marshal(info)
		inputs = append(inputs, string(b)+"\n")
	}
	inputs = append(inputs,
		`{"id":"a","size":12}`,
		`{"id":"a","size":12,"size":13}`,
		`{"ID":"a"}`,
		`{"id":"a" ,"size":1}`,
		`{"id":"a","size":+1}`,
		`{"id":"a","size":01}`,
		`{"id":"a","size":1.5}`,
		`{"id":"a","size":1e3}`,
		`{"id":"a","size":-0}`,
		`{"id":"a","level":256}`,
		`{"id":"a","checksum":4294967296}`,
		`{"id":"a","pins":-9223372036854775809}`,
		`{"id":"a","created":"2026-11-22T22:27:11Z"}`,
		`{"id":"a","created":"2026-11-22 22:27:11Z"}`,
		`{"id":"a","created":null}`,
		`{"id":"a","tier":"t\u00e9"}`,
		`{"id":"a","extra":1}`,
		`{"id":"a"} trailing`,
		`{"id":"a"}{"id":"b"}`,
		`{"id":"a",}`,
		`{}`,
		``,
		`{"id":"a"`,
		`[]`,
		strings.Repeat(" ", 2000)+`{"id":"far"}`,
	)
	for _, in := range inputs {
		var want, got backend.ObjectInfo
		wantErr := json.NewDecoder(strings.NewReader(in)).Decode(&want)
		gotErr := decodeInfo(strings.NewReader(in), &got)
		if (wantErr == nil) != (gotErr == nil) || (wantErr == nil && !reflect.DeepEqual(got, want)) {
			t.Errorf("%q:\n got %+v, %v\nwant %+v, %v", in, got, gotErr, want, wantErr)
		}
	}
	if !parseInfoJSON([]byte(inputs[1]), new(backend.ObjectInfo)) {
		t.Error("the server's reply did not take the fast path")
	}
}

// TestWritePlain: writePlain writes requests that read back as what
// Request.Write writes.
func TestWritePlain(t *testing.T) {
	ctx := context.Background()
	mk := func(method, url string, body []byte, hdr ...string) *http.Request {
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, r)
		if err != nil {
			t.Fatal(err)
		}
		if body != nil && len(body) > 0 {
			req.Body = &bytesBody{bytes.NewReader(body)}
		}
		if len(body) == 0 && body != nil {
			req.Body = http.NoBody
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		return req
	}
	for _, req := range []*http.Request{
		mk("GET", "http://127.0.0.1:7070/v1/objects/x", nil, "Range", "bytes=1-2"),
		mk("HEAD", "http://127.0.0.1:7070/v1/objects/x", nil),
		mk("PUT", "http://h:1/v1/objects/y?importance=3", []byte("hello"), "X-Distore-Checksum", "0000abcd"),
		mk("PUT", "http://h:1/v1/objects/y", bytes.Repeat([]byte("z"), 300<<10)),
		mk("POST", "http://h:1/v1/objects/y/pin", nil),
		mk("POST", "http://h:1/v1/objects", []byte{}),
		mk("DELETE", "http://h:1/v1/objects/y", nil, "X-Multi", "a", "X-Multi", "b\r\nInjected: yes"),
		mk("GET", "http://h:1/v1/objects?prefix=a%20b&limit=3", nil),
	} {
		if !plainRequest(req) {
			t.Fatalf("%s %s: not plain", req.Method, req.URL)
		}
		var want, got bytes.Buffer
		req2 := req.Clone(ctx)
		if req.Body != nil && req.Body != http.NoBody {
			req2.Body, _ = req.GetBody()
		}
		if err := req2.Write(&want); err != nil {
			t.Fatal(err)
		}
		bw := bufio.NewWriter(&got)
		if err := writeRequest(bw, req); err != nil {
			t.Fatal(err)
		}
		w, err1 := http.ReadRequest(bufio.NewReader(&want))
		g, err2 := http.ReadRequest(bufio.NewReader(&got))
		if err1 != nil || err2 != nil {
			t.Fatalf("%v %v\n%q", err1, err2, got.String())
		}
		wb, _ := io.ReadAll(w.Body)
		gb, _ := io.ReadAll(g.Body)
		if g.Method != w.Method || g.RequestURI != w.RequestURI || g.Host != w.Host || g.ContentLength != w.ContentLength ||
			!reflect.DeepEqual(g.Header, w.Header) || !bytes.Equal(gb, wb) {
			t.Errorf("%s %s:\n got %q\nwant %q", req.Method, req.URL, got.String(), want.String())
		}
	}
	// A body shorter than its ContentLength fails, as with Request.Write.
	req := mk("PUT", "http://h:1/v1/objects/y", nil)
	req.Body, req.ContentLength = io.NopCloser(strings.NewReader("abc")), 10
	if err := writeRequest(bufio.NewWriter(io.Discard), req); err == nil || !strings.Contains(err.Error(), "ContentLength=10 with Body length 3") {
		t.Fatalf("short body: %v", err)
	}
	// What writePlain does not do goes to Request.Write.
	for _, req := range []*http.Request{
		mk("GET", "http://[::1%25eth0]:1/x", nil),
		mk("GET", "http://h:1/x", nil, "User-Agent", "mine"),
		func() *http.Request { r := mk("GET", "http://h:1/x", nil); r.Close = true; return r }(),
	} {
		if plainRequest(req) {
			t.Errorf("%s %v: plain", req.URL, req.Header)
		}
	}
}
