package columnar

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"distore/columnar/internal/arrowfb"
)

// How the byte ranges of a column are found without a hand-written Arrow
// parser: the file is laid out in a mapping as large as the object in which
// only fetched ranges hold the object's bytes (the rest reads as zeros).
// arrow-go's mapped file reader then loads a record batch from it; its buffers
// are slices of the mapping, so each buffer's address minus the mapping's base
// is the buffer's offset in the file, and its length is the buffer's length.
// The metadata that decides those slices is real (fetched); only the body is
// zeros at that point, which every uncompressed layout decodes (zero offsets,
// zero indices). After the selected ranges are fetched over the zeros the
// batch is loaded again: selected columns see the real bytes, the others are
// views of zeros and are dropped.
//
// A compressed buffer is decompressed by arrow-go into new memory, so its
// place is not visible this way: from a compressed file the reader fetches the
// whole bodies of the batches holding the selected rows (see docs/columnar.md).

// arrowMagic ends (and starts) every Arrow IPC file; trailerLen is the footer
// length (int32) and the magic after the footer.
var arrowMagic = []byte("ARROW1")

const trailerLen = 4 + 6

// minFileSize is the smallest Arrow IPC file: magic and padding, a footer
// length, magic.
const minFileSize = 8 + trailerLen

// block is one entry of the footer's index: a message at offset, its
// metadata (with prefix) of meta bytes, then body bytes.
type block struct {
	offset int64
	meta   int64
	body   int64
}

func (b block) bodyStart() int64 { return b.offset + b.meta }
func (b block) end() int64       { return b.offset + b.meta + b.body }

// byteRange is [off, off+n) of the file.
type byteRange struct{ off, n int64 }

func (r byteRange) end() int64 { return r.off + r.n }

// footerLength checks the trailer (the last 10 bytes of a file of size bytes)
// and returns the footer's length. A missing magic is ErrNotArrow.
func footerLength(trailer []byte, size int64) (int64, error) {
	if size < minFileSize || len(trailer) != trailerLen || !bytes.Equal(trailer[4:], arrowMagic) {
		return 0, ErrNotArrow
	}
	n := int64(binary.LittleEndian.Uint32(trailer[:4]))
	if n <= 0 || n+trailerLen+8 > size {
		return 0, fmt.Errorf("footer length %d does not fit a file of %d bytes", n, size)
	}
	return n, nil
}

// footerBlocks reads the dictionary and record batch blocks of the footer
// (the last footerLen+10 bytes end at size) and checks each lies inside the
// file before the footer, 8-byte aligned.
func footerBlocks(footer []byte, size int64) (dicts, batches []block, err error) {
	defer func() {
		if p := recover(); p != nil {
			dicts, batches, err = nil, nil, fmt.Errorf("footer does not decode: %v", p)
		}
	}()
	if err := checkFooterVectors(footer); err != nil {
		return nil, nil, err
	}
	limit := size - int64(len(footer)) - trailerLen
	fb := arrowfb.GetRootAsFooter(footer, 0)
	read := func(n int, at func(*arrowfb.Block, int) bool, what string) ([]block, error) {
		if n < 0 || int64(n)*24 > int64(len(footer)) {
			return nil, fmt.Errorf("footer claims %d %s blocks", n, what)
		}
		out := make([]block, n)
		var fbb arrowfb.Block
		for i := range out {
			if !at(&fbb, i) {
				return nil, fmt.Errorf("footer %s block %d missing", what, i)
			}
			b := block{fbb.Offset(), int64(fbb.MetaDataLength()), fbb.BodyLength()}
			if b.offset < 8 || b.meta < 8 || b.body < 0 || b.offset%8 != 0 || b.meta%8 != 0 || b.body%8 != 0 ||
				b.body > limit || b.meta > limit || b.offset > limit-b.meta-b.body {
				return nil, fmt.Errorf("footer %s block %d (offset %d, metadata %d, body %d) is not inside the file of %d bytes",
					what, i, b.offset, b.meta, b.body, size)
			}
			out[i] = b
		}
		return out, nil
	}
	if dicts, err = read(fb.DictionariesLength(), fb.Dictionaries, "dictionary"); err != nil {
		return nil, nil, err
	}
	batches, err = read(fb.RecordBatchesLength(), fb.RecordBatches, "record batch")
	return dicts, batches, err
}

// openFileReader runs arrow-go's mapped file reader over data (a whole file
// or a sparse mapping of it), turning its panics on bad input into errors.
func openFileReader(data []byte) (fr *ipc.FileReader, err error) {
	defer func() {
		if p := recover(); p != nil {
			fr, err = nil, fmt.Errorf("arrow/ipc: %v", p)
		}
	}()
	return ipc.NewMappedFileReader(data, ipc.WithAllocator(boundedAllocator{memory.DefaultAllocator, maxAlloc(int64(len(data)))}))
}

// maxAlloc bounds one allocation made while reading a file of size bytes.
// arrow-go allocates a decompressed buffer by the length its 8-byte prefix
// claims; a damaged prefix could ask for terabytes. No buffer of a sane file
// decompresses to more than 64 times the file (plus a margin for small
// files of very compressible data).
func maxAlloc(size int64) int {
	return int(min(64*size+256<<20, 1<<40))
}

// boundedAllocator refuses (panics, which the callers turn into ErrCorrupt)
// an allocation larger than max.
type boundedAllocator struct {
	memory.Allocator
	max int
}

func (a boundedAllocator) Allocate(n int) []byte {
	if n > a.max {
		panic(fmt.Sprintf("a buffer of %d bytes is larger than this file can hold (%d)", n, a.max))
	}
	return a.Allocator.Allocate(n)
}

func (a boundedAllocator) Reallocate(n int, b []byte) []byte {
	if n > a.max {
		panic(fmt.Sprintf("a buffer of %d bytes is larger than this file can hold (%d)", n, a.max))
	}
	return a.Allocator.Reallocate(n, b)
}

// batchLoads counts recordAt calls (for the tests: a select the layout
// index serves loads no batch).
var batchLoads atomic.Int64

// recordAt loads batch i (block b of data), turning panics into errors.
func recordAt(fr *ipc.FileReader, data []byte, b block, i int) (rec arrow.RecordBatch, err error) {
	batchLoads.Add(1)
	if err := checkMessageVectors(data[b.offset : b.offset+b.meta]); err != nil {
		return nil, fmt.Errorf("record batch %d: %w", i, err)
	}
	defer func() {
		if p := recover(); p != nil {
			rec, err = nil, fmt.Errorf("arrow/ipc: record batch %d: %v", i, p)
		}
	}()
	return fr.RecordBatchAt(i)
}

// errOutside: a buffer is not a slice of the mapping (arrow-go decompressed
// or allocated it), so its place in the file is unknown in this mode.
var errOutside = errors.New("buffer is not a slice of the file")

// bufferRange returns where b (not empty) lies in the file data: errOutside
// if it is not a slice of data, an error if it is not inside its batch's
// body.
func bufferRange(b []byte, data []byte, body byteRange) (byteRange, error) {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < base || p >= base+uintptr(len(data)) {
		return byteRange{}, errOutside
	}
	r := byteRange{int64(p - base), int64(len(b))}
	if r.off < body.off || r.end() > body.end() {
		return r, fmt.Errorf("buffer [%d, %d) is outside its batch body [%d, %d)", r.off, r.end(), body.off, body.end())
	}
	return r, nil
}

// columnRanges appends the file ranges of d's buffers and its children's
// (not its dictionary's: dictionary batches are read whole).
func columnRanges(dst []byteRange, d arrow.ArrayData, data []byte, body byteRange) ([]byteRange, error) {
	for _, buf := range d.Buffers() {
		if buf == nil || buf.Len() == 0 {
			continue
		}
		r, err := bufferRange(buf.Bytes(), data, body)
		if err != nil {
			return dst, err
		}
		dst = append(dst, r)
	}
	for _, c := range d.Children() {
		var err error
		if dst, err = columnRanges(dst, c, data, body); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// columnCRC is the checksum Write stores for one column of one record
// batch: the CRC-32C of the field's name and type, then, through the arrays
// and their children (and dictionary), each array's length, null count and
// offset and the bytes of its buffers (uncompressed: the file's bytes). So a
// damaged buffer, a damaged field in the footer's schema, a damaged length in
// the batch's metadata or a damaged dictionary all change it.
func columnCRC(field arrow.Field, d arrow.ArrayData) uint32 {
	c := crc32.Update(0, castagnoli, []byte(field.Name+"\x00"+field.Type.String()+"\x00"+strconv.FormatBool(field.Nullable)))
	return dataCRC(c, d)
}

func dataCRC(c uint32, d arrow.ArrayData) uint32 {
	var b [24]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(d.Len()))
	binary.LittleEndian.PutUint64(b[8:], uint64(d.NullN()))
	binary.LittleEndian.PutUint64(b[16:], uint64(d.Offset()))
	c = crc32.Update(c, castagnoli, b[:])
	for _, buf := range d.Buffers() {
		if buf != nil {
			c = crc32.Update(c, castagnoli, buf.Bytes())
		}
	}
	for _, ch := range d.Children() {
		c = dataCRC(c, ch)
	}
	if d.DataType().ID() == arrow.DICTIONARY {
		c = dataCRC(c, d.Dictionary())
	}
	return c
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// parseCRCs reads MetaColumnCRC; nil when absent.
func parseCRCs(md arrow.Metadata, ncols int) ([]uint32, error) {
	i := md.FindKey(MetaColumnCRC)
	if i < 0 {
		return nil, nil
	}
	return parseCRCList(md.Values()[i], ncols)
}

// parseCRCList reads a MetaColumnCRC value of ncols checksums.
func parseCRCList(v string, ncols int) ([]uint32, error) {
	parts := strings.Split(v, ",")
	if len(parts) != ncols {
		return nil, fmt.Errorf("%s has %d values for %d columns", MetaColumnCRC, len(parts), ncols)
	}
	out := make([]uint32, ncols)
	for j, p := range parts {
		v, err := strconv.ParseUint(p, 16, 32)
		if err != nil {
			return nil, fmt.Errorf("%s value %q: %v", MetaColumnCRC, p, err)
		}
		out[j] = uint32(v)
	}
	return out, nil
}

// parseBatchRows reads MetaBatchRows; nil when absent.
func parseBatchRows(md arrow.Metadata, nbatches int) ([]int64, error) {
	i := md.FindKey(MetaBatchRows)
	if i < 0 {
		return nil, nil
	}
	v := md.Values()[i]
	var parts []string
	if v != "" {
		parts = strings.Split(v, ",")
	}
	if len(parts) != nbatches {
		return nil, fmt.Errorf("%s has %d values for %d record batches", MetaBatchRows, len(parts), nbatches)
	}
	out := make([]int64, nbatches)
	for j, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s value %q is not a row count", MetaBatchRows, p)
		}
		out[j] = n
	}
	return out, nil
}

// codecOf reads MetaCodec: "" when absent.
func codecOf(md arrow.Metadata) Compression {
	if i := md.FindKey(MetaCodec); i >= 0 {
		return Compression(md.Values()[i])
	}
	return ""
}

// coalesce sorts ranges and merges those less than gap apart, then splits
// the merged ones into pieces of at most maxPiece bytes (fetched in parallel).
func coalesce(rs []byteRange, gap, maxPiece int64) []byteRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b byteRange) int { return int(min(max(a.off-b.off, -1), 1)) })
	var merged []byteRange
	for _, r := range rs {
		if r.n <= 0 {
			continue
		}
		if k := len(merged) - 1; k >= 0 && r.off <= merged[k].end()+gap {
			if e := r.end(); e > merged[k].end() {
				merged[k].n = e - merged[k].off
			}
			continue
		}
		merged = append(merged, r)
	}
	var out []byteRange
	for _, r := range merged {
		for r.n > maxPiece {
			out = append(out, byteRange{r.off, maxPiece})
			r = byteRange{r.off + maxPiece, r.n - maxPiece}
		}
		out = append(out, r)
	}
	return out
}

// have is a set of fetched ranges, kept sorted and merged.
type have []byteRange

// add records r as fetched.
func (h *have) add(r byteRange) {
	*h = coalesce(append(*h, r), 0, 1<<62)
}

// missing returns the parts of r not fetched yet.
func (h have) missing(r byteRange) []byteRange {
	var out []byteRange
	at := r.off
	for _, g := range h {
		if g.end() <= at || g.off >= r.end() {
			continue
		}
		if g.off > at {
			out = append(out, byteRange{at, g.off - at})
		}
		at = max(at, g.end())
	}
	if at < r.end() {
		out = append(out, byteRange{at, r.end() - at})
	}
	return out
}

// maxNesting bounds the depth of nested fields checked (arrow-go's own limit).
const maxNesting = 64

// checkFooterVectors rejects a footer whose schema claims more fields,
// children or metadata entries than its bytes can hold: arrow-go allocates
// by those counts before reading the entries, so a damaged count would ask
// for gigabytes.
func checkFooterVectors(footer []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("footer does not decode: %v", p)
		}
	}()
	limit := len(footer) / 4 // each entry is at least a 4-byte offset
	fb := arrowfb.GetRootAsFooter(footer, 0)
	if n := fb.CustomMetadataLength(); n > limit {
		return fmt.Errorf("footer claims %d metadata entries in %d bytes", n, len(footer))
	}
	s := fb.Schema(nil)
	if s == nil {
		return errors.New("footer has no schema")
	}
	if s.FieldsLength() > limit || s.CustomMetadataLength() > limit || s.FeaturesLength() > limit {
		return fmt.Errorf("footer schema claims %d fields, %d metadata entries in %d bytes",
			s.FieldsLength(), s.CustomMetadataLength(), len(footer))
	}
	budget := limit // fields visited in all
	var walk func(f *arrowfb.Field, depth int) error
	walk = func(f *arrowfb.Field, depth int) error {
		if budget--; budget < 0 || depth > maxNesting {
			return errors.New("footer schema nests too many fields")
		}
		if f.ChildrenLength() > limit || f.CustomMetadataLength() > limit {
			return fmt.Errorf("footer field claims %d children, %d metadata entries in %d bytes",
				f.ChildrenLength(), f.CustomMetadataLength(), len(footer))
		}
		var c arrowfb.Field
		for j := range f.ChildrenLength() {
			if !f.Children(&c, j) {
				return errors.New("footer field child missing")
			}
			if err := walk(&c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	var f arrowfb.Field
	for j := range s.FieldsLength() {
		if !s.Fields(&f, j) {
			return errors.New("footer field missing")
		}
		if err := walk(&f, 0); err != nil {
			return err
		}
	}
	return nil
}

// checkMessageVectors is checkFooterVectors for a message's metadata block
// (its continuation and length prefix included).
func checkMessageVectors(meta []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("message metadata does not decode: %v", p)
		}
	}()
	if len(meta) < 8 {
		return errors.New("message metadata too short")
	}
	fb := messageFlatbuffer(meta)
	if n := arrowfb.GetRootAsMessage(fb, 0).CustomMetadataLength(); n > len(fb)/4 {
		return fmt.Errorf("message claims %d metadata entries in %d bytes", n, len(fb))
	}
	return nil
}

// messageFlatbuffer is the FlatBuffers message in a metadata block of at
// least 8 bytes: after the continuation marker and length, or after the
// length alone (the format before Arrow 0.15 had no marker).
func messageFlatbuffer(meta []byte) []byte {
	if binary.LittleEndian.Uint32(meta) != 0xFFFFFFFF {
		return meta[4:]
	}
	return meta[8:]
}
