package client

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"sync"

	"distore/backend"
	"distore/levels"
)

// decodeInfo reads a put's reply, the object's info in JSON, as
// json.NewDecoder(r).Decode(info) does. The server writes it in one shape;
// a small parser reads that shape, and encoding/json the rest.
func decodeInfo(r io.Reader, info *backend.ObjectInfo) error {
	bp := replyBufs.Get().(*[]byte)
	defer replyBufs.Put(bp)
	buf := (*bp)[:0]
	for len(buf) < cap(buf) {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	var fast backend.ObjectInfo
	if parseInfoJSON(buf, &fast) {
		*info = fast
		return nil
	}
	// Decoded apart, so that info does not escape on the fast path.
	slow := new(backend.ObjectInfo)
	err := json.NewDecoder(io.MultiReader(bytes.NewReader(buf), r)).Decode(slow)
	*info = *slow
	return err
}

// replyBufs hold put replies while they are parsed (the parser keeps no
// reference to them).
var replyBufs = sync.Pool{New: func() any { b := make([]byte, 1024); return &b }}

// parseInfoJSON parses {"key":value,...} where every key is one of
// ObjectInfo's JSON names, spelled exactly, and every value a plain number or
// a string without escapes; it reports false for anything else (then
// encoding/json decides).
func parseInfoJSON(b []byte, info *backend.ObjectInfo) bool {
	i := 0
	next := func(c byte) bool {
		if i < len(b) && b[i] == c {
			i++
			return true
		}
		return false
	}
	// quoted returns a string value, quotes included.
	quoted := func() ([]byte, bool) {
		start := i
		if !next('"') {
			return nil, false
		}
		for i < len(b) && b[i] != '"' {
			if c := b[i]; c == '\\' || c < 0x20 || c >= 0x80 {
				return nil, false
			}
			i++
		}
		if i == len(b) {
			return nil, false
		}
		i++
		return b[start:i], true
	}
	// num returns an integer value; past 18 digits, or out of [lo, hi], it
	// reports false (encoding/json then has the last word).
	num := func(lo, hi int64) (int64, bool) {
		neg := next('-')
		digits := i
		var n int64
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			n = n*10 + int64(b[i]-'0')
			i++
		}
		// JSON integers: no '+', no leading zeros, no fraction or exponent.
		if i == digits || i-digits > 18 || (b[digits] == '0' && i-digits > 1) {
			return 0, false
		}
		if neg {
			n = -n
		}
		return n, n >= lo && n <= hi
	}
	if !next('{') {
		return false
	}
	for first := true; ; first = false {
		if next('}') {
			break
		}
		if !first && !next(',') {
			return false
		}
		qkey, ok := quoted()
		if !ok || !next(':') {
			return false
		}
		switch string(qkey[1 : len(qkey)-1]) { // compared, not allocated
		case "id":
			var v []byte
			if v, ok = quoted(); ok {
				info.ID = backend.ID(v[1 : len(v)-1])
			}
		case "tier":
			var v []byte
			if v, ok = quoted(); ok {
				info.Tier = string(v[1 : len(v)-1])
			}
		case "created":
			var v []byte
			if v, ok = quoted(); ok {
				ok = info.Created.UnmarshalJSON(v) == nil
			}
		case "accessed":
			var v []byte
			if v, ok = quoted(); ok {
				ok = info.Accessed.UnmarshalJSON(v) == nil
			}
		case "size":
			info.Size, ok = num(math.MinInt64, math.MaxInt64)
		case "importance":
			var n int64
			n, ok = num(math.MinInt, math.MaxInt)
			info.Importance = int(n)
		case "pins":
			var n int64
			n, ok = num(math.MinInt, math.MaxInt)
			info.Pins = int(n)
		case "level":
			var n int64
			n, ok = num(0, math.MaxUint8)
			info.Level = levels.Level(n)
		case "checksum":
			var n int64
			n, ok = num(0, math.MaxUint32)
			info.Checksum = uint32(n)
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	for ; i < len(b); i++ { // the Decoder reads one value; blanks may follow
		if c := b[i]; c != ' ' && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}
