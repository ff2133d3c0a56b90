package server

import (
	"context"
	"fmt"
	"testing"

	"distore/backend"
	"distore/shmem"
)

// newMemory returns the real memory tier (distore/shmem), set up with
// capacity bytes and torn down when the test ends: the server's tests run on
// a real tier rather than on a copy of one.
func newMemory(t testing.TB, capacity int64) backend.Backend {
	t.Helper()
	b, err := backend.Open(context.Background(), shmem.Name, backend.Config{"capacity": fmt.Sprint(capacity), "prefault": "false"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Teardown(context.Background()) }) // ErrClosed if the test tore it down
	return b
}

// failing is a backend whose ObjectInfo fails with err, to test how the
// server maps a tier's errors to status codes; the rest is the real tier.
type failing struct {
	backend.Backend
	err error
}

func (f failing) ObjectInfo(context.Context, backend.ID) (backend.ObjectInfo, error) {
	return backend.ObjectInfo{}, f.err
}
