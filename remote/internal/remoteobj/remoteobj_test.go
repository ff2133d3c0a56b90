package remoteobj

import (
	"context"
	"errors"
	"testing"

	"distore/backend"
	"distore/levels"
)

func TestSpaceReserveStats(t *testing.T) {
	s := &Space{Tier: "x", Capacity: 100}
	s.Added(60)
	if err := s.Reserve("put", "a", 41); !errors.Is(err, backend.ErrFull) {
		t.Fatalf("Reserve 41 of 40 free = %v, want ErrFull", err)
	}
	if err := s.Reserve("put", "a", 40); err != nil {
		t.Fatal(err)
	}
	if err := s.Reserve("put", "b", 1); !errors.Is(err, backend.ErrFull) {
		t.Fatalf("Reserve beyond the reservations = %v, want ErrFull", err)
	}
	s.Unreserve(40)
	st := s.Stats(levels.Remote)
	want := backend.Stats{Tier: "x", Level: levels.Remote, Capacity: 100, Used: 60, Objects: 1}
	if st.Tier != want.Tier || st.Level != want.Level || st.Capacity != want.Capacity || st.Used != want.Used || st.Objects != want.Objects {
		t.Fatalf("Stats = %+v, want %+v", st, want)
	}
	s.Removed(60)
	if st := s.Stats(levels.Remote); st.Used != 0 || st.Objects != 0 {
		t.Fatalf("Stats after Removed = %+v", st)
	}
}

func TestStartPut(t *testing.T) {
	s := &Space{Tier: "x", Capacity: 10}
	data := []byte("hello")
	if _, _, _, err := s.StartPut("put", "a", data, backend.PutOptions{Checksum: backend.Checksum(data) + 1}); !errors.Is(err, backend.ErrCorrupt) {
		t.Fatalf("StartPut with a wrong CRC = %v, want ErrCorrupt", err)
	}
	crc, created, release, err := s.StartPut("put", "a", data, backend.PutOptions{})
	if err != nil || crc != backend.Checksum(data) || created.IsZero() {
		t.Fatalf("StartPut = %08x, %v, %v", crc, created, err)
	}
	if _, _, _, err := s.StartPut("put", "b", make([]byte, 6), backend.PutOptions{}); !errors.Is(err, backend.ErrFull) {
		t.Fatalf("StartPut past the reservation = %v, want ErrFull", err)
	}
	release()
	if _, _, release, err := s.StartPut("put", "b", make([]byte, 10), backend.PutOptions{}); err != nil {
		t.Fatalf("release did not give the reservation back: %v", err)
	} else {
		release()
	}
}

func TestStream(t *testing.T) {
	data := []byte("hello")
	space := &Space{Tier: "x", Capacity: 10}
	if err := space.Reserve("write", "a", 5); err != nil {
		t.Fatal(err)
	}
	s := NewStream(space, "a", 5, backend.PutOptions{Checksum: backend.Checksum(data)})
	if err := s.Admit(context.Background(), false, make([]byte, 6)); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("Admit past the size = %v, want ErrInvalidArgument", err)
	}
	if err := s.Admit(context.Background(), true, data); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Admit on a closed tier = %v, want ErrClosed", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Admit(ctx, false, data); !errors.Is(err, context.Canceled) {
		t.Fatalf("Admit with a cancelled context = %v", err)
	}
	if _, err := s.Verify(); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("Verify of a short write = %v, want ErrInvalidArgument", err)
	}
	if err := s.Admit(context.Background(), false, data); err != nil {
		t.Fatal(err)
	}
	s.N += 5
	if crc, err := s.Verify(); err != nil || crc != backend.Checksum(data) {
		t.Fatalf("Verify = %08x, %v", crc, err)
	}
	s.Release()
	s.Release()
	if err := space.Reserve("write", "b", 10); err != nil {
		t.Fatalf("the reservation was not given back exactly once: %v", err)
	}
	bad := NewStream(space, "c", 0, backend.PutOptions{Checksum: 1})
	if _, err := bad.Verify(); !errors.Is(err, backend.ErrCorrupt) {
		t.Fatalf("Verify with a wrong CRC = %v, want ErrCorrupt", err)
	}
	if s.Over() != nil {
		t.Fatal("Over of an open write")
	}
	s.Fail(errors.New("first"))
	s.Fail(errors.New("second"))
	if err := s.Over(); err == nil || err.Error() != "first" {
		t.Fatalf("Over after failures = %v, want the first", err)
	}
	s.Done = true
	if err := s.Over(); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("Over after Close = %v, want ErrInvalidArgument", err)
	}
}

func TestCheckData(t *testing.T) {
	data := []byte("abc")
	if crc, err := CheckData("put", "x", "a", data, 0); err != nil || crc != backend.Checksum(data) {
		t.Fatalf("CheckData = %08x, %v", crc, err)
	}
	if _, err := CheckData("put", "x", "a", data, backend.Checksum(data)+1); !errors.Is(err, backend.ErrCorrupt) {
		t.Fatalf("CheckData with a wrong CRC = %v, want ErrCorrupt", err)
	}
}

func TestFinish(t *testing.T) {
	space := &Space{Tier: "x", Capacity: 10}
	var commits, discards int
	commit := func() error { commits++; return nil }
	discard := func() { discards++ }
	if err := space.Reserve("write", "a", 10); err != nil {
		t.Fatal(err)
	}
	s := NewStream(space, "a", 10, backend.PutOptions{})
	if err := s.Finish(commit, discard); err != nil || commits != 1 || discards != 0 {
		t.Fatalf("Finish = %v, %d commits, %d discards", err, commits, discards)
	}
	if err := s.Finish(commit, discard); err != nil || commits != 1 {
		t.Fatalf("second Finish = %v, %d commits: want nil, no second commit", err, commits)
	}
	if err := space.Reserve("write", "b", 10); err != nil {
		t.Fatalf("the reservation was not given back: %v", err)
	}
	boom := errors.New("boom")
	f := NewStream(space, "b", 10, backend.PutOptions{})
	if err := f.Finish(func() error { return boom }, discard); err != boom || discards != 1 || f.Failed != boom {
		t.Fatalf("failed Finish = %v, %d discards, Failed %v", err, discards, f.Failed)
	}
	if err := f.Finish(commit, discard); err != boom || commits != 1 {
		t.Fatalf("Finish after a failure = %v, %d commits", err, commits)
	}
}

func TestAbandon(t *testing.T) {
	space := &Space{Tier: "x"}
	var discards int
	discard := func() { discards++ }
	s := NewStream(space, "a", 1, backend.PutOptions{})
	s.Abandon(discard)
	s.Abandon(discard)
	if discards != 1 || !errors.Is(s.Failed, backend.ErrInvalidArgument) || !s.Done {
		t.Fatalf("Abandon twice: %d discards, Failed %v, Done %v", discards, s.Failed, s.Done)
	}
	failed := NewStream(space, "b", 1, backend.PutOptions{})
	boom := errors.New("boom")
	failed.Fail(boom)
	failed.Abandon(discard)
	if discards != 1 || failed.Failed != boom {
		t.Fatalf("Abandon of a failed write: %d discards, Failed %v", discards, failed.Failed)
	}
	closed := NewStream(space, "c", 0, backend.PutOptions{})
	if err := closed.Finish(func() error { return nil }, discard); err != nil {
		t.Fatal(err)
	}
	closed.Abandon(discard)
	if discards != 1 || closed.Failed != nil {
		t.Fatalf("Abandon after Close: %d discards, Failed %v", discards, closed.Failed)
	}
}
