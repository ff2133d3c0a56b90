package spill

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"distore/backend"
)

// A held object is never spilled (nor promoted), a delete still works, and
// the released object spills again.
func TestHold(t *testing.T) {
	ctx := context.Background()
	s := newStack(t, 4<<20, 0, Options{})
	for _, id := range []backend.ID{"held", "free"} {
		if _, err := s.Put(ctx, id, payload(512<<10, 1), backend.PutOptions{Importance: -1}); err != nil {
			t.Fatal(err)
		}
	}
	release, err := s.Hold(ctx, "held")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if _, err := s.Put(ctx, backend.ID(fmt.Sprint("fill", i)), payload(512<<10, 2), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, s)
	if got := tierOf(t, s, "held"); got != "memory" {
		t.Fatalf("a held object was spilled to %s", got)
	}
	if got := tierOf(t, s, "free"); got == "memory" {
		t.Fatal("its unheld twin was not spilled: the test proves nothing")
	}
	release()
	release() // a second call does nothing
	if _, err := s.Put(ctx, "more", payload(512<<10, 3), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	if got := tierOf(t, s, "held"); got == "memory" {
		t.Fatal("the released object was not spilled")
	}
	// A hold does not stop a delete.
	release, err = s.Hold(ctx, "free")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := s.Delete(ctx, "free"); err != nil {
		t.Fatalf("delete of a held object: %v", err)
	}
	if _, err := s.Hold(ctx, "free"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("hold of a deleted object: %v", err)
	}
}
