package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"distore/backend"
	"distore/levels"
)

// quickPair serves the same kind of store twice: once with quick requests,
// counting what reaches the general path, and once without them.
type quickPair struct {
	quick, plain *loopServer
	memQ, memP   backend.Backend
	general      atomic.Int64 // requests of the quick server that reached the handlers
}

func newQuickPair(t *testing.T) *quickPair {
	qp := &quickPair{memQ: newMemory(t, 64<<20), memP: newMemory(t, 64<<20)}
	sq, err := New(qp.memQ, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := New(qp.memP, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		qp.general.Add(1)
		sq.ServeHTTP(w, r)
	})
	qp.quick = serveLoop(t, counted, time.Second, func(l *httpLoop) { l.quick = sq })
	qp.plain = serveLoop(t, sp, time.Second, func(l *httpLoop) { l.quick = nil })
	return qp
}

// rawDo sends raw in one write on a new connection and reads the response.
func rawDo(t *testing.T, addr, raw string) (*http.Response, []byte) {
	t.Helper()
	c := dialRaw(t, addr)
	defer c.Close()
	c.send(t, raw)
	r := c.read(t, strings.Fields(raw)[0])
	return r.Response, r.body
}

// quickness is whether a request must be answered quick.
type quickness int

const (
	general quickness = iota
	quick
	eitherWay // a put whose body may come in two reads: quick only if it came in one
)

func quickIf(b bool) quickness {
	if b {
		return quick
	}
	return general
}

// times are the timestamps of an object's info, which two stores never share.
var times = regexp.MustCompile(`"(created|accessed)":"[^"]*"`)

// same sends raw to both servers and checks that the answers are the same —
// status, every header, the body (timestamps aside) — and whether the quick
// server's handlers saw it.
func (qp *quickPair) same(t *testing.T, raw string, wantStatus int, wantQuick quickness) []byte {
	t.Helper()
	before := qp.general.Load()
	qr, qb := rawDo(t, qp.quick.addr, raw)
	pr, pb := rawDo(t, qp.plain.addr, raw)
	name := strings.SplitN(raw, "\r\n", 2)[0]
	if qr.StatusCode != wantStatus || pr.StatusCode != wantStatus {
		t.Errorf("%s: status %d quick, %d general; want %d (%s)", name, qr.StatusCode, pr.StatusCode, wantStatus, pb)
	}
	// The bodies' lengths differ with their timestamps: each must match its
	// body, and the rest of the headers each other.
	for _, r := range []struct {
		h    http.Header
		body []byte
	}{{qr.Header, qb}, {pr.Header, pb}} {
		if cl := r.h.Get("Content-Length"); cl != fmt.Sprint(len(r.body)) {
			t.Errorf("%s: Content-Length %s of a %d-byte body", name, cl, len(r.body))
		}
		r.h.Del("Content-Length")
	}
	if !reflect.DeepEqual(qr.Header, pr.Header) {
		t.Errorf("%s: headers differ:\nquick   %v\ngeneral %v", name, qr.Header, pr.Header)
	}
	if q, p := times.ReplaceAll(qb, []byte(`"$1":"T"`)), times.ReplaceAll(pb, []byte(`"$1":"T"`)); !bytes.Equal(q, p) {
		t.Errorf("%s: bodies differ:\nquick   %.200q\ngeneral %.200q", name, q, p)
	}
	if answered := quickIf(qp.general.Load() == before); wantQuick != eitherWay && answered != wantQuick {
		t.Errorf("%s: answered quick: %v, want %v", name, answered == quick, wantQuick == quick)
	}
	return qb
}

func putRaw(id string, body []byte, hdr ...string) string {
	return fmt.Sprintf("PUT /v1/objects/%s HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n%s\r\n%s", id, len(body), strings.Join(hdr, ""), body)
}

func getRaw(path string, hdr ...string) string {
	return fmt.Sprintf("GET %s HTTP/1.1\r\nHost: h\r\n%s\r\n", path, strings.Join(hdr, ""))
}

// TestQuickMatchesGeneral checks that quick gets and puts answer exactly
// what the handlers do, that they take only what they should (small whole
// objects; a get only from memory), and that whatever they decline — bad
// input, a failed Put — gets the handlers' answer and stores nothing more.
func TestQuickMatchesGeneral(t *testing.T) {
	ctx := context.Background()
	qp := newQuickPair(t)
	sizes := []int{0, 1, 4 << 10, quickMax, quickMax + 1}
	for _, n := range sizes {
		id, data := fmt.Sprint("o", n), randBytes(n)
		putQuick := quickIf(n <= quickMax)
		if n > 4<<10 && n <= quickMax {
			putQuick = eitherWay // one write, but the kernel may hand it over in two segments
		}
		qp.same(t, putRaw(id, data), http.StatusCreated, putQuick)
		body := qp.same(t, getRaw("/v1/objects/"+id, "User-Agent: t\r\nAccept-Encoding: gzip\r\n"), http.StatusOK, quickIf(n <= quickMax))
		if !bytes.Equal(body, data) {
			t.Errorf("get %s: %d bytes back, not the %d put", id, len(body), n)
		}
	}

	// Put's options, quick and not.
	sum := fmt.Sprintf("%08x", backend.Checksum(randBytes(100)))
	qp.same(t, putRaw("opts", randBytes(100), "X-Distore-Checksum: "+sum+"\r\nX-Distore-Importance: 7\r\nContent-Type: application/octet-stream\r\n"),
		http.StatusCreated, quick)
	for _, m := range []backend.Backend{qp.memQ, qp.memP} {
		if info, err := m.ObjectInfo(ctx, "opts"); err != nil || info.Importance != 7 || info.Checksum != backend.Checksum(randBytes(100)) {
			t.Errorf("opts stored as %+v, %v", info, err)
		}
	}

	// Declined: bad input and failed Puts get the handlers' answers.
	for _, tc := range []struct {
		raw    string
		status int
	}{
		{putRaw("o1", []byte("again")), http.StatusConflict},
		{putRaw("bad-sum", []byte("x"), "X-Distore-Checksum: 00000001\r\n"), http.StatusUnprocessableEntity},
		{putRaw("bad-sum2", []byte("x"), "X-Distore-Checksum: zz\r\n"), http.StatusBadRequest},
		{putRaw("bad-imp", []byte("x"), "X-Distore-Importance: high\r\n"), http.StatusBadRequest},
		{putRaw("-bad", []byte("x")), http.StatusBadRequest},
		{getRaw("/v1/objects/missing"), http.StatusNotFound},
		{getRaw("/v1/objects/o1?x=1"), http.StatusBadRequest},
		{getRaw("/v1/objects/-bad"), http.StatusBadRequest},
	} {
		qp.same(t, tc.raw, tc.status, general)
	}
	for _, m := range []backend.Backend{qp.memQ, qp.memP} {
		st, err := m.Stats(ctx)
		if err != nil || st.Objects != int64(len(sizes)+1) {
			t.Errorf("store holds %d objects (%v), want %d", st.Objects, err, len(sizes)+1)
		}
	}
}

// TestQuickDeclinesWithoutWriting checks that a quick request left to the
// handlers wrote nothing and stored nothing.
func TestQuickDeclinesWithoutWriting(t *testing.T) {
	ctx := context.Background()
	mem := newMemory(t, 64<<20)
	s, err := New(mem, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Put(ctx, "big", randBytes(quickMax+1), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Put(ctx, "small", randBytes(10), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	onDisk, err := New(diskLevel{mem}, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	get := func(id string) quickReq { return quickReq{method: http.MethodGet, id: id} }
	put := func(id string, body string, checksum, importance string) quickReq {
		q := quickReq{method: http.MethodPut, id: id, body: []byte(body)}
		if checksum != "" {
			q.checksum = []byte(checksum)
		}
		if importance != "" {
			q.importance = []byte(importance)
		}
		return q
	}
	for _, tc := range []struct {
		s *Server
		q quickReq
	}{
		{s, get("missing")}, {s, get("big")}, {onDisk, get("small")},
		{s, put("small", "taken", "", "")},
		{s, put("new", "x", "00000001", "")},
		{s, put("new", "x", "not-hex", "")},
		{s, put("new", "x", "", "1.5")},
	} {
		if tc.s.serveQuick(ctx, bw, tc.q) {
			t.Errorf("serveQuick(%+v) answered", tc.q)
		}
	}
	bw.Flush()
	if out.Len() != 0 {
		t.Errorf("serveQuick wrote %q while declining", out.String())
	}
	if _, err := mem.ObjectInfo(ctx, "new"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("a declined put stored the object: %v", err)
	}
	if !s.serveQuick(ctx, bw, get("small")) {
		t.Error("serveQuick declined a small object in memory")
	}
}

// diskLevel reports its objects at the disk level.
type diskLevel struct{ backend.Backend }

func (d diskLevel) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	info, err := d.Backend.ObjectInfo(ctx, id)
	info.Level = levels.Disk
	return info, err
}

// blockingPut is a backend whose Put waits for release, as a put waits for
// room in a full store.
type blockingPut struct {
	backend.Backend
	entered, release chan struct{}
}

func (b blockingPut) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	close(b.entered)
	<-b.release
	return b.Backend.Put(ctx, id, data, opts)
}

// TestQuickPutDuringShutdown: a quick put in flight when shutdown begins
// finishes, is stored, and its answer says Connection: close, as a
// handler's does.
func TestQuickPutDuringShutdown(t *testing.T) {
	mem := newMemory(t, 64<<20)
	bp := blockingPut{Backend: mem, entered: make(chan struct{}), release: make(chan struct{})}
	s, err := New(bp, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ls := serveLoop(t, s, 10*time.Second)
	c := dialRaw(t, ls.addr)
	c.send(t, putRaw("late", []byte("data")))
	<-bp.entered
	stopped := make(chan error, 1)
	go func() { stopped <- ls.stop(t, 10*time.Second) }()
	// Shutdown is under way once the listener is closed; the loop marks
	// itself closing right after.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		nc, err := net.DialTimeout("tcp", ls.addr, time.Second)
		if err != nil {
			break
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting 10 s after shutdown began")
		}
	}
	time.Sleep(100 * time.Millisecond)
	close(bp.release)
	r := c.read(t, http.MethodPut)
	if r.StatusCode != http.StatusCreated || !r.Close {
		t.Fatalf("quick put in flight at shutdown: %d %q close=%v", r.StatusCode, r.body, r.Close)
	}
	c.expectEOF(t)
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := mem.ObjectInfo(context.Background(), "late"); err != nil {
		t.Fatalf("the put answered 201 is not stored: %v", err)
	}
}
