package server

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"distore/backend"
	_ "distore/disk"
	"distore/internal/probe"
	"distore/internal/testutil"
	"distore/levels"
	"distore/shmem"
	"distore/spill"
)

// TestIDValidatedOnce: an object ID is validated once on its way from the
// HTTP request to the tier that holds the object — by the server, from the
// path — and not again by the stack, the tier's wrapper or the tier. (Before,
// the server, the stack, the wrapper and the disk tier each did it: 3 to 4
// times a request.) The raw HTTP client here validates nothing; the counter
// counts every backend.ID.Validate in the process.
func TestIDValidatedOnce(t *testing.T) {
	ctx := context.Background()
	st, err := spill.Open(ctx, spill.Options{Logger: quietLogger(), Tiers: []spill.TierSpec{
		{Name: shmem.Name, Config: backend.Config{"capacity": "4MiB", "prefault": "false"}},
		{Name: "disk", Config: backend.Config{"dir": filepath.Join(t.TempDir(), "disk")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Teardown(context.Background()) })
	ts, _ := start(t, st)
	n, stop := probe.CountIDValidations()
	defer stop()

	small, big := randBytes(4<<10), randBytes(6<<20) // big: more than the memory tier, so on disk
	url := func(id string) string { return ts.URL + "/v1/objects/" + id }
	for _, step := range []struct {
		method, path string
		body         []byte
		want         int
		hdr          []string
	}{
		{"PUT", url("small"), small, http.StatusCreated, nil},
		{"PUT", url("big"), big, http.StatusCreated, nil},
		{"GET", url("small"), nil, http.StatusOK, nil},
		{"GET", url("big"), nil, http.StatusOK, nil},
		{"GET", url("big"), nil, http.StatusPartialContent, []string{"Range", "bytes=10-99"}},
		{"HEAD", url("small"), nil, http.StatusOK, nil},
		{"POST", url("big") + "/pin", nil, http.StatusNoContent, nil},
		{"POST", url("big") + "/unpin", nil, http.StatusNoContent, nil},
		{"POST", url("big") + "/prefetch", nil, http.StatusNoContent, nil},
		{"DELETE", url("small"), nil, http.StatusNoContent, nil},
		{"DELETE", url("big"), nil, http.StatusNoContent, nil},
		{"GET", url("small"), nil, http.StatusNotFound, nil},
	} {
		before := n.Load()
		var body *bytes.Reader
		if step.body != nil {
			body = bytes.NewReader(step.body)
		} else {
			body = bytes.NewReader(nil)
		}
		resp, data := testutil.Do(t, step.method, step.path, body, step.hdr...)
		if resp.StatusCode != step.want {
			t.Fatalf("%s %s: %d %s, want %d", step.method, step.path, resp.StatusCode, data, step.want)
		}
		if got := n.Load() - before; got != 1 {
			t.Errorf("%s %s: the ID was validated %d times, want once", step.method, step.path, got)
		}
		if step.path == url("big") && step.method == "PUT" {
			if info, err := st.ObjectInfo(ctx, "big"); err != nil || info.Level != levels.Disk {
				t.Fatalf("big is not on disk: %+v, %v", info, err)
			}
		}
	}

	// Straight to the stack (no server): its door validates, once.
	before := n.Load()
	if _, err := st.Put(ctx, "direct", small, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := n.Load() - before; got != 1 {
		t.Errorf("Stack.Put: the ID was validated %d times, want once", got)
	}
	// An invalid ID still stops at every door.
	for _, b := range []backend.Backend{st, st.Tiers()[0], st.Tiers()[1]} {
		if _, err := b.Put(ctx, "../x", small, backend.PutOptions{}); err == nil {
			t.Errorf("%T: Put of ../x accepted", b)
		}
	}
	if resp, _ := testutil.Do(t, "PUT", url("a%20b"), bytes.NewReader(small)); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PUT of an invalid ID: %d, want 400", resp.StatusCode)
	}
}
