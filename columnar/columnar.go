// Package columnar stores Arrow record batches in any backend.Backend as an
// Arrow IPC file and reads them back by column and by row range.
//
// From the memory tier a selection is zero-copy: arrow-go's mapped file reader
// runs over the object's bytes and the result's arrays alias them. From every
// other tier (disk, S3, Ceph, GPU) the reader fetches the file's footer, the
// metadata of the record batches that hold the wanted rows, and then only the
// byte ranges of the selected columns' buffers, through OpenReader, with near
// ranges coalesced: never the whole object. Where a column's buffers lie comes
// from the batch's layout index (MetaLayout, distore's own metadata, written
// by Write); all Arrow parsing is arrow-go's own. See docs/columnar.md for how
// the byte ranges are found and what corruption is detected.
//
//	info, err := columnar.Write(ctx, b, id, schema, batches, columnar.WriteOptions{})
//	res, err := columnar.Select(ctx, b, id, columnar.Selection{
//		Columns: []string{"a", "c"}, Rows: &columnar.RowRange{Start: 1000, End: 2000}})
//	defer res.Close()
package columnar

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"distore/backend"
)

// Errors of a selection, beside the backend's sentinels (ErrNotFound,
// ErrCorrupt, ...). Each wraps backend.ErrInvalidArgument too.
var (
	// ErrNotArrow: the object is not an Arrow IPC file (HTTP 415).
	ErrNotArrow = fmt.Errorf("object is not an Arrow IPC file: %w", backend.ErrInvalidArgument)
	// ErrUnknownColumn: a selected column is not in the schema (HTTP 400).
	ErrUnknownColumn = fmt.Errorf("unknown column: %w", backend.ErrInvalidArgument)
	// ErrRowRange: the row range is not inside the table (HTTP 416).
	ErrRowRange = fmt.Errorf("row range out of bounds: %w", backend.ErrInvalidArgument)
)

// Keys of the schema metadata and record batch metadata that Write adds. A
// file without them (written by another Arrow library) is still read; it
// costs more metadata reads and has no per-column checksums.
const (
	// MetaBatchRows (schema): the row counts of the record batches, "n1,n2,...".
	MetaBatchRows = "distore.columnar.batch_rows"
	// MetaCodec (schema): the buffer compression, "none", "lz4" or "zstd".
	MetaCodec = "distore.columnar.codec"
	// MetaColumnCRC (record batch): the CRC-32C of each top-level column's
	// buffers in that batch, in schema order, as 8 hex digits, comma-separated.
	MetaColumnCRC = "distore.columnar.crc32c"
)

// Compression is the IPC buffer compression used by Write.
type Compression string

// Compressions arrow-go implements.
const (
	None Compression = "none"
	LZ4  Compression = "lz4"
	Zstd Compression = "zstd"
)

// RowRange is the half-open row interval [Start, End) of a table.
type RowRange struct {
	Start, End int64
}

// Selection is what Select reads. The zero value is the whole table.
type Selection struct {
	// Columns are top-level field names, in the order wanted; nil is all.
	Columns []string
	// Rows is the row interval; nil is every row.
	Rows *RowRange
	// Verify checks the columns' checksums on the memory tier too, at the
	// cost of reading the selected bytes (other tiers always check them).
	Verify bool
}

// ParseSelection parses the textual form used by the HTTP API and the CLI:
// columns "a,c" (empty: all) and rows "start:end", "start:" or ":end"
// (empty: all). Malformed text is an error wrapping backend.ErrInvalidArgument.
func ParseSelection(columns, rows string) (Selection, error) {
	var sel Selection
	if columns != "" {
		seen := map[string]bool{}
		for _, c := range strings.Split(columns, ",") {
			if c == "" {
				return sel, fmt.Errorf("columns %q: empty column name: %w", columns, backend.ErrInvalidArgument)
			}
			if seen[c] {
				return sel, fmt.Errorf("columns %q: column %q named twice: %w", columns, c, backend.ErrInvalidArgument)
			}
			seen[c] = true
			sel.Columns = append(sel.Columns, c)
		}
	}
	if rows == "" {
		return sel, nil
	}
	lo, hi, ok := strings.Cut(rows, ":")
	if !ok {
		return sel, fmt.Errorf("rows %q: want start:end: %w", rows, backend.ErrInvalidArgument)
	}
	r := RowRange{End: -1}
	var err error
	if lo != "" {
		if r.Start, err = strconv.ParseInt(lo, 10, 64); err != nil || r.Start < 0 {
			return sel, fmt.Errorf("rows %q: bad start: %w", rows, backend.ErrInvalidArgument)
		}
	}
	if hi != "" {
		if r.End, err = strconv.ParseInt(hi, 10, 64); err != nil || r.End < 0 {
			return sel, fmt.Errorf("rows %q: bad end: %w", rows, backend.ErrInvalidArgument)
		}
	}
	sel.Rows = &r
	return sel, nil
}

// Stats tell what a selection cost.
type Stats struct {
	// Tier is the tier the object was read from.
	Tier string
	// ZeroCopy is set when the result aliases the tier's memory.
	ZeroCopy bool
	// BytesRead is what was fetched through OpenReader (0 when zero-copy);
	// Requests the number of OpenReader calls.
	BytesRead int64
	Requests  int
	// SelectedBytes is the size of the selected columns' buffers in the
	// record batches that hold the selected rows.
	SelectedBytes int64
}

// Result is a selection: a schema and record batches that are valid until
// Close (their buffers may alias the tier's memory or a private mapping).
type Result struct {
	// Schema is the projected schema (fields in the order selected).
	Schema *arrow.Schema
	// Records hold the selected rows, in order; there may be none.
	Records []arrow.RecordBatch
	// TotalRows is the number of rows of the whole table.
	TotalRows int64
	Stats     Stats
	release   func()
}

// NumRows is the number of rows selected.
func (r *Result) NumRows() int64 {
	var n int64
	for _, rec := range r.Records {
		n += rec.NumRows()
	}
	return n
}

// Reader returns the records as an array.RecordReader (for WriteStream,
// WriteCSV, WriteJSON). It is valid until Close.
func (r *Result) Reader() (array.RecordReader, error) {
	return array.NewRecordReader(r.Schema, r.Records)
}

// Close releases the records and what they alias. It is safe to call twice.
func (r *Result) Close() error {
	for _, rec := range r.Records {
		rec.Release()
	}
	r.Records = nil
	if r.release != nil {
		r.release()
		r.release = nil
	}
	return nil
}

// corrupt returns ErrCorrupt naming the object and tier.
func corrupt(op, tier string, id backend.ID, format string, args ...any) error {
	return backend.Errorf(op, tier, id, backend.ErrCorrupt, format, args...)
}

// isBackendError reports whether err is already a backend error (kept as is).
func isBackendError(err error) bool {
	var be *backend.Error
	var fe *backend.FullError
	return errors.As(err, &be) || errors.As(err, &fe)
}
