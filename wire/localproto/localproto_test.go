package localproto

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"distore/backend"
	"distore/levels"
)

func TestInfoRoundTrip(t *testing.T) {
	in := backend.ObjectInfo{ID: "abc", Size: 1 << 40, Level: levels.Memory, Tier: "memory", Importance: -3,
		Pins: 2, Created: time.Unix(5, 6), Accessed: time.Unix(7, 8), Checksum: 0xdeadbeef}
	var e Encoder
	f, err := e.Begin(ReplyInfo).PutInfo(in).Frame()
	if err != nil {
		t.Fatal(err)
	}
	op, p, _, err := ReadFrame(bytes.NewReader(f), nil)
	if err != nil || op != ReplyInfo {
		t.Fatalf("ReadFrame: op %d, %v", op, err)
	}
	d := NewDecoder(p)
	out := d.Info()
	if err := d.Done(); err != nil {
		t.Fatal(err)
	}
	if !out.Created.Equal(in.Created) || !out.Accessed.Equal(in.Accessed) {
		t.Fatalf("times: %v", out)
	}
	out.Created, out.Accessed, in.Created, in.Accessed = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if out != in {
		t.Fatalf("got %+v, want %+v", out, in)
	}
}

func TestErrorRoundTrip(t *testing.T) {
	for _, sent := range []error{backend.ErrNotFound, backend.ErrExists, backend.ErrPinned, backend.ErrNotPinned,
		backend.ErrInvalidID, backend.ErrCorrupt, backend.ErrClosed} {
		var e Encoder
		f, _ := e.Begin(ReplyError).PutError(backend.Errorf("get", "memory", "x", sent, "")).Frame()
		d := NewDecoder(f[HeaderSize:])
		err := d.Error("get", "x")
		if !errors.Is(err, sent) {
			t.Errorf("%v: decoded %v", sent, err)
		}
	}
	var e Encoder
	f, _ := e.Begin(ReplyError).PutError(backend.NewFullError("put", "memory", "x", 10, 5, 8, 3)).Frame()
	err := NewDecoder(f[HeaderSize:]).Error("put", "x")
	var fe *backend.FullError
	if !errors.Is(err, backend.ErrTooLarge) || !errors.As(err, &fe) || fe.Free != 5 || fe.Pinned != 3 {
		t.Fatalf("full error: %v %+v", err, fe)
	}
}

func TestLimits(t *testing.T) {
	hdr := []byte{0xff, 0xff, 0xff, 0x7f, OpGet, 0, 0, 0}
	if _, err := ParseHeader(hdr); !errors.Is(err, ErrProtocol) {
		t.Fatalf("huge length: %v", err)
	}
	if _, _, _, err := ReadFrame(bytes.NewReader([]byte{10, 0, 0, 0, OpGet, 0, 0, 0, 1, 2}), nil); !errors.Is(err, ErrProtocol) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := ParseHeader([]byte{0, 0, 0, 0, OpGet, 1, 0, 0}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("reserved bytes: %v", err)
	}
	d := NewDecoder([]byte{0xff, 0xff, 0, 0})
	if d.Str(); !errors.Is(d.Err(), ErrProtocol) {
		t.Fatalf("long string: %v", d.Err())
	}
	var e Encoder
	if _, err := e.Begin(OpPutInline).Bytes(make([]byte, MaxPayload)).Frame(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("oversized frame encoded: %v", err)
	}
}

// FuzzDecode feeds arbitrary frames to the frame reader and every decoder a
// server or client uses: errors, never panics.
func FuzzDecode(f *testing.F) {
	var e Encoder
	seed, _ := e.Begin(ReplyInfo).PutInfo(backend.ObjectInfo{ID: "a", Tier: "memory"}).Frame()
	f.Add(seed)
	seed, _ = e.Begin(ReplyError).PutError(backend.ErrNotFound).Frame()
	f.Add(seed)
	seed, _ = e.Begin(OpPutInline).Str("id").U64(1).U32(0).Bytes([]byte("xyz")).Frame()
	f.Add(seed)
	f.Add([]byte{1, 0, 0, 0, OpGet, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		op, p, _, err := ReadFrame(bytes.NewReader(b), nil)
		if err != nil {
			return
		}
		_ = op
		d := NewDecoder(p)
		_ = d.Info()
		_ = d.Done()
		d = NewDecoder(p)
		_ = d.Error("x", "")
		d = NewDecoder(p)
		_, _, _, _ = d.Str(), d.U64(), d.U32(), d.Bytes()
		if err := d.Done(); err != nil && !errors.Is(err, ErrProtocol) {
			t.Fatalf("error not wrapping ErrProtocol: %v", err)
		}
	})
}
