package columnar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"golang.org/x/sync/errgroup"

	"distore/backend"
	"distore/levels"
)

// Tuning of ranged reads.
const (
	// tailRead is the first read at the end of the file: footers of tables
	// of a few hundred columns and batches fit, so one request usually does.
	tailRead = 64 << 10
	// coalesceGap: ranges closer than this are fetched as one.
	coalesceGap = 64 << 10
	// maxPiece: longer ranges are split so their pieces are fetched in parallel.
	maxPiece = 8 << 20
	// fetchParallel bounds the OpenReader calls in flight.
	fetchParallel = 8
)

// Select reads the selected columns and rows of the Arrow IPC file stored
// under id. From the memory tier the result aliases the object's memory
// (zero-copy); from other tiers only the footer, the metadata of the record
// batches holding the rows and the selected columns' buffers in them are read.
// The result must be closed.
//
// Errors: ErrNotArrow, ErrUnknownColumn, ErrRowRange, and the backend's
// sentinels (ErrNotFound, ErrCorrupt when the file is damaged), each naming
// the object and the tier.
func Select(ctx context.Context, b backend.Backend, id backend.ID, sel Selection) (*Result, error) {
	info, err := b.ObjectInfo(ctx, id)
	if err != nil {
		return nil, err
	}
	if info.Level == levels.Memory {
		return selectMapped(ctx, b, id, sel)
	}
	src := &backendSource{b: b, id: id, info: info}
	key := keyOf(info)
	if lay := layouts.get(key); lay != nil && lay.size == info.Size {
		f, err := newRangedFile(src, info.Tier, id, info.Size)
		if err != nil {
			return nil, err
		}
		f.batches = lay.batches
		return f.selectLayout(ctx, key, lay, sel)
	}
	f, err := openRanged(ctx, src, info.Tier, id, info.Size)
	if err != nil {
		return nil, err
	}
	lay, err := f.newLayout()
	if err != nil {
		f.close()
		return nil, err
	}
	if lay == nil { // not written by Write, or compressed
		return f.selectAndClose(ctx, sel)
	}
	return f.selectLayout(ctx, key, lay, sel)
}

// ReadSchema returns the schema of the Arrow IPC file stored under id,
// reading the footer (and dictionary batches, if any) but no column data.
func ReadSchema(ctx context.Context, b backend.Backend, id backend.ID) (*arrow.Schema, error) {
	info, err := b.ObjectInfo(ctx, id)
	if err != nil {
		return nil, err
	}
	key := keyOf(info)
	if lay := layouts.get(key); lay != nil && lay.size == info.Size {
		return publicSchema(lay.schema, nil), nil
	}
	f, err := openRanged(ctx, &backendSource{b: b, id: id, info: info}, info.Tier, id, info.Size)
	if err != nil {
		return nil, err
	}
	defer f.close()
	if lay, err := f.newLayout(); err == nil && lay != nil {
		layouts.put(key, lay)
	}
	return publicSchema(f.fr.Schema(), nil), nil
}

// selectMapped is Select on an object whose Get bytes are the tier's memory.
func selectMapped(ctx context.Context, b backend.Backend, id backend.ID, sel Selection) (*Result, error) {
	obj, err := b.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	res, err := selectBytes(obj.Info(), obj.Bytes(), sel)
	if err != nil {
		obj.Close()
		return nil, err
	}
	res.release = func() { obj.Close() }
	return res, nil
}

// selectBytes selects from data, the whole file (the tier's memory). A file
// written by Write without compression is read through its cached layout:
// only the selected columns' arrays are built, over data. Their bytes are
// not checksummed unless sel.Verify: the memory tier holds what was put (its
// CRC-32C was checked then) and reading every selected byte on each select
// would cost what zero-copy saves.
func selectBytes(info backend.ObjectInfo, data []byte, sel Selection) (*Result, error) {
	id, tier, size := info.ID, info.Tier, int64(len(data))
	key := keyOf(info)
	lay := layouts.get(key)
	var fr *ipc.FileReader
	defer func() {
		if fr != nil {
			fr.Close()
		}
	}()
	learnt := false
	if lay == nil || lay.size != size {
		flen, err := footerLength(data[max(size-trailerLen, 0):], size)
		if err != nil {
			return nil, fileError(tier, id, err)
		}
		// The footer's blocks are checked before arrow-go walks them.
		dicts, batches, err := footerBlocks(data[size-trailerLen-flen:size-trailerLen], size)
		if err != nil {
			return nil, corrupt("select", tier, id, "%v", err)
		}
		if fr, err = openFileReader(data); err != nil {
			return nil, corrupt("select", tier, id, "%v", err)
		}
		md := fr.Schema().Metadata()
		if !cacheable(md) {
			// A compressed file's selected columns are decompressed copies: not
			// zero-copy, and checked as from other tiers since they are decoded anyway.
			zeroCopy := codecOf(md) == None
			return selectZeroCopy(fr, data, batches, tier, id, sel, sel.Verify || !zeroCopy)
		}
		rows, err := parseBatchRows(md, len(batches))
		if err != nil {
			return nil, corrupt("select", tier, id, "%v", err)
		}
		lay, learnt = newLayout(size, fr.Schema(), dicts, batches, rows), true
	}
	idx, out, err := project(lay.schema, sel.Columns, tier, id)
	if err != nil {
		return nil, err
	}
	plan, err := planRows(lay.rows, sel.Rows, tier, id)
	if err != nil {
		return nil, err
	}
	res := &Result{Schema: out, TotalRows: plan.total, Stats: Stats{Tier: tier, ZeroCopy: true}}
	for _, p := range plan.parts {
		rec, bl, err := func() (arrow.RecordBatch, *batchLayout, error) {
			b := lay.batches[p.batch]
			bl, grew, err := lay.batch(p.batch, idx, data[b.offset:b.offset+b.meta], tier, id)
			if err != nil {
				return nil, nil, err
			}
			learnt = learnt || grew
			if bl != nil && bl.templated(idx) {
				rec, err := bl.record(data, lay.schema, out, idx, lay.rows[p.batch], p.lo, p.hi, sel.Verify, tier, id, p.batch)
				return rec, bl, err
			}
			// Not loaded yet, or a column arrow-go allocated: load it with arrow-go.
			if fr == nil {
				if fr, err = openFileReader(data); err != nil {
					return nil, nil, corrupt("select", tier, id, "%v", err)
				}
			}
			full, err := recordAt(fr, data, lay.batches[p.batch], p.batch)
			if err != nil {
				return nil, nil, corrupt("select", tier, id, "%v", err)
			}
			defer full.Release()
			if bl == nil || bl.index != nil {
				if bl, err = lay.learn(p.batch, full, data, tier, id); err != nil {
					return nil, nil, err
				}
				learnt = true
			}
			if sel.Verify {
				if err := verify(full, idx, lay.rows[p.batch], tier, id, p.batch); err != nil {
					return nil, nil, err
				}
			}
			return keep(full, out, idx, p.lo, p.hi), bl, nil
		}()
		if err != nil {
			res.Close()
			return nil, err
		}
		for _, c := range idx {
			res.Stats.SelectedBytes += bl.size[c]
		}
		res.Records = append(res.Records, rec)
	}
	if learnt {
		layouts.put(key, lay)
	}
	return res, nil
}

// selectZeroCopy loads the batches holding the rows from a file reader over
// the whole file and keeps the selected columns: slices of the file's bytes.
func selectZeroCopy(fr *ipc.FileReader, data []byte, batches []block, tier string, id backend.ID, sel Selection, check bool) (*Result, error) {
	schema := fr.Schema()
	idx, out, err := project(schema, sel.Columns, tier, id)
	if err != nil {
		return nil, err
	}
	rows, err := parseBatchRows(schema.Metadata(), len(batches))
	if err != nil {
		return nil, corrupt("select", tier, id, "%v", err)
	}
	if rows == nil { // not written by Write: count the rows of every batch
		rows = make([]int64, len(batches))
		for i := range rows {
			rec, err := recordAt(fr, data, batches[i], i)
			if err != nil {
				return nil, corrupt("select", tier, id, "%v", err)
			}
			rows[i] = rec.NumRows()
			rec.Release()
		}
	}
	res := &Result{Schema: out, Stats: Stats{Tier: tier, ZeroCopy: !check || sel.Verify}}
	plan, err := planRows(rows, sel.Rows, tier, id)
	if err != nil {
		return nil, err
	}
	res.TotalRows = plan.total
	for _, p := range plan.parts {
		rec, err := recordAt(fr, data, batches[p.batch], p.batch)
		if err != nil {
			res.Close()
			return nil, corrupt("select", tier, id, "%v", err)
		}
		err = verify(rec, nil, rows[p.batch], tier, id, p.batch)
		if err == nil && check {
			err = verify(rec, idx, rows[p.batch], tier, id, p.batch)
		}
		if err != nil {
			rec.Release()
			res.Close()
			return nil, err
		}
		for _, i := range idx {
			res.Stats.SelectedBytes += dataSize(rec.Column(i).Data())
		}
		res.Records = append(res.Records, keep(rec, out, idx, p.lo, p.hi))
		rec.Release()
	}
	return res, nil
}

// dataSize is the size of an array's buffers and its children's.
func dataSize(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataSize(c)
	}
	return n
}

// project resolves column names to indices and the projected schema.
func project(schema *arrow.Schema, columns []string, tier string, id backend.ID) ([]int, *arrow.Schema, error) {
	if columns == nil {
		idx := make([]int, schema.NumFields())
		for i := range idx {
			idx[i] = i
		}
		return idx, publicSchema(schema, nil), nil
	}
	idx := make([]int, len(columns))
	for k, name := range columns {
		is := schema.FieldIndices(name)
		if len(is) == 0 {
			known := make([]string, schema.NumFields())
			for i, f := range schema.Fields() {
				known[i] = f.Name
			}
			return nil, nil, backend.Errorf("select", tier, id, ErrUnknownColumn,
				"no column %q; the columns are %s", name, strings.Join(known, ","))
		}
		idx[k] = is[0]
	}
	return idx, publicSchema(schema, idx), nil
}

// publicSchema is the schema (its fields idx; nil: all) without the keys
// that describe the stored file.
func publicSchema(schema *arrow.Schema, idx []int) *arrow.Schema {
	fields := schema.Fields()
	if idx != nil {
		fields = make([]arrow.Field, len(idx))
		for k, i := range idx {
			fields[k] = schema.Field(i)
		}
	}
	md := schema.Metadata()
	var keys, vals []string
	for i, k := range md.Keys() {
		if k != MetaBatchRows && k != MetaCodec {
			keys, vals = append(keys, k), append(vals, md.Values()[i])
		}
	}
	var pmd *arrow.Metadata
	if len(keys) > 0 {
		m := arrow.NewMetadata(keys, vals)
		pmd = &m
	}
	return arrow.NewSchema(fields, pmd)
}

// keep returns rows [lo, hi) of rec's columns idx under schema.
func keep(rec arrow.RecordBatch, schema *arrow.Schema, idx []int, lo, hi int64) arrow.RecordBatch {
	cols := make([]arrow.Array, len(idx))
	for k, i := range idx {
		cols[k] = rec.Column(i)
	}
	p := array.NewRecordBatch(schema, cols, rec.NumRows())
	if lo == 0 && hi == rec.NumRows() {
		return p
	}
	defer p.Release()
	return p.NewSlice(lo, hi)
}

// rowPlan: which batches hold the rows, and which of their rows.
type rowPlan struct {
	total int64
	parts []rowPart
}

type rowPart struct {
	batch  int
	lo, hi int64 // rows of the batch
}

func planRows(rows []int64, r *RowRange, tier string, id backend.ID) (rowPlan, error) {
	var p rowPlan
	for _, n := range rows {
		p.total += n
	}
	start, end := int64(0), p.total
	if r != nil {
		start, end = r.Start, r.End
		if end < 0 {
			end = p.total
		}
		if start < 0 || start > end || end > p.total {
			return p, backend.Errorf("select", tier, id, ErrRowRange,
				"rows %d:%d of a table of %d rows", r.Start, r.End, p.total)
		}
	}
	var at int64
	for i, n := range rows {
		lo, hi := max(start-at, 0), min(end-at, n)
		if lo < hi {
			p.parts = append(p.parts, rowPart{i, lo, hi})
		}
		at += n
	}
	return p, nil
}

// fileError maps a trailer check's error: ErrNotArrow stays, others are
// ErrCorrupt.
func fileError(tier string, id backend.ID, err error) error {
	if errors.Is(err, ErrNotArrow) {
		return backend.Errorf("select", tier, id, ErrNotArrow, "no Arrow IPC file trailer")
	}
	return corrupt("select", tier, id, "%v", err)
}

// source reads byte ranges of one object.
type source interface {
	readAt(ctx context.Context, dst []byte, off int64) error
}

// backendSource reads through OpenReader.
type backendSource struct {
	b    backend.Backend
	id   backend.ID
	info backend.ObjectInfo
}

func (s *backendSource) readAt(ctx context.Context, dst []byte, off int64) error {
	rc, err := s.b.OpenReader(ctx, s.id, off, int64(len(dst)))
	if err != nil {
		return err
	}
	defer rc.Close()
	// A reader that carries its info (backend.Reader) tells when the object
	// under id is not the one whose footer was read.
	if ir, ok := rc.(interface{ Info() backend.ObjectInfo }); ok {
		if got := ir.Info(); got.Checksum != s.info.Checksum || got.Size != s.info.Size {
			return backend.Errorf("select", s.info.Tier, s.id, backend.ErrNotFound,
				"the object was replaced while it was read")
		}
	}
	if _, err := io.ReadFull(rc, dst); err != nil {
		if isBackendError(err) {
			return err
		}
		return corrupt("select", s.info.Tier, s.id, "reading %d bytes at %d: %v", len(dst), off, err)
	}
	return nil
}

// rangedFile is an Arrow IPC file read by byte ranges into a sparse mapping.
type rangedFile struct {
	src     source
	tier    string
	id      backend.ID
	size    int64
	m       *mapping
	dicts   []block
	batches []block
	fr      *ipc.FileReader
	have    have // ranges fetched
	stats   Stats
	bytes   atomic.Int64
	reqs    atomic.Int64
}

// newRangedFile maps an empty file of size bytes, to be read by ranges.
func newRangedFile(src source, tier string, id backend.ID, size int64) (*rangedFile, error) {
	if size < minFileSize {
		return nil, backend.Errorf("select", tier, id, ErrNotArrow, "%d bytes is too small", size)
	}
	m, err := newMapping(size)
	if err != nil {
		return nil, backend.Errorf("select", tier, id, backend.ErrFull, "mapping %d bytes: %v", size, err)
	}
	return &rangedFile{src: src, tier: tier, id: id, size: size, m: m, stats: Stats{Tier: tier}}, nil
}

// openRanged reads the footer and dictionaries and opens arrow-go's reader.
func openRanged(ctx context.Context, src source, tier string, id backend.ID, size int64) (*rangedFile, error) {
	f, err := newRangedFile(src, tier, id, size)
	if err != nil {
		return nil, err
	}
	if err := f.open(ctx); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

// newLayout is the layout of the opened file, or nil when it gets none
// (not written by Write, or compressed).
func (f *rangedFile) newLayout() (*fileLayout, error) {
	md := f.fr.Schema().Metadata()
	if !cacheable(md) {
		return nil, nil
	}
	rows, err := parseBatchRows(md, len(f.batches))
	if err != nil {
		return nil, corrupt("select", f.tier, f.id, "%v", err)
	}
	return newLayout(f.size, f.fr.Schema(), f.dicts, f.batches, rows), nil
}

// selectLayout runs the selection with the file's layout: batches not
// learnt yet have their metadata fetched and loaded by arrow-go (over zeros
// for bodies), then only the selected columns' ranges are fetched, their
// arrays built over the mapping and their checksums verified. It closes f
// on error; the result keeps the mapping until it is closed.
func (f *rangedFile) selectLayout(ctx context.Context, key layoutKey, lay *fileLayout, sel Selection) (_ *Result, err error) {
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	idx, out, err := project(lay.schema, sel.Columns, f.tier, f.id)
	if err != nil {
		return nil, err
	}
	plan, err := planRows(lay.rows, sel.Rows, f.tier, f.id)
	if err != nil {
		return nil, err
	}
	// Batches whose selected columns are not known yet have their metadata
	// fetched: their layout index gives the columns, or arrow-go loads the
	// batch (over zeros for the body) and it is learnt.
	var unknown []int
	for _, p := range plan.parts {
		if bl, _, _ := lay.batch(p.batch, idx, nil, f.tier, f.id); bl == nil || (bl.index != nil && !bl.templated(idx)) {
			unknown = append(unknown, p.batch)
		}
	}
	if len(unknown) > 0 {
		if err := f.fetch(ctx, f.metaRanges(unknown)); err != nil {
			return nil, err
		}
		for _, i := range unknown {
			b := f.batches[i]
			bl, _, err := lay.batch(i, idx, f.m.data[b.offset:b.offset+b.meta], f.tier, f.id)
			if err != nil {
				return nil, err
			}
			if bl != nil && (bl.index == nil || bl.templated(idx)) {
				continue
			}
			if f.fr == nil {
				if err := f.open(ctx); err != nil {
					return nil, err
				}
			}
			rec, err := recordAt(f.fr, f.m.data, b, i)
			if err != nil {
				return nil, corrupt("select", f.tier, f.id, "%v", err)
			}
			_, err = lay.learn(i, rec, f.m.data, f.tier, f.id)
			rec.Release()
			if err != nil {
				return nil, err
			}
		}
	}
	layouts.put(key, lay)
	bls := make([]*batchLayout, len(plan.parts))
	var need []byteRange
	for k, p := range plan.parts {
		if bls[k], _, err = lay.batch(p.batch, idx, nil, f.tier, f.id); err != nil {
			return nil, err
		}
		if !bls[k].templated(idx) {
			// A buffer arrow-go allocated: the general path says what it is.
			f.stats.SelectedBytes = 0
			if f.fr == nil {
				if err := f.open(ctx); err != nil {
					return nil, err
				}
			}
			return f.selectAndClose(ctx, sel)
		}
		for _, c := range idx {
			need = bls[k].cols[c].ranges(need)
			f.stats.SelectedBytes += bls[k].size[c]
		}
	}
	if err := f.fetch(ctx, need); err != nil {
		return nil, err
	}
	if f.fr != nil {
		f.fr.Close()
		f.fr = nil
	}
	res := &Result{Schema: out, TotalRows: plan.total}
	for k, p := range plan.parts {
		rec, err := bls[k].record(f.m.data, lay.schema, out, idx, lay.rows[p.batch], p.lo, p.hi, true, f.tier, f.id, p.batch)
		if err != nil {
			res.Close()
			return nil, err
		}
		res.Records = append(res.Records, rec)
	}
	f.stats.BytesRead, f.stats.Requests = f.bytes.Load(), int(f.reqs.Load())
	res.Stats = f.stats
	res.release = f.close
	return res, nil
}

func (f *rangedFile) open(ctx context.Context) error {
	data := f.m.data
	tail := min(f.size, tailRead)
	if err := f.fetch(ctx, []byteRange{{f.size - tail, tail}}); err != nil {
		return err
	}
	flen, err := footerLength(data[f.size-trailerLen:], f.size)
	if err != nil {
		return fileError(f.tier, f.id, err)
	}
	if err := f.fetch(ctx, []byteRange{{f.size - trailerLen - flen, flen}}); err != nil {
		return err
	}
	f.dicts, f.batches, err = footerBlocks(data[f.size-trailerLen-flen:f.size-trailerLen], f.size)
	if err != nil {
		return corrupt("select", f.tier, f.id, "%v", err)
	}
	var rs []byteRange
	for _, d := range f.dicts {
		rs = append(rs, byteRange{d.offset, d.meta + d.body})
	}
	if err := f.fetch(ctx, rs); err != nil {
		return err
	}
	if f.fr, err = openFileReader(data); err != nil {
		return corrupt("select", f.tier, f.id, "%v", err)
	}
	return nil
}

func (f *rangedFile) close() {
	if f.fr != nil {
		f.fr.Close()
		f.fr = nil
	}
	if f.m != nil {
		f.m.unmap()
		f.m = nil
	}
}

// fetch reads the parts of the ranges not fetched yet into the mapping:
// coalesced, in pieces fetched in parallel.
func (f *rangedFile) fetch(ctx context.Context, rs []byteRange) error {
	var need []byteRange
	for _, r := range rs {
		need = append(need, f.have.missing(r)...)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchParallel)
	pieces := coalesce(need, coalesceGap, maxPiece)
	for _, r := range pieces {
		g.Go(func() error {
			f.m.populate(r.off, r.n)
			if err := f.src.readAt(gctx, f.m.data[r.off:r.end()], r.off); err != nil {
				return err
			}
			f.bytes.Add(r.n)
			f.reqs.Add(1)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, r := range pieces {
		f.have.add(r)
	}
	return nil
}

// metaRanges are the metadata blocks of the batches.
func (f *rangedFile) metaRanges(batches []int) []byteRange {
	rs := make([]byteRange, len(batches))
	for k, i := range batches {
		rs[k] = byteRange{f.batches[i].offset, f.batches[i].meta}
	}
	return rs
}

// bodyRanges are the bodies of the batches.
func (f *rangedFile) bodyRanges(batches []int) []byteRange {
	rs := make([]byteRange, len(batches))
	for k, i := range batches {
		rs[k] = byteRange{f.batches[i].bodyStart(), f.batches[i].body}
	}
	return rs
}

// layout loads batch i (its metadata fetched, its body maybe not) and
// returns the file ranges of the columns idx and the batch's row count.
func (f *rangedFile) layout(i int, idx []int) ([][]byteRange, int64, error) {
	rec, err := recordAt(f.fr, f.m.data, f.batches[i], i)
	if err != nil {
		return nil, 0, err
	}
	defer rec.Release()
	b := f.batches[i]
	out := make([][]byteRange, len(idx))
	for k, c := range idx {
		if out[k], err = columnRanges(nil, rec.Column(c).Data(), f.m.data, byteRange{b.bodyStart(), b.body}); err != nil {
			return nil, 0, fmt.Errorf("record batch %d column %d: %w", i, c, err)
		}
	}
	return out, rec.NumRows(), nil
}

// selectAndClose runs the selection and closes f (the result keeps its
// mapping alive until the result is closed).
func (f *rangedFile) selectAndClose(ctx context.Context, sel Selection) (_ *Result, err error) {
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	schema := f.fr.Schema()
	idx, out, err := project(schema, sel.Columns, f.tier, f.id)
	if err != nil {
		return nil, err
	}
	rows, err := parseBatchRows(schema.Metadata(), len(f.batches))
	if err != nil {
		return nil, corrupt("select", f.tier, f.id, "%v", err)
	}
	// Column pruning needs uncompressed buffers (see the top of layout.go);
	// a file not written by Write may be compressed and is read batch by batch.
	prune := codecOf(schema.Metadata()) == None
	if rows == nil { // not written by Write: count the rows of every batch
		all := make([]int, len(f.batches))
		for i := range all {
			all[i] = i
		}
		if err := f.fetch(ctx, append(f.metaRanges(all), f.bodyRanges(all)...)); err != nil {
			return nil, err
		}
		rows = make([]int64, len(f.batches))
		for i := range rows {
			if _, rows[i], err = f.layout(i, nil); err != nil {
				return nil, corrupt("select", f.tier, f.id, "%v", err)
			}
		}
	}
	plan, err := planRows(rows, sel.Rows, f.tier, f.id)
	if err != nil {
		return nil, err
	}
	wanted := make([]int, len(plan.parts))
	for k, p := range plan.parts {
		wanted[k] = p.batch
	}
	if err := f.fetch(ctx, f.metaRanges(wanted)); err != nil {
		return nil, err
	}
	// Pass 1: where the selected buffers are.
	layouts := make([][][]byteRange, len(wanted))
	var need []byteRange
	if prune {
		for k, i := range wanted {
			var n int64
			if layouts[k], n, err = f.layout(i, idx); err != nil {
				return nil, corrupt("select", f.tier, f.id, "%v", err)
			}
			if n != rows[i] {
				return nil, corrupt("select", f.tier, f.id, "record batch %d has %d rows, the schema says %d", i, n, rows[i])
			}
			for _, rs := range layouts[k] {
				need = append(need, rs...)
				for _, r := range rs {
					f.stats.SelectedBytes += r.n
				}
			}
		}
	} else {
		need = f.bodyRanges(wanted)
		for _, r := range need {
			f.stats.SelectedBytes += r.n
		}
	}
	if err := f.fetch(ctx, need); err != nil {
		return nil, err
	}
	// Pass 2: the same batches over the fetched bytes.
	res := &Result{Schema: out, TotalRows: plan.total}
	for k, p := range plan.parts {
		rec, err := f.load(p.batch, idx, rows[p.batch])
		if err == nil && prune {
			// The arrays must be the slices pass 1 saw, in fetched ranges.
			b := f.batches[p.batch]
			for j, c := range idx {
				rs, rerr := columnRanges(nil, rec.Column(c).Data(), f.m.data, byteRange{b.bodyStart(), b.body})
				if rerr != nil || !slices.Equal(rs, layouts[k][j]) {
					rec.Release()
					rec, err = nil, fmt.Errorf("record batch %d: buffers moved between two loads", p.batch)
					break
				}
			}
		}
		if err != nil {
			res.Close()
			if isBackendError(err) {
				return nil, err
			}
			return nil, corrupt("select", f.tier, f.id, "%v", err)
		}
		res.Records = append(res.Records, keep(rec, out, idx, p.lo, p.hi))
		rec.Release()
	}
	f.fr.Close()
	f.fr = nil
	f.stats.BytesRead, f.stats.Requests = f.bytes.Load(), int(f.reqs.Load())
	res.Stats = f.stats
	res.release = f.close
	return res, nil
}

// load loads batch i and checks its row count and, where Write stored them,
// the checksums of the columns idx.
func (f *rangedFile) load(i int, idx []int, rows int64) (arrow.RecordBatch, error) {
	rec, err := recordAt(f.fr, f.m.data, f.batches[i], i)
	if err != nil {
		return nil, err
	}
	if err := verify(rec, idx, rows, f.tier, f.id, i); err != nil {
		rec.Release()
		return nil, err
	}
	return rec, nil
}

// verify checks a loaded batch's row count and the checksums of columns idx.
func verify(rec arrow.RecordBatch, idx []int, rows int64, tier string, id backend.ID, i int) error {
	if rec.NumRows() != rows {
		return corrupt("select", tier, id, "record batch %d has %d rows, the schema says %d", i, rec.NumRows(), rows)
	}
	rm, ok := rec.(arrow.RecordBatchWithMetadata)
	if !ok {
		return nil
	}
	sums, err := parseCRCs(rm.Metadata(), int(rec.NumCols()))
	if err != nil {
		return corrupt("select", tier, id, "record batch %d: %v", i, err)
	}
	if sums == nil {
		return nil
	}
	for _, c := range idx {
		if got := columnCRC(rec.Schema().Field(c), rec.Column(c).Data()); got != sums[c] {
			return corrupt("select", tier, id, "record batch %d column %q: CRC-32C %08x, written %08x",
				i, rec.Schema().Field(c).Name, got, sums[c])
		}
	}
	return nil
}
