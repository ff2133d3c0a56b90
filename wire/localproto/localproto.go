// Package localproto is the binary framing of distore's local socket
// protocol, shared by the server and the Go client (the Python client in
// python/distore/_proto.py follows docs/local.md, which this package defines).
//
// Every message is one frame: a fixed 8-byte header, then a payload.
//
//	offset size  field
//	0      4     payload length, little-endian uint32, at most MaxPayload
//	4      1     op (a request) or reply kind
//	5      3     zero
//
// The payload is a sequence of fields in the order each op defines: u8, u32,
// u64 (little-endian), strings and byte strings (a uint32 length, then the
// bytes). A decoder never reads past the payload and reports a truncated or
// oversized payload as an error, never a panic. Requests are answered in
// order, one reply per request, except OpRelease and OpWritten, which have
// none, and OpSelect and OpSchema, whose reply is streamed: ReplyChunk
// frames, then ReplyOK (or ReplyError, the chunks then void).
package localproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version is the protocol version a Hello carries.
const Version = 1

// HeaderSize is the size of a frame header.
const HeaderSize = 8

// Limits.
const (
	// MaxPayload is the largest payload of a frame; a header announcing more
	// is a protocol error and the connection is closed.
	MaxPayload = 128 << 10
	// MaxInline is the largest object a PutInline carries in its frame, and
	// the largest chunk of an OpWrite.
	MaxInline = 64 << 10
	// MaxString is the longest string field (IDs, codes, messages, tiers).
	MaxString = 4096
	// MaxChunk is the most bytes one ReplyChunk carries.
	MaxChunk = 64 << 10
)

// Ops (requests) and reply kinds share one byte.
const (
	OpHello     byte = 1  // u32 version -> ReplyHello + the arena's read-only fd
	OpMapWrite  byte = 2  // (nothing) -> ReplyOK + the arena's writable fd
	OpGet       byte = 3  // str id -> ReplyObject
	OpRelease   byte = 4  // u64 ref -> no reply
	OpCreate    byte = 5  // str id, u64 size, u64 importance -> ReplyCreated
	OpWrite     byte = 6  // u64 handle, bytes data -> ReplyOK (for a put not in the mapping)
	OpSeal      byte = 7  // u64 handle, u32 checksum (0: none) -> ReplyInfo
	OpAbort     byte = 8  // u64 handle -> ReplyOK
	OpPutInline byte = 9  // str id, u64 importance, u32 checksum, bytes data -> ReplyInfo
	OpDelete    byte = 10 // str id -> ReplyOK
	OpPin       byte = 11 // str id, u8 durable -> ReplyOK
	OpUnpin     byte = 12 // str id, u8 durable -> ReplyOK
	OpPrefetch  byte = 13 // str id -> ReplyOK
	OpInfo      byte = 14 // str id -> ReplyInfo
	// Prefetch groups (the cluster's): ErrUnavailable where the server has none.
	OpRegisterGroup byte = 15 // str group -> ReplyOK
	OpSpread        byte = 16 // str group, str id -> ReplyOK: spread the object to the group's nodes
	// OpEpochs asks for the delete-epoch table (docs/local.md, "Cached
	// references"): a client that has it may serve a repeated get from a
	// reference it kept.
	OpEpochs byte = 17 // (nothing) -> ReplyOK u32 slots + the table's read-only fd
	// OpWritten says the first upto bytes of a put's room in the mapping
	// are written: the server checksums them while the client writes the
	// rest. An error shows at the seal.
	OpWritten byte = 18 // u64 handle, u64 upto -> no reply
	// OpPutRef is OpPutInline that also takes a reference to the object, as
	// a get would, when it landed in the memory tier: the client keeps it
	// for a get of its own put. The epoch is the ID's delete-epoch counter
	// read after the put and before the reference was taken.
	OpPutRef byte = 19 // as OpPutInline -> ReplyObject + u64 epoch, or ReplyInfo (no reference)
	// OpSelect reads columns and rows of an Arrow object (docs/columnar.md):
	// the reply is the selection as an Arrow IPC stream, in ReplyChunk frames
	// ended by ReplyOK (or by ReplyError, the stream then void). columns and
	// rows are as the HTTP query's ("a,c", "1000:2000"; "" for all).
	OpSelect byte = 20 // str id, str columns, str rows -> ReplyChunk..., ReplyOK
	// OpSchema is OpSelect of the schema alone (no column data read).
	OpSchema byte = 21 // str id -> ReplyChunk..., ReplyOK

	ReplyOK      byte = 64 // (nothing)
	ReplyError   byte = 65 // str code, str message, u64 requested, free, capacity, pinned
	ReplyHello   byte = 66 // u32 version, u64 arena size
	ReplyObject  byte = 67 // u64 ref, u64 offset, Info
	ReplyCreated byte = 68 // u64 handle, u64 offset (NoOffset: send OpWrite chunks), str id
	ReplyInfo    byte = 69 // Info
	ReplyChunk   byte = 70 // bytes: the next piece of a streamed reply (at most MaxChunk)
)

// NoOffset in a ReplyCreated says the object's room is not in the mapping
// (it landed in a lower tier): the client sends its bytes with OpWrite.
const NoOffset = ^uint64(0)

// OpName returns a name for op, for errors and logs.
func OpName(op byte) string {
	names := map[byte]string{OpHello: "hello", OpMapWrite: "map_write", OpGet: "get", OpRelease: "release",
		OpCreate: "create", OpWrite: "write", OpSeal: "seal", OpAbort: "abort", OpPutInline: "put",
		OpDelete: "delete", OpPin: "pin", OpUnpin: "unpin", OpPrefetch: "prefetch", OpInfo: "info",
		OpRegisterGroup: "register_group", OpSpread: "spread", OpEpochs: "epochs",
		OpWritten: "written", OpPutRef: "put", OpSelect: "select", OpSchema: "schema"}
	if n, ok := names[op]; ok {
		return n
	}
	return fmt.Sprintf("op%d", op)
}

// ErrProtocol is wrapped by every framing and decoding error.
var ErrProtocol = errors.New("local protocol error")

// Header is a decoded frame header.
type Header struct {
	Len uint32
	Op  byte
}

// ParseHeader decodes a frame header from the first HeaderSize bytes of b,
// checking the limits.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: frame header of %d bytes, want %d", ErrProtocol, len(b), HeaderSize)
	}
	h := Header{Len: binary.LittleEndian.Uint32(b), Op: b[4]}
	if b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return h, fmt.Errorf("%w: frame header bytes 5-7 must be zero", ErrProtocol)
	}
	if h.Len > MaxPayload {
		return h, fmt.Errorf("%w: frame payload of %d bytes exceeds the limit of %d", ErrProtocol, h.Len, MaxPayload)
	}
	return h, nil
}

// ReadFrame reads one frame from r into buf (grown as needed, up to
// HeaderSize+MaxPayload) and returns its op and payload, which aliases buf.
func ReadFrame(r io.Reader, buf []byte) (op byte, payload []byte, newBuf []byte, err error) {
	if cap(buf) < HeaderSize {
		buf = make([]byte, 0, 4096)
	}
	buf = buf[:HeaderSize]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, buf, err
	}
	h, err := ParseHeader(buf)
	if err != nil {
		return 0, nil, buf, err
	}
	n := HeaderSize + int(h.Len)
	if cap(buf) < n {
		nb := make([]byte, n)
		copy(nb, buf)
		buf = nb
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf[HeaderSize:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, buf, fmt.Errorf("%w: truncated frame: %w", ErrProtocol, err)
	}
	return h.Op, buf[HeaderSize:], buf, nil
}

// Encoder builds one frame. Start it with Begin, add fields, and take the
// bytes with Frame (which fills in the length).
type Encoder struct{ b []byte }

// Begin starts a frame with op, reusing the encoder's buffer.
func (e *Encoder) Begin(op byte) *Encoder {
	e.b = append(e.b[:0], 0, 0, 0, 0, op, 0, 0, 0)
	return e
}

// U8 appends a byte.
func (e *Encoder) U8(v byte) *Encoder { e.b = append(e.b, v); return e }

// U32 appends a little-endian uint32.
func (e *Encoder) U32(v uint32) *Encoder { e.b = binary.LittleEndian.AppendUint32(e.b, v); return e }

// U64 appends a little-endian uint64.
func (e *Encoder) U64(v uint64) *Encoder { e.b = binary.LittleEndian.AppendUint64(e.b, v); return e }

// I64 appends an int64 as its two's-complement uint64.
func (e *Encoder) I64(v int64) *Encoder { return e.U64(uint64(v)) }

// Str appends a string field, cut to MaxString bytes.
func (e *Encoder) Str(s string) *Encoder {
	if len(s) > MaxString {
		s = s[:MaxString]
	}
	e.U32(uint32(len(s)))
	e.b = append(e.b, s...)
	return e
}

// Bytes appends a byte-string field.
func (e *Encoder) Bytes(p []byte) *Encoder {
	e.U32(uint32(len(p)))
	e.b = append(e.b, p...)
	return e
}

// Frame returns the frame, its length filled in. It fails if the payload
// exceeds MaxPayload (a caller's bug: inline data is bounded by MaxInline).
func (e *Encoder) Frame() ([]byte, error) {
	n := len(e.b) - HeaderSize
	if n > MaxPayload {
		return nil, fmt.Errorf("%w: payload of %d bytes exceeds the limit of %d", ErrProtocol, n, MaxPayload)
	}
	binary.LittleEndian.PutUint32(e.b, uint32(n))
	return e.b, nil
}

// Decoder reads the fields of one payload. The first error sticks: later
// reads return zero values, and Err (or Done) reports it.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder returns a decoder over payload.
func NewDecoder(payload []byte) *Decoder { return &Decoder{b: payload} }

func (d *Decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = fmt.Errorf("%w: payload truncated reading %s (%d bytes wanted, %d left)", ErrProtocol, what, n, len(d.b))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

// U8 reads a byte.
func (d *Decoder) U8() byte {
	if p := d.take(1, "u8"); p != nil {
		return p[0]
	}
	return 0
}

// U32 reads a uint32.
func (d *Decoder) U32() uint32 {
	if p := d.take(4, "u32"); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

// U64 reads a uint64.
func (d *Decoder) U64() uint64 {
	if p := d.take(8, "u64"); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

// I64 reads an int64.
func (d *Decoder) I64() int64 { return int64(d.U64()) }

// Str reads a string field of at most MaxString bytes.
func (d *Decoder) Str() string {
	n := d.U32()
	if d.err == nil && n > MaxString {
		d.err = fmt.Errorf("%w: string of %d bytes exceeds the limit of %d", ErrProtocol, n, MaxString)
	}
	return string(d.take(int(min(n, MaxPayload+1)), "string"))
}

// Bytes reads a byte-string field; the result aliases the payload.
func (d *Decoder) Bytes() []byte {
	n := d.U32()
	return d.take(int(min(n, MaxPayload+1)), "bytes")
}

// Err returns the first decoding error.
func (d *Decoder) Err() error { return d.err }

// Done returns the first decoding error, or an error if bytes are left over.
func (d *Decoder) Done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d unexpected bytes after the fields", ErrProtocol, len(d.b))
	}
	return d.err
}
