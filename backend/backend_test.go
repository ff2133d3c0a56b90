package backend

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestIDValidate(t *testing.T) {
	good := []ID{"a", "A-b_c.d", ID(strings.Repeat("x", MaxIDLen)), NewID()}
	for _, id := range good {
		if err := id.Validate(); err != nil {
			t.Errorf("%q rejected: %v", id, err)
		}
	}
	bad := []ID{"", "../x", "a/b", "a\x00b", "\xff\xfe", ".hidden", "-flag", "a b", ID(strings.Repeat("x", MaxIDLen+1))}
	for _, id := range bad {
		err := id.Validate()
		if !errors.Is(err, ErrInvalidID) {
			t.Errorf("%q: err = %v, want ErrInvalidID", id, err)
		}
	}
}

func TestOwnedID(t *testing.T) {
	id, err := NewOwnedID("node-1")
	if err != nil || id.Owner() != "node-1" || id.Validate() != nil {
		t.Fatalf("NewOwnedID = %q, %v (owner %q)", id, err, id.Owner())
	}
	if _, err := NewOwnedID("a.b"); !errors.Is(err, ErrInvalidID) {
		t.Errorf("owner with separator accepted: %v", err)
	}
	if NewID().Owner() != "" || NewID() == NewID() {
		t.Error("NewID has an owner or repeats")
	}
}

func TestErrorsNameTierAndObject(t *testing.T) {
	err := Errorf("get", "disk", "obj1", ErrNotFound, "")
	if !errors.Is(err, ErrNotFound) || err.Error() != `disk: get "obj1": object not found` {
		t.Errorf("err = %v", err)
	}
	full := NewFullError("put", "memory", "big", 3<<20, 1<<20, 4<<20, 2<<20)
	var fe *FullError
	if !errors.Is(full, ErrFull) || errors.Is(full, ErrTooLarge) || !errors.As(error(full), &fe) {
		t.Errorf("full error classes wrong: %v", full)
	}
	if want := "need 3.0 MiB, 1.0 MiB free of 4.0 MiB, 2.0 MiB pinned"; !strings.Contains(full.Error(), want) {
		t.Errorf("full message %q lacks %q", full.Error(), want)
	}
	if tl := NewFullError("put", "memory", "big", 5<<20, 1<<20, 4<<20, 0); !errors.Is(tl, ErrTooLarge) {
		t.Errorf("too large not ErrTooLarge: %v", tl)
	}
}

func TestParseBytes(t *testing.T) {
	cases := map[string]int64{"0": 0, "1048576": 1 << 20, "4GiB": 4 << 30, "512 MiB": 512 << 20, "1.5K": 1536, "2GB": 2e9, "7b": 7}
	for in, want := range cases {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "lots", "1XB"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
}

func TestConfig(t *testing.T) {
	c := Config{"capacity": "1MiB", "sync": "yes"}
	r := c.Reader("memory", "capacity")
	r.Bool("sync", false)
	r.Require(false, "something else is wrong")
	if err := r.Err(); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), `unknown option "sync"`) ||
		!strings.Contains(err.Error(), `"yes" is not true or false`) || !strings.Contains(err.Error(), "something else is wrong") {
		t.Errorf("Reader.Err = %v, want all three problems", err)
	}
	if n, err := c.Bytes("capacity", 0); n != 1<<20 || err != nil {
		t.Errorf("Bytes = %d, %v", n, err)
	}
	if _, err := c.Bool("sync", false); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Bool(yes) = %v", err)
	}
	if d, _ := c.Duration("missing", 7); d != 7 {
		t.Errorf("default Duration = %v", d)
	}
}

func TestCheckRange(t *testing.T) {
	if n, err := CheckRange("read", "t", "o", 3, -1, 10); n != 7 || err != nil {
		t.Errorf("to end: %d %v", n, err)
	}
	if n, err := CheckRange("read", "t", "o", 10, 0, 10); n != 0 || err != nil {
		t.Errorf("empty at end: %d %v", n, err)
	}
	for _, r := range [][2]int64{{-1, 1}, {0, 11}, {11, -1}, {5, -2}, {9, 2}} {
		if _, err := CheckRange("read", "t", "o", r[0], r[1], 10); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("range %v accepted: %v", r, err)
		}
	}
}

func TestChecksum(t *testing.T) {
	src := []byte(strings.Repeat("distore", 50000))
	dst := make([]byte, len(src))
	n, crc := CopyChecksum(dst, src)
	if n != len(src) || crc != Checksum(src) || string(dst) != string(src) {
		t.Fatal("CopyChecksum differs from copy + Checksum")
	}
	if UpdateChecksum(Checksum(src[:100]), src[100:]) != crc {
		t.Fatal("UpdateChecksum does not extend")
	}
}

func TestRegistry(t *testing.T) {
	f := func(Config) (Backend, error) { return nil, errors.New("boom") }
	if err := Register("regtest", f); err != nil {
		t.Fatal(err)
	}
	if err := Register("regtest", f); err == nil {
		t.Error("registered twice")
	}
	if err := Register("a,b", f); err == nil {
		t.Error("name with comma accepted")
	}
	if _, err := Open(context.Background(), "nope", nil); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "regtest") {
		t.Errorf("Open unknown = %v", err)
	}
	if _, err := New("regtest", nil); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("factory error lost: %v", err)
	}
}

func TestConfigReaderReportsEveryProblem(t *testing.T) {
	cfg := Config{"capacty": "1GiB", "capacity": "lots", "sync": "maybe", "chunk": "1"}
	r := cfg.Reader("disk", "capacity", "sync", "dir")
	_ = r.Bytes("capacity", 0)
	_ = r.Bool("sync", true)
	r.Require(r.String("dir", "") != "", "option dir is required")
	err := r.Err()
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Err = %v; want ErrInvalidArgument", err)
	}
	for _, want := range []string{"disk:", `unknown option "capacty"`, `unknown option "chunk"`, "capacity", `"maybe"`, "dir is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Err = %q; does not report %q", err, want)
		}
	}
	if err := (Config{"sync": "true"}).Reader("disk", "sync").Err(); err != nil {
		t.Errorf("a good config: %v", err)
	}
}
