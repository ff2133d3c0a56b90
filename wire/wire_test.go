package wire

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"distore/backend"
	"distore/levels"
)

// TestCodesRoundTrip: the error a server classifies comes back, through its
// code, as the same sentinel on the client, and every code has a distinct
// meaning.
func TestCodesRoundTrip(t *testing.T) {
	for _, c := range classes {
		err := fmt.Errorf("op %q on tier t: %w", "x", c.err)
		status, code := Classify(err)
		if status != c.status || code != c.code {
			t.Errorf("Classify(%v) = %d %s, want %d %s", c.err, status, code, c.status, c.code)
		}
		back := NewErrorBody(code, err).Err("get", "x", status)
		if !errors.Is(back, c.err) {
			t.Errorf("code %s comes back as %v, want %v", code, back, c.err)
		}
	}
	if s, c := Classify(errors.New("other")); s != http.StatusInternalServerError || c != CodeInternal {
		t.Errorf("an unknown error: %d %s", s, c)
	}
	full := backend.NewFullError("put", "memory", "x", 10, 5, 100, 95)
	_, code := Classify(full)
	var fe *backend.FullError
	if back := NewErrorBody(code, full).Err("put", "x", 507); !errors.As(back, &fe) || fe.Requested != 10 || fe.Free != 5 || fe.Capacity != 100 || fe.Pinned != 95 {
		t.Errorf("a FullError comes back as %#v", back)
	}
	if !errors.Is(ErrorBody{}.Err("get", "x", 404), backend.ErrNotFound) {
		t.Error("a 404 without a code is not ErrNotFound")
	}
	if CodeSentinel(CodeTimeout) != context.DeadlineExceeded || CodeSentinel("nope") != nil {
		t.Error("CodeSentinel")
	}
}

func TestInfoHeaders(t *testing.T) {
	info := backend.ObjectInfo{ID: "a.b-c", Size: 1 << 40, Level: levels.Memory, Tier: "memory", Importance: -7, Pins: 2,
		Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Accessed: time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC), Checksum: 0x0000beef}
	h := http.Header{}
	SetInfo(h, info)
	if h.Get(HeaderChecksum) != "0000beef" {
		t.Errorf("checksum header %q", h.Get(HeaderChecksum))
	}
	got, err := ParseInfo("", h)
	if err != nil || got != info {
		t.Fatalf("ParseInfo(SetInfo(info)) = %+v, %v; want %+v", got, err, info)
	}
	h.Set(HeaderSize, "12x")
	h.Set(HeaderCreated, "yesterday")
	if _, err := ParseInfo("", h); err == nil {
		t.Fatal("malformed headers parsed")
	}
	if _, err := ParseChecksum("xyz"); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatal(err)
	}
}

// TestCanonicalNames: SetInfo assigns header names as they are, so each
// must be in canonical form.
func TestCanonicalNames(t *testing.T) {
	for _, n := range []string{HeaderSize, HeaderImportance, HeaderPins, HeaderLevel, HeaderTier, HeaderCreated,
		HeaderAccessed, HeaderChecksum, HeaderID, HeaderErrorCode, HeaderErrorMessage} {
		if http.CanonicalHeaderKey(n) != n {
			t.Errorf("header name %q is not canonical", n)
		}
	}
	for _, c := range []uint32{0, 1, 0xdeadbeef, 0xffffffff} {
		if got, want := FormatChecksum(c), fmt.Sprintf("%08x", c); got != want {
			t.Errorf("FormatChecksum(%#x) = %s, want %s", c, got, want)
		}
	}
}
