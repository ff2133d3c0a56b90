package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"distore/backend"
	"distore/internal/testutil"
	"distore/levels"
)

// TestQuickGetMatchesGet checks that the loop's quick get answers exactly
// what the general path does — status, every header, the bytes — and that
// it takes only what it should: small whole objects in memory.
func TestQuickGetMatchesGet(t *testing.T) {
	ctx := context.Background()
	mem := newMemory(t, 64<<20)
	s, err := New(mem, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{0, 1, 4 << 10, quickGetMax, quickGetMax + 1}
	for _, n := range sizes {
		if _, err := mem.Put(ctx, backend.ID(fmt.Sprint("o", n)), randBytes(n), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// The quick loop counts what reaches the general path; the other has
	// no quick path at all.
	var general atomic.Int64
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		general.Add(1)
		s.ServeHTTP(w, r)
	})
	quick := serveLoop(t, counted, time.Second, func(l *httpLoop) { l.quick = s })
	plain := serveLoop(t, s, time.Second, func(l *httpLoop) { l.quick = nil })

	for _, n := range sizes {
		id := fmt.Sprint("o", n)
		before := general.Load()
		qr, qb := testutil.Do(t, http.MethodGet, "http://"+quick.addr+"/v1/objects/"+id, nil)
		pr, pb := testutil.Do(t, http.MethodGet, "http://"+plain.addr+"/v1/objects/"+id, nil)
		if qr.StatusCode != http.StatusOK || pr.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d quick, %d general", id, qr.StatusCode, pr.StatusCode)
		}
		if !reflect.DeepEqual(qr.Header, pr.Header) {
			t.Errorf("%s: headers differ:\nquick   %v\ngeneral %v", id, qr.Header, pr.Header)
		}
		if !bytes.Equal(qb, pb) || !bytes.Equal(qb, randBytes(n)) {
			t.Errorf("%s: bodies differ (%d and %d bytes)", id, len(qb), len(pb))
		}
		if tookGeneral := general.Load() > before; tookGeneral != (n > quickGetMax) {
			t.Errorf("%s (%d bytes): general path taken: %v", id, n, tookGeneral)
		}
	}

	// What quick get leaves to the general path, with its answer unchanged.
	before := general.Load()
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/v1/objects/missing", http.StatusNotFound},
		{"/v1/objects/o1?x=1", http.StatusBadRequest},
		{"/v1/objects/-bad", http.StatusBadRequest},
	} {
		if resp, _ := testutil.Do(t, http.MethodGet, "http://"+quick.addr+tc.path, nil); resp.StatusCode != tc.status {
			t.Errorf("GET %s: status %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
	}
	if got := general.Load() - before; got != 3 {
		t.Errorf("%d of 3 requests reached the general path", got)
	}
}

// TestQuickGetWritesNothingWhenDeclining checks that quickGet leaves the
// write buffer untouched whenever it leaves the request to get.
func TestQuickGetWritesNothingWhenDeclining(t *testing.T) {
	ctx := context.Background()
	mem := newMemory(t, 64<<20)
	s, err := New(mem, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Put(ctx, "big", randBytes(quickGetMax+1), backend.PutOptions{}); err != nil {
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
	for _, tc := range []struct {
		s  *Server
		id string
	}{{s, "missing"}, {s, "big"}, {onDisk, "small"}} {
		if tc.s.quickGet(ctx, bw, tc.id) {
			t.Errorf("quickGet(%q) answered", tc.id)
		}
	}
	bw.Flush()
	if out.Len() != 0 {
		t.Errorf("quickGet wrote %q while declining", out.String())
	}
	if !s.quickGet(ctx, bw, "small") {
		t.Error("quickGet declined a small object in memory")
	}
}

// diskLevel reports its objects at the disk level.
type diskLevel struct{ backend.Backend }

func (d diskLevel) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	info, err := d.Backend.ObjectInfo(ctx, id)
	info.Level = levels.Disk
	return info, err
}
