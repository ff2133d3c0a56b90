package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"distore/backend"
)

// Rows is a row range [Start, End) for GetColumns; End -1 means to the end.
type Rows struct{ Start, End int64 }

// ColumnReader streams the record batches of a columnar read. Release it.
type ColumnReader struct {
	*ipc.Reader
	body io.Closer
}

// Release releases the reader and closes the response body.
func (r *ColumnReader) Release() {
	r.Reader.Release()
	r.body.Close()
}

// GetColumnsReader reads the columns (nil: all) and rows (nil: all) of the
// Arrow object id (GET /v1/objects/{id}?columns=&rows=) as a stream of
// record batches, read from the response as they come.
func (c *Client) GetColumnsReader(ctx context.Context, id backend.ID, columns []string, rows *Rows) (*ColumnReader, error) {
	if err := checkID("get columns", id); err != nil {
		return nil, err
	}
	q := url.Values{}
	cols, rs := selectionQuery(columns, rows)
	q.Set("columns", cols)
	if rs != "" {
		q.Set("rows", rs)
	}
	resp, err := c.arrowGet(ctx, "get columns", id, "/v1/objects/"+url.PathEscape(string(id))+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	r, err := ipc.NewReader(resp.Body)
	if err != nil {
		resp.Body.Close()
		return nil, &Error{Op: "get columns", ID: id, Status: resp.StatusCode, Message: err.Error(), err: backend.ErrCorrupt}
	}
	return &ColumnReader{Reader: r, body: resp.Body}, nil
}

// GetColumns is GetColumnsReader read whole into a table. Release it.
func (c *Client) GetColumns(ctx context.Context, id backend.ID, columns []string, rows *Rows) (arrow.Table, error) {
	r, err := c.GetColumnsReader(ctx, id, columns, rows)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	return readTable(r.Reader, id)
}

// selectionQuery returns the columns and rows of a selection as the HTTP
// query and the local socket spell them ("a,c", "1000:2000"; "" for all).
func selectionQuery(columns []string, rows *Rows) (cols, rs string) {
	cols = strings.Join(columns, ",")
	if rows != nil {
		end := ""
		if rows.End >= 0 {
			end = fmt.Sprint(rows.End)
		}
		rs = fmt.Sprintf("%d:%s", rows.Start, end)
	}
	return cols, rs
}

// readTable reads the record batches of r into a table.
func readTable(r *ipc.Reader, id backend.ID) (arrow.Table, error) {
	var recs []arrow.RecordBatch
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	for r.Next() {
		rec := r.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := r.Err(); err != nil {
		return nil, &Error{Op: "get columns", ID: id, Message: err.Error(), err: backend.ErrCorrupt}
	}
	return array.NewTableFromRecords(r.Schema(), recs), nil
}

// Schema returns the schema of the Arrow object id (GET /v1/objects/{id}/schema).
func (c *Client) Schema(ctx context.Context, id backend.ID) (*arrow.Schema, error) {
	if err := checkID("schema", id); err != nil {
		return nil, err
	}
	resp, err := c.arrowGet(ctx, "schema", id, "/v1/objects/"+url.PathEscape(string(id))+"/schema")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	r, err := ipc.NewReader(resp.Body)
	if err != nil {
		return nil, &Error{Op: "schema", ID: id, Status: resp.StatusCode, Message: err.Error(), err: backend.ErrCorrupt}
	}
	defer r.Release()
	return r.Schema(), nil
}

// arrowGet sends a GET of path (below the base URL) through the client's
// http.Client and returns a 200 response; other statuses are errors.
func (c *Client) arrowGet(ctx context.Context, op string, id backend.ID, path string) (*http.Response, error) {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	return c.do(op, id, req, http.StatusOK)
}
