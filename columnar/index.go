package columnar

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/apache/arrow-go/v18/arrow"

	"distore/columnar/internal/arrowfb"
)

// The layout index (record batch metadata MetaLayout) lets a first
// selection skip loading record batches. Without it, learning where a
// column's buffers lie means loading the whole batch with arrow-go (every
// column's arrays), about 70 µs per batch of 32 columns. Write learns every
// column's template from its first encoding (arrow-go's own decoding, as a
// reader's) and stores each batch's in that batch's metadata in the second
// encoding. A reader finds the key through the generated FlatBuffers
// accessors (arrowfb) without copying, and decodes only the selected
// columns, a few hundred nanoseconds each. Buffer places are relative to the
// batch's body, which the second encoding does not change (only metadata
// differs).
//
// The value is our own framing, standard base64 (Arrow metadata values are
// strings) of:
//
//	header  version u8 (1), columns u32                        (LE)
//	table   columns+1 u32: where column c's entry starts; it ends where
//	        c+1's starts (empty: no template, e.g. a dictionary column:
//	        arrow-go learns the batch)
//	entry   crc u32: CRC-32C of (batch u32, c u32, the node)
//	        node
//	node    uvarint length, null count, offset, buffers (≤ maxIndexBuffers);
//	        per buffer uvarint body offset and uvarint length+1 (0: none);
//	        uvarint children, then each child's node (types are the
//	        parent type's fields; at most maxIndexDepth deep)
//
// A reader base64-decodes only the pieces it needs (4 characters hold 3
// bytes), checks each entry's CRC and every buffer against the batch's body,
// so a damaged index is ErrCorrupt and never a wrong buffer. The columns'
// checksums are MetaColumnCRC's, beside it in the same metadata.

// MetaLayout (record batch): the layout index of the batch, in a file
// written by Write without compression (see index.go).
const MetaLayout = "distore.columnar.layout"

const (
	indexVersion    = 1
	indexHeaderLen  = 5
	maxIndexEntry   = 1 << 16 // bytes of one column's entry
	maxIndexDepth   = 32
	maxIndexBuffers = 16
)

var indexEncoding = base64.StdEncoding

// encodeIndex is the MetaLayout value of batch i (block b): the templates
// of its columns (absolute file ranges; nil: none).
func encodeIndex(i int, b block, cols []*arrayTmpl) string {
	n := len(cols)
	blob := make([]byte, indexHeaderLen+4*(n+1), indexHeaderLen+4*(n+1)+40*n)
	blob[0] = indexVersion
	binary.LittleEndian.PutUint32(blob[1:], uint32(n))
	table := indexHeaderLen
	for c, t := range cols {
		at := len(blob)
		binary.LittleEndian.PutUint32(blob[table+4*c:], uint32(at))
		if t == nil {
			continue
		}
		blob = append(blob, make([]byte, 4)...)
		blob = t.appendNode(blob, b.bodyStart())
		if len(blob)-at > maxIndexEntry {
			blob = blob[:at] // no template for this one
			continue
		}
		binary.LittleEndian.PutUint32(blob[at:], entryCRC(i, c, blob[at+4:]))
	}
	binary.LittleEndian.PutUint32(blob[table+4*n:], uint32(len(blob)))
	return indexEncoding.EncodeToString(blob)
}

// appendNode appends t's node with buffer places relative to body.
func (t *arrayTmpl) appendNode(dst []byte, body int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(t.length))
	dst = binary.AppendUvarint(dst, uint64(t.nulls))
	dst = binary.AppendUvarint(dst, uint64(t.offset))
	dst = binary.AppendUvarint(dst, uint64(len(t.bufs)))
	for _, r := range t.bufs {
		if r.n < 0 {
			dst = binary.AppendUvarint(dst, 0)
			dst = binary.AppendUvarint(dst, 0)
			continue
		}
		off := r.off - body
		if r.n == 0 {
			off = 0
		}
		dst = binary.AppendUvarint(dst, uint64(off))
		dst = binary.AppendUvarint(dst, uint64(r.n)+1)
	}
	dst = binary.AppendUvarint(dst, uint64(len(t.children)))
	for _, c := range t.children {
		dst = c.appendNode(dst, body)
	}
	return dst
}

// indexable reports whether t's types are the ones a reader derives from
// the top-level type (children from the parent's fields) and it has no
// dictionary: only those templates go into the index.
func (t *arrayTmpl) indexable(typ arrow.DataType, depth int) bool {
	if t == nil || t.dict != nil || depth > maxIndexDepth || len(t.bufs) > maxIndexBuffers ||
		!arrow.TypeEqual(t.typ, typ) || t.typ.ID() == arrow.DICTIONARY {
		return false
	}
	fields := childFields(typ)
	if len(fields) != len(t.children) {
		return false
	}
	for k, c := range t.children {
		if !c.indexable(fields[k].Type, depth+1) {
			return false
		}
	}
	return true
}

// childFields are the fields of typ's children (none if not nested).
func childFields(typ arrow.DataType) []arrow.Field {
	if nt, ok := typ.(arrow.NestedType); ok {
		return nt.Fields()
	}
	return nil
}

func entryCRC(batch, col int, rest []byte) uint32 {
	var ids [8]byte
	binary.LittleEndian.PutUint32(ids[:], uint32(batch))
	binary.LittleEndian.PutUint32(ids[4:], uint32(col))
	return crc32.Update(crc32.Update(0, castagnoli, ids[:]), castagnoli, rest)
}

// layoutIndex is a batch's MetaLayout value, decoded piece by piece.
type layoutIndex struct {
	enc   []byte // the value, copied out of the batch's metadata block
	size  int    // bytes of the decoded blob
	batch int
	cols  int
}

var errIndex = errors.New("layout index")

// batchIndex finds MetaLayout and MetaColumnCRC in the metadata block meta
// of batch i (ncols columns; the block's vectors checked by
// checkMessageVectors) and checks the index's header: a nil index when the
// batch has none; nil checksums when it has none.
func batchIndex(meta []byte, i, ncols int) (x *layoutIndex, crcs []uint32, err error) {
	defer func() {
		if p := recover(); p != nil {
			x, crcs, err = nil, nil, fmt.Errorf("record batch %d: message metadata does not decode: %v", i, p)
		}
	}()
	msg := arrowfb.GetRootAsMessage(messageFlatbuffer(meta), 0)
	var kv arrowfb.KeyValue
	var index []byte
	for j := range msg.CustomMetadataLength() {
		if !msg.CustomMetadata(&kv, j) {
			continue
		}
		switch string(kv.Key()) {
		case MetaLayout:
			// A copy: the layout outlives the bytes it was read from (a
			// ranged read's private mapping, or an object the memory tier
			// may move), and later selections decode more columns from it.
			index = bytes.Clone(kv.Value())
		case MetaColumnCRC:
			if crcs, err = parseCRCList(string(kv.Value()), ncols); err != nil {
				return nil, nil, fmt.Errorf("record batch %d: %w", i, err)
			}
		}
	}
	if index == nil {
		return nil, nil, nil
	}
	if x, err = parseIndex(index, i, ncols); err != nil {
		return nil, nil, err
	}
	return x, crcs, nil
}

// parseIndex checks the header of batch i's MetaLayout value enc.
func parseIndex(enc []byte, i, ncols int) (*layoutIndex, error) {
	if len(enc)%4 != 0 {
		return nil, fmt.Errorf("%w of record batch %d: %d characters is not base64", errIndex, i, len(enc))
	}
	size := len(enc) / 4 * 3
	for k := len(enc) - 1; k >= 0 && k >= len(enc)-2 && enc[k] == '='; k-- {
		size--
	}
	x := &layoutIndex{enc: enc, size: size, batch: i}
	h, err := x.bytes(0, indexHeaderLen)
	if err != nil {
		return nil, err
	}
	if h[0] != indexVersion {
		return nil, fmt.Errorf("%w of record batch %d: version %d, want %d", errIndex, i, h[0], indexVersion)
	}
	if x.cols = int(binary.LittleEndian.Uint32(h[1:])); x.cols != ncols {
		return nil, fmt.Errorf("%w of record batch %d: %d columns, the schema has %d", errIndex, i, x.cols, ncols)
	}
	if indexHeaderLen+4*(ncols+1) > size {
		return nil, fmt.Errorf("%w of record batch %d: %d columns in %d bytes", errIndex, i, ncols, size)
	}
	return x, nil
}

// bytes decodes bytes [off, off+n) of the blob.
func (x *layoutIndex) bytes(off, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+n > x.size {
		return nil, fmt.Errorf("%w of record batch %d: bytes [%d, %d) of %d", errIndex, x.batch, off, off+n, x.size)
	}
	c0, c1 := off/3*4, min((off+n+2)/3*4, len(x.enc))
	buf := make([]byte, indexEncoding.DecodedLen(c1-c0))
	k, err := indexEncoding.Decode(buf, x.enc[c0:c1])
	skip := off % 3
	if err != nil || skip+n > k {
		return nil, fmt.Errorf("%w of record batch %d: bytes [%d, %d) do not decode: %v", errIndex, x.batch, off, off+n, err)
	}
	return buf[skip : skip+n], nil
}

// template decodes the entry of column c (of type typ) of a batch of rows
// rows whose body is body, and counts its nodes: nil when the index has none.
func (x *layoutIndex) template(c int, typ arrow.DataType, rows int64, body byteRange) (*arrayTmpl, int, error) {
	tb, err := x.bytes(indexHeaderLen+4*c, 8)
	if err != nil {
		return nil, 0, err
	}
	start, end := int(binary.LittleEndian.Uint32(tb)), int(binary.LittleEndian.Uint32(tb[4:]))
	if start == end {
		return nil, 0, nil
	}
	if start > end || end-start < 5 || end-start > maxIndexEntry {
		return nil, 0, fmt.Errorf("%w of record batch %d: column %d's entry is [%d, %d)", errIndex, x.batch, c, start, end)
	}
	e, err := x.bytes(start, end-start)
	if err != nil {
		return nil, 0, err
	}
	if got, want := entryCRC(x.batch, c, e[4:]), binary.LittleEndian.Uint32(e); got != want {
		return nil, 0, fmt.Errorf("%w of record batch %d: column %d's entry: CRC-32C %08x, written %08x", errIndex, x.batch, c, got, want)
	}
	d := nodeDecoder{rest: e[4:], body: body}
	t := d.node(typ, 0)
	if d.err == nil && len(d.rest) != 0 {
		d.err = fmt.Errorf("%d bytes after the node", len(d.rest))
	}
	if d.err == nil && int64(t.length) != rows {
		d.err = fmt.Errorf("%d rows, the schema says %d", t.length, rows)
	}
	if d.err != nil {
		return nil, 0, fmt.Errorf("%w of record batch %d: column %d: %v", errIndex, x.batch, c, d.err)
	}
	return t, d.nodes, nil
}

// nodeDecoder reads nodes; the first error sticks.
type nodeDecoder struct {
	rest  []byte
	body  byteRange
	nodes int
	err   error
}

func (d *nodeDecoder) uint(limit uint64, what string) int {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.rest)
	switch {
	case n <= 0:
		d.err = fmt.Errorf("%s does not decode", what)
	case v > limit:
		d.err = fmt.Errorf("%s %d is over %d", what, v, limit)
	default:
		d.rest = d.rest[n:]
		return int(v)
	}
	return 0
}

func (d *nodeDecoder) node(typ arrow.DataType, depth int) *arrayTmpl {
	if depth > maxIndexDepth {
		d.err = fmt.Errorf("nested deeper than %d", maxIndexDepth)
		return nil
	}
	d.nodes++
	t := &arrayTmpl{typ: typ}
	t.length = d.uint(1<<62, "length")
	t.nulls = d.uint(uint64(t.length), "null count")
	t.offset = d.uint(1<<62, "offset")
	nbufs := d.uint(maxIndexBuffers, "buffer count")
	for range nbufs {
		off, n := d.uint(uint64(d.body.n), "buffer offset"), d.uint(uint64(d.body.n)+1, "buffer length")
		if d.err != nil {
			return nil
		}
		switch {
		case n == 0:
			t.bufs = append(t.bufs, byteRange{0, -1})
		case n == 1:
			t.bufs = append(t.bufs, byteRange{0, 0})
		case int64(off)+int64(n-1) > d.body.n:
			d.err = fmt.Errorf("buffer [%d, %d) is outside its batch body of %d bytes", off, off+n-1, d.body.n)
			return nil
		default:
			t.bufs = append(t.bufs, byteRange{d.body.off + int64(off), int64(n - 1)})
		}
	}
	fields := childFields(typ)
	if nc := d.uint(uint64(len(fields)), "children"); d.err == nil && nc != len(fields) {
		d.err = fmt.Errorf("%d children for type %s", nc, typ)
	}
	for _, f := range fields {
		if d.err != nil {
			return nil
		}
		t.children = append(t.children, d.node(f.Type, depth+1))
	}
	if d.err != nil {
		return nil
	}
	return t
}

// size is the bytes of t's buffers and its children's (dataSize).
func (t *arrayTmpl) size() int64 {
	var n int64
	for _, r := range t.bufs {
		n += max(r.n, 0)
	}
	for _, c := range t.children {
		n += c.size()
	}
	return n
}
