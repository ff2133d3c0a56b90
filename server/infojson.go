package server

import (
	"encoding/json"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"distore/backend"
)

// writeInfo writes info as json.NewEncoder(w).Encode does, without its
// reflection: a put answers with it, and on small objects the encoder cost
// as much as the store's Put.
func writeInfo(w io.Writer, info backend.ObjectInfo) error {
	bp := infoBufs.Get().(*[]byte)
	defer infoBufs.Put(bp)
	b, err := appendInfoJSON((*bp)[:0], info)
	if err != nil {
		return err
	}
	*bp = b[:0] // keep what append grew
	_, err = w.Write(b)
	return err
}

// appendInfoJSON appends what json.NewEncoder(w).Encode(info) writes:
// appendInfo's, or encoding/json's where appendInfo cannot.
func appendInfoJSON(b []byte, info backend.ObjectInfo) ([]byte, error) {
	if out, ok := appendInfo(b, info); ok {
		return out, nil
	}
	enc, err := json.Marshal(info)
	if err != nil {
		return b, err
	}
	return append(append(b, enc...), '\n'), nil
}

// infoBufs hold the JSON of a put's reply while it is written.
var infoBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendInfo appends info's JSON and a newline, byte for byte what
// encoding/json's Encoder writes; ok is false where a value would need what
// only encoding/json does (escapes, times outside RFC 3339).
func appendInfo(b []byte, info backend.ObjectInfo) ([]byte, bool) {
	var ok1, ok2, ok3, ok4 bool
	b = append(b, `{"id":`...)
	b, ok1 = appendPlainString(b, string(info.ID))
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, info.Size, 10)
	b = append(b, `,"level":`...)
	b = strconv.AppendUint(b, uint64(info.Level), 10)
	b = append(b, `,"tier":`...)
	b, ok2 = appendPlainString(b, info.Tier)
	b = append(b, `,"importance":`...)
	b = strconv.AppendInt(b, int64(info.Importance), 10)
	b = append(b, `,"pins":`...)
	b = strconv.AppendInt(b, int64(info.Pins), 10)
	b = append(b, `,"created":`...)
	b, ok3 = appendTime(b, info.Created)
	b = append(b, `,"accessed":`...)
	b, ok4 = appendTime(b, info.Accessed)
	b = append(b, `,"checksum":`...)
	b = strconv.AppendUint(b, uint64(info.Checksum), 10)
	b = append(b, "}\n"...)
	return b, ok1 && ok2 && ok3 && ok4
}

// appendTime appends t as its MarshalJSON does (its text, quoted), without
// MarshalJSON's allocation.
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	out, err := t.AppendText(append(b, '"'))
	if err != nil {
		return b, false
	}
	return append(out, '"'), true
}

// appendPlainString quotes s if no byte of it needs escaping in JSON
// (encoding/json escapes ", \, control characters, <, >, & and more).
func appendPlainString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}
