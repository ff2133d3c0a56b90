package wire

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
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
	want := "id=a.b-c&size=1099511627776&checksum=0000beef&importance=-7&pins=2&level=memory&tier=memory" +
		"&created=2026-01-02T03:04:05.000000006Z&accessed=2026-02-03T04:05:06.000000007Z"
	if v := h.Get(HeaderInfo); v != want {
		t.Errorf("info header\n%s\nwant\n%s", v, want)
	}
	got, err := ParseInfo("", h)
	if err != nil || got != info {
		t.Fatalf("ParseInfo(SetInfo(info)) = %+v, %v; want %+v", got, err, info)
	}
	// An ID or tier that needs escaping comes back as it was.
	odd := backend.ObjectInfo{ID: "a&b=c d%", Tier: "my tier+1", Level: levels.Disk}
	SetInfo(h, odd)
	if got, err := ParseInfo("", h); err != nil || got != odd {
		t.Fatalf("ParseInfo(SetInfo(%+v)) = %+v, %v", odd, got, err)
	}
	for _, bad := range []string{"size=12x", "created=yesterday", "checksum=xyz", "level=attic", "pins=1&pins=x%zz"} {
		h.Set(HeaderInfo, bad)
		if _, err := ParseInfo("", h); err == nil {
			t.Errorf("malformed info %q parsed", bad)
		}
	}
	if _, err := ParseInfo("", http.Header{}); err == nil {
		t.Error("a reply without the info header parsed")
	}
	if _, err := ParseChecksum("xyz"); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatal(err)
	}
}

// TestCanonicalNames: SetInfo and the server assign header names as they are, so each
// must be in canonical form.
func TestCanonicalNames(t *testing.T) {
	for _, n := range []string{HeaderInfo, HeaderImportance, HeaderCreated, HeaderChecksum, HeaderErrorCode, HeaderErrorMessage} {
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

// parseInfoQuery is ParseInfoValue written over url.ParseQuery: the reference
// FuzzParseInfoValue holds it to.
func parseInfoQuery(id backend.ID, v string) (backend.ObjectInfo, error) {
	q, err := url.ParseQuery(v)
	if err != nil {
		return backend.ObjectInfo{ID: id}, err
	}
	info := backend.ObjectInfo{ID: backend.ID(q.Get("id")), Tier: q.Get("tier")}
	if info.ID == "" {
		info.ID = id
	}
	var errs []error
	num := func(key string) int64 {
		if q.Get(key) == "" {
			return 0
		}
		n, err := strconv.ParseInt(q.Get(key), 10, 64)
		errs = append(errs, err)
		return n
	}
	info.Size, info.Importance, info.Pins = num("size"), int(num("importance")), int(num("pins"))
	if v := q.Get("level"); v != "" && v != "none" {
		l, err := levels.Parse(v)
		info.Level = l
		errs = append(errs, err)
	}
	if v := q.Get("checksum"); v != "" {
		c, err := ParseChecksum(v)
		info.Checksum = c
		errs = append(errs, err)
	}
	when := func(key string) time.Time {
		if q.Get(key) == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, q.Get(key))
		errs = append(errs, err)
		return t
	}
	info.Created, info.Accessed = when("created"), when("accessed")
	return info, errors.Join(errs...)
}

// FuzzParseInfoValue: the info header's parser reads every value as
// url.ParseQuery and url.Values.Get would, fails where they fail, and never
// panics.
func FuzzParseInfoValue(f *testing.F) {
	f.Add(FormatInfo(backend.ObjectInfo{ID: "a b&c", Size: 9, Checksum: 7, Importance: -1, Pins: 1, Level: levels.Disk,
		Tier: "t+1", Created: time.Unix(1, 2).UTC(), Accessed: time.Unix(3, 4).UTC()}))
	for _, s := range []string{"", "&&", "size=1&size=x", "size=x&size=1", "id=%zz", "a;b=c", "id", "=x", "pins=%2B1",
		"level=none", "level=", "created=&id=x", "tier=a%20b+c", "checksum=ffffffff0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := ParseInfoValue("dflt", v)
		want, werr := parseInfoQuery("dflt", v)
		if (err != nil) != (werr != nil) {
			t.Fatalf("%q: error %v, url.ParseQuery's way: %v", v, err, werr)
		}
		if err == nil && got != want {
			t.Fatalf("%q: %+v, url.ParseQuery's way %+v", v, got, want)
		}
	})
}
