package columnar

import (
	"container/list"
	"errors"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"distore/backend"
)

// What a selection learns from a file's footer and record batch metadata is
// kept per object, so that the next selection of the same object skips it:
// objects are immutable, and the key (ID, size, CRC-32C, creation time)
// changes when an ID is deleted and put again. A batch's layout is a template
// per column: the array headers arrow-go built (type, length, null count,
// offset, children, dictionary) with each buffer as a byte range of the file.
// A selection with a template builds the selected columns' arrays over the
// object's bytes (memory tier) or over the fetched ranges (other tiers)
// without reading metadata again and without building the other columns.
// Only files written by Write without compression get templates (their
// buffers are slices of the file); others take the general path.

// layoutCacheNodes bounds the array templates kept, all objects together
// (a template is about 200 bytes: some tens of MiB at most).
const layoutCacheNodes = 1 << 17

// layoutKey names one object's bytes.
type layoutKey struct {
	id       backend.ID
	size     int64
	checksum uint32
	created  int64
}

func keyOf(info backend.ObjectInfo) layoutKey {
	return layoutKey{info.ID, info.Size, info.Checksum, info.Created.UnixNano()}
}

// fileLayout is a file's footer, as checked by footerBlocks and arrow-go,
// and the templates of the batches loaded so far.
type fileLayout struct {
	size    int64
	schema  *arrow.Schema // with distore's keys
	dicts   []block
	batches []block
	rows    []int64

	mu     sync.Mutex
	loaded []*batchLayout // nil until the batch was loaded or indexed once
	nodes  int            // templates in loaded
}

// batchLayout is the templates of one batch's columns.
type batchLayout struct {
	cols []*arrayTmpl // nil: a buffer that is not a slice of the file
	crcs []uint32     // MetaColumnCRC; nil when absent
	size []int64      // bytes of each column's buffers (dictionary not counted)
	// index is the batch's layout index; cols were decoded from it, those
	// whose decoded is set. Both nil when arrow-go loaded the whole batch.
	index   *layoutIndex
	decoded []bool
}

// arrayTmpl is an array's header with its buffers as file ranges.
type arrayTmpl struct {
	typ                   arrow.DataType
	length, nulls, offset int
	bufs                  []byteRange // n < 0: no buffer
	children              []*arrayTmpl
	dict                  *arrayTmpl
}

// cacheable reports whether a file with this schema metadata gets templates.
func cacheable(md arrow.Metadata) bool {
	return md.FindKey(MetaBatchRows) >= 0 && codecOf(md) == None
}

// newLayout is the layout of a file whose footer blocks were checked and
// whose schema arrow-go read; rows must be the parsed MetaBatchRows.
func newLayout(size int64, schema *arrow.Schema, dicts, batches []block, rows []int64) *fileLayout {
	return &fileLayout{size: size, schema: schema, dicts: dicts, batches: batches, rows: rows,
		loaded: make([]*batchLayout, len(batches))}
}

// batch returns batch i's layout. Where the batch's metadata block (meta:
// nil when not fetched yet) has a layout index, the templates of columns
// idx are decoded from it; where it has none, or a column has no entry,
// templated(idx) is false and the caller loads the batch with arrow-go and
// learns it (which replaces what the index gave). nil: nothing known yet.
// grew: templates were decoded (the cache accounts for them again).
func (l *fileLayout) batch(i int, idx []int, meta []byte, tier string, id backend.ID) (bl *batchLayout, grew bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bl = l.loaded[i]
	if meta == nil || (bl != nil && bl.index == nil) || (bl != nil && bl.has(idx)) {
		return bl, false, nil
	}
	if bl == nil {
		if err := checkMessageVectors(meta); err != nil {
			return nil, false, corrupt("select", tier, id, "record batch %d: %v", i, err)
		}
		x, crcs, err := batchIndex(meta, i, l.schema.NumFields())
		if err != nil {
			return nil, false, corrupt("select", tier, id, "%v", err)
		}
		if x == nil {
			return nil, false, nil
		}
		n := l.schema.NumFields()
		bl = &batchLayout{index: x, cols: make([]*arrayTmpl, n), crcs: crcs, size: make([]int64, n), decoded: make([]bool, n)}
		l.loaded[i] = bl
	}
	b := l.batches[i]
	for _, c := range idx {
		if bl.decoded[c] {
			continue
		}
		t, nodes, err := bl.index.template(c, l.schema.Field(c).Type, l.rows[i], byteRange{b.bodyStart(), b.body})
		if err != nil {
			return nil, false, corrupt("select", tier, id, "%v", err)
		}
		if t != nil {
			bl.cols[c], bl.size[c] = t, t.size()
			l.nodes += nodes
		}
		bl.decoded[c] = true
	}
	return bl, true, nil
}

// has reports whether the columns idx were decoded from the index.
func (bl *batchLayout) has(idx []int) bool {
	for _, c := range idx {
		if !bl.decoded[c] {
			return false
		}
	}
	return true
}

// learn makes batch i's layout from rec, loaded by arrow-go over base (the
// file's bytes, or a mapping of it with only the metadata fetched: buffer
// places depend on the metadata only). It checks the row count and that
// every buffer lies in the batch's body; a damaged file is ErrCorrupt.
func (l *fileLayout) learn(i int, rec arrow.RecordBatch, base []byte, tier string, id backend.ID) (*batchLayout, error) {
	if rec.NumRows() != l.rows[i] {
		return nil, corrupt("select", tier, id, "record batch %d has %d rows, the schema says %d", i, rec.NumRows(), l.rows[i])
	}
	bl := &batchLayout{cols: make([]*arrayTmpl, rec.NumCols()), size: make([]int64, rec.NumCols())}
	if rm, ok := rec.(arrow.RecordBatchWithMetadata); ok {
		var err error
		if bl.crcs, err = parseCRCs(rm.Metadata(), int(rec.NumCols())); err != nil {
			return nil, corrupt("select", tier, id, "record batch %d: %v", i, err)
		}
	}
	b := l.batches[i]
	body := byteRange{b.bodyStart(), b.body}
	nodes := 0
	for c, col := range rec.Columns() {
		t, err := newTemplate(col.Data(), base, body, l.dicts, &nodes)
		if err != nil {
			return nil, corrupt("select", tier, id, "record batch %d column %d: %v", i, c, err)
		}
		bl.cols[c] = t
		bl.size[c] = dataSize(col.Data())
	}
	l.mu.Lock()
	if old := l.loaded[i]; old == nil || old.index != nil {
		l.loaded[i] = bl
		l.nodes += nodes
	} else {
		bl = l.loaded[i]
	}
	l.mu.Unlock()
	return bl, nil
}

// newTemplate records d with its buffers as ranges of base. Buffers must
// lie in body; a dictionary's in a dictionary batch's body. A buffer that is
// not a slice of base gives a nil template (no error): arrow-go made it.
func newTemplate(d arrow.ArrayData, base []byte, body byteRange, dicts []block, nodes *int) (*arrayTmpl, error) {
	*nodes++
	t := &arrayTmpl{typ: d.DataType(), length: d.Len(), nulls: d.NullN(), offset: d.Offset()}
	for _, buf := range d.Buffers() {
		switch {
		case buf == nil:
			t.bufs = append(t.bufs, byteRange{0, -1})
			continue
		case buf.Len() == 0:
			t.bufs = append(t.bufs, byteRange{0, 0})
			continue
		}
		r, err := bufferRange(buf.Bytes(), base, body)
		if errors.Is(err, errOutside) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		t.bufs = append(t.bufs, r)
	}
	for _, c := range d.Children() {
		ct, err := newTemplate(c, base, body, dicts, nodes)
		if ct == nil || err != nil {
			return nil, err
		}
		t.children = append(t.children, ct)
	}
	if dd := d.Dictionary(); dd != nil && d.DataType().ID() == arrow.DICTIONARY {
		// The dictionary lies in one of the dictionary batches.
		for _, b := range dicts {
			dt, err := newTemplate(dd, base, byteRange{b.bodyStart(), b.body}, nil, nodes)
			if err == nil && dt != nil {
				t.dict = dt
				break
			}
		}
		if t.dict == nil {
			return nil, nil
		}
	}
	return t, nil
}

// ranges appends the file ranges of t's buffers, children's and dictionary's.
func (t *arrayTmpl) ranges(dst []byteRange) []byteRange {
	for _, r := range t.bufs {
		if r.n > 0 {
			dst = append(dst, r)
		}
	}
	for _, c := range t.children {
		dst = c.ranges(dst)
	}
	if t.dict != nil {
		dst = t.dict.ranges(dst)
	}
	return dst
}

// build makes the array data of t over base (the file's bytes, or a
// mapping holding at least t's ranges). The buffers alias base.
func (t *arrayTmpl) build(base []byte) arrow.ArrayData {
	bufs := make([]*memory.Buffer, len(t.bufs))
	for i, r := range t.bufs {
		if r.n >= 0 {
			bufs[i] = memory.NewBufferBytes(base[r.off:r.end():r.end()])
		}
	}
	children := make([]arrow.ArrayData, len(t.children))
	for i, c := range t.children {
		children[i] = c.build(base)
	}
	d := array.NewData(t.typ, t.length, bufs, children, t.nulls, t.offset)
	for _, c := range children {
		c.Release()
	}
	if t.dict != nil {
		dd := t.dict.build(base)
		d.SetDictionary(dd)
		dd.Release()
	}
	return d
}

// templated reports whether every column idx has a template in bl.
func (bl *batchLayout) templated(idx []int) bool {
	for _, c := range idx {
		if bl.cols[c] == nil || (bl.index != nil && !bl.decoded[c]) {
			return false
		}
	}
	return true
}

// record builds rows [lo, hi) of columns idx of the batch over base, under
// schema out; with check, each column's CRC-32C is verified first. Arrays
// that arrow-go refuses (buffers too short for their length, as from a
// damaged file) are ErrCorrupt.
func (bl *batchLayout) record(base []byte, full, out *arrow.Schema, idx []int, rows, lo, hi int64,
	check bool, tier string, id backend.ID, batch int) (_ arrow.RecordBatch, err error) {
	cols := make([]arrow.Array, len(idx))
	release := func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}
	defer func() {
		if p := recover(); p != nil {
			release()
			err = corrupt("select", tier, id, "record batch %d: %v", batch, p)
		}
	}()
	for k, c := range idx {
		d := bl.cols[c].build(base)
		if check && bl.crcs != nil {
			if got := columnCRC(full.Field(c), d); got != bl.crcs[c] {
				d.Release()
				release()
				return nil, corrupt("select", tier, id, "record batch %d column %q: CRC-32C %08x, written %08x",
					batch, full.Field(c).Name, got, bl.crcs[c])
			}
		}
		cols[k] = array.MakeFromData(d)
		d.Release()
	}
	rec := array.NewRecordBatch(out, cols, rows)
	release()
	if lo == 0 && hi == rows {
		return rec, nil
	}
	defer rec.Release()
	return rec.NewSlice(lo, hi), nil
}

// layouts is the process's cache of file layouts, least recently used first.
var layouts = &layoutCache{byKey: map[layoutKey]*list.Element{}, max: layoutCacheNodes}

type layoutCache struct {
	mu    sync.Mutex
	byKey map[layoutKey]*list.Element // of *cacheEntry
	lru   list.List
	nodes int
	max   int
}

type cacheEntry struct {
	key   layoutKey
	lay   *fileLayout
	nodes int // lay.nodes when last accounted
}

// get returns the layout of key, or nil.
func (c *layoutCache) get(key layoutKey) *fileLayout {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[key]
	if !ok {
		return nil
	}
	c.lru.MoveToBack(e)
	return e.Value.(*cacheEntry).lay
}

// put adds (or re-accounts, after it learnt batches) the layout of key and
// evicts the least recently used layouts past the bound. A layout larger
// than the bound is not kept.
func (c *layoutCache) put(key layoutKey, lay *fileLayout) {
	lay.mu.Lock()
	n := lay.nodes + len(lay.batches) + 1
	lay.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[key]
	if ok && (e.Value.(*cacheEntry).lay != lay || n > c.max) {
		c.remove(e)
		ok = false
	}
	if n > c.max {
		return // larger than the whole cache: not kept (the others stay)
	}
	if !ok {
		e = c.lru.PushBack(&cacheEntry{key: key, lay: lay})
		c.byKey[key] = e
	}
	c.lru.MoveToBack(e)
	ce := e.Value.(*cacheEntry)
	c.nodes += n - ce.nodes
	ce.nodes = n
	for c.nodes > c.max && c.lru.Len() > 0 {
		c.remove(c.lru.Front())
	}
}

func (c *layoutCache) remove(e *list.Element) {
	ce := e.Value.(*cacheEntry)
	c.nodes -= ce.nodes
	delete(c.byKey, ce.key)
	c.lru.Remove(e)
}
