package server

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"distore/wire"
)

// parseRange parses a single-range Range header ("bytes=a-b", "bytes=a-",
// "bytes=-n") against an object of size bytes. It returns the offset and
// length to serve and whether the response is partial. An empty header is the
// whole object. A malformed header, several ranges, or a range that starts past
// the end is an error with status 416; an end past the object is clamped, as
// RFC 9110 says.
func parseRange(h string, size int64) (off, n int64, partial bool, err error) {
	if h == "" {
		return 0, size, false, nil
	}
	bad := func(why string) (int64, int64, bool, error) {
		return 0, 0, false, errorf(http.StatusRequestedRangeNotSatisfiable, wire.CodeBadRange,
			fmt.Sprintf("Range %q: %s (object is %d bytes)", truncate(h), why, size))
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return bad(`unit must be "bytes"`)
	}
	if strings.Contains(spec, ",") {
		return bad("only a single range is supported")
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return bad(`missing "-"`)
	}
	if first == "" { // suffix: the last n bytes
		k, err := parseNonNeg(last)
		if err != nil || k == 0 {
			return bad("bad suffix length")
		}
		if size == 0 {
			return bad("object is empty")
		}
		k = min(k, size)
		return size - k, k, true, nil
	}
	start, err := parseNonNeg(first)
	if err != nil {
		return bad("bad first byte position")
	}
	if start >= size {
		return bad("first byte is past the end")
	}
	end := size - 1
	if last != "" {
		e, err := parseNonNeg(last)
		if err != nil || e < start {
			return bad("bad last byte position")
		}
		end = min(e, size-1)
	}
	return start, end - start + 1, true, nil
}

// rangeStart reads a Range header of the forms that can be served without
// knowing the object's size: "bytes=a-b" (n = b-a+1) and "bytes=a-" (n =
// -1, to the end). ok is false for anything else (suffix ranges, several
// ranges, malformed ones): parseRange, with the size, answers those.
func rangeStart(h string) (start, n int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found || first == "" {
		return 0, 0, false
	}
	start, err := parseNonNeg(first)
	if err != nil {
		return 0, 0, false
	}
	if last == "" {
		return start, -1, true
	}
	end, err := parseNonNeg(last)
	if err != nil || end < start || end-start == 1<<63-1 {
		return 0, 0, false
	}
	return start, end - start + 1, true
}

// parseNonNeg parses a decimal number of digits only (no sign, no spaces).
func parseNonNeg(s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	return strconv.ParseInt(s, 10, 64)
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
