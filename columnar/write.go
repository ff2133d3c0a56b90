package columnar

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"distore/backend"
)

// WriteOptions are the options of Write and Encode.
type WriteOptions struct {
	// Compression of the buffers ("" is None). LZ4 and Zstd make objects
	// smaller for the disk and remote tiers; reads decompress the selected
	// columns only, and a compressed object is never zero-copy.
	Compression Compression
	// Put are the options of the backend's Put.
	Put backend.PutOptions
}

// Write stores the batches (all of schema) in b under id as one Arrow IPC
// file made by Encode.
func Write(ctx context.Context, b backend.Backend, id backend.ID, schema *arrow.Schema,
	batches []arrow.RecordBatch, opts WriteOptions) (backend.ObjectInfo, error) {
	data, err := Encode(schema, batches, opts)
	if err != nil {
		return backend.ObjectInfo{}, backend.Errorf("columnar write", "columnar", id, backend.ErrInvalidArgument, "%v", err)
	}
	return b.Put(ctx, id, data, opts.Put)
}

// Encode returns the Arrow IPC file of the batches, as Write stores it: the
// schema's metadata gains the batch row counts (MetaBatchRows) and the codec
// (MetaCodec), and each record batch's metadata the CRC-32C of each column's
// buffers (MetaColumnCRC), so that a reader of a few columns can check what
// it fetched, and, without compression, the batch's layout index
// (MetaLayout), so that it finds them without loading the whole batch. Any
// Arrow reader reads the file; the keys are plain metadata.
//
// The file is encoded twice: once to compute the checksums and layouts over
// the arrays as a reader will load them, once with them in the batches'
// metadata.
func Encode(schema *arrow.Schema, batches []arrow.RecordBatch, opts WriteOptions) ([]byte, error) {
	codec := opts.Compression
	if codec == "" {
		codec = None
	}
	var ipcOpts []ipc.Option
	switch codec {
	case None:
	case LZ4:
		ipcOpts = append(ipcOpts, ipc.WithLZ4())
	case Zstd:
		ipcOpts = append(ipcOpts, ipc.WithZstd())
	default:
		return nil, fmt.Errorf("unknown compression %q (want none, lz4 or zstd)", codec)
	}
	rows := make([]string, len(batches))
	for i, rec := range batches {
		if !rec.Schema().Equal(schema) {
			return nil, fmt.Errorf("record batch %d has schema %v, want %v", i, rec.Schema(), schema)
		}
		rows[i] = strconv.FormatInt(rec.NumRows(), 10)
	}
	keys, vals := []string{MetaBatchRows, MetaCodec}, []string{strings.Join(rows, ","), string(codec)}
	md := schema.Metadata()
	for i, k := range md.Keys() {
		if k != MetaBatchRows && k != MetaCodec {
			keys, vals = append(keys, k), append(vals, md.Values()[i])
		}
	}
	meta := arrow.NewMetadata(keys, vals)
	schema = arrow.NewSchema(schema.Fields(), &meta)
	recs := make([]arrow.RecordBatch, len(batches))
	for i, rec := range batches {
		recs[i] = array.NewRecordBatch(schema, rec.Columns(), rec.NumRows())
		defer recs[i].Release()
	}
	first, err := encode(schema, recs, ipcOpts)
	if err != nil {
		return nil, err
	}
	crcs, index, err := readBack(first, codec == None)
	if err != nil {
		return nil, fmt.Errorf("reading back the encoded file: %w", err)
	}
	for i, rec := range recs {
		hex := make([]string, len(crcs[i]))
		for j, c := range crcs[i] {
			hex[j] = fmt.Sprintf("%08x", c)
		}
		keys, vals := []string{MetaColumnCRC}, []string{strings.Join(hex, ",")}
		if index != nil {
			keys, vals = append(keys, MetaLayout), append(vals, index[i])
		}
		md := arrow.NewMetadata(keys, vals)
		recs[i] = array.NewRecordBatchWithMetadata(schema, rec.Columns(), rec.NumRows(), md)
		defer recs[i].Release()
	}
	return encode(schema, recs, ipcOpts)
}

// encode writes an Arrow IPC file with arrow-go.
func encode(schema *arrow.Schema, recs []arrow.RecordBatch, opts []ipc.Option) ([]byte, error) {
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&buf, append([]ipc.Option{ipc.WithSchema(schema)}, opts...)...)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readBack reads the file back with arrow-go and returns the checksum
// (columnCRC) of every column of every batch and, when indexed, each batch's
// layout index (MetaLayout).
func readBack(file []byte, indexed bool) ([][]uint32, []string, error) {
	size := int64(len(file))
	flen, err := footerLength(file[max(size-trailerLen, 0):], size)
	if err != nil {
		return nil, nil, err
	}
	dicts, batches, err := footerBlocks(file[size-trailerLen-flen:size-trailerLen], size)
	if err != nil {
		return nil, nil, err
	}
	fr, err := openFileReader(file)
	if err != nil {
		return nil, nil, err
	}
	defer fr.Close()
	crcs := make([][]uint32, len(batches))
	var index []string
	if indexed {
		index = make([]string, len(batches))
	}
	for i, b := range batches {
		rec, err := recordAt(fr, file, b, i)
		if err != nil {
			return nil, nil, err
		}
		crcs[i] = make([]uint32, rec.NumCols())
		tmpls := make([]*arrayTmpl, rec.NumCols())
		for j, col := range rec.Columns() {
			field := rec.Schema().Field(j)
			crcs[i][j] = columnCRC(field, col.Data())
			if indexed {
				var nodes int
				t, err := newTemplate(col.Data(), file, byteRange{b.bodyStart(), b.body}, dicts, &nodes)
				if err == nil && t.indexable(field.Type, 0) {
					tmpls[j] = t
				}
			}
		}
		if indexed {
			index[i] = encodeIndex(i, b, tmpls)
		}
		rec.Release()
	}
	return crcs, index, nil
}
