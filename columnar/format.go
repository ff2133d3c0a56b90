package columnar

import (
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// StreamContentType is the media type of an Arrow IPC stream.
const StreamContentType = "application/vnd.apache.arrow.stream"

// Formats WriteFormat knows, for the CLI's --format.
var Formats = []string{"arrow", "csv", "json"}

// WriteStream writes the records of r to w as an Arrow IPC stream (schema,
// dictionaries, record batches, end-of-stream marker).
func WriteStream(w io.Writer, r array.RecordReader) error {
	sw := ipc.NewWriter(w, ipc.WithSchema(r.Schema()))
	for r.Next() {
		if err := sw.Write(r.RecordBatch()); err != nil {
			sw.Close()
			return err
		}
	}
	if err := r.Err(); err != nil {
		sw.Close()
		return err
	}
	return sw.Close()
}

// WriteCSV writes the records of r to w as CSV with a header line, through
// arrow-go's csv writer (nulls as empty fields; nested types are refused by it).
func WriteCSV(w io.Writer, r array.RecordReader) error {
	cw := csv.NewWriter(w, r.Schema(), csv.WithHeader(true), csv.WithNullWriter(""))
	for r.Next() {
		if err := cw.Write(r.RecordBatch()); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	return cw.Flush()
}

// WriteJSON writes the records of r to w as JSON lines, one object per row,
// through arrow-go's array.RecordToJSON.
func WriteJSON(w io.Writer, r array.RecordReader) error {
	for r.Next() {
		if err := array.RecordToJSON(r.RecordBatch(), w); err != nil {
			return err
		}
	}
	return r.Err()
}

// WriteFormat writes r in the named format ("arrow", "csv", "json").
func WriteFormat(w io.Writer, r array.RecordReader, format string) error {
	switch format {
	case "arrow", "":
		return WriteStream(w, r)
	case "csv":
		return WriteCSV(w, r)
	case "json":
		return WriteJSON(w, r)
	}
	return fmt.Errorf("unknown format %q (want arrow, csv or json)", format)
}

// SchemaReader is an empty record reader of schema (to stream a schema alone).
func SchemaReader(schema *arrow.Schema) array.RecordReader {
	r, _ := array.NewRecordReader(schema, nil)
	return r
}
