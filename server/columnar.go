package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"distore/backend"
	"distore/columnar"
	"distore/wire"
	"distore/wire/localproto"
)

// columnarOr routes GET /v1/objects/{id} with a columns or rows parameter to
// the columnar read; other requests go to next.
func (s *Server) columnarOr(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := query(r)
		if r.Method == http.MethodGet && (q.Has("columns") || q.Has("rows")) {
			s.handleColumns(w, r)
			return
		}
		next(w, r)
	}
}

// handleColumns answers GET /v1/objects/{id}?columns=a,c&rows=1000:2000 with
// an Arrow IPC stream of the selection (see docs/columnar.md).
func (s *Server) handleColumns(w http.ResponseWriter, r *http.Request) {
	q := query(r)
	if err := checkQuery(q, "columns", "rows"); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := pathID(r, "get")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sel, err := columnar.ParseSelection(q.Get("columns"), q.Get("rows"))
	if err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, wire.CodeInvalidArgument, err.Error()))
		return
	}
	res, err := columnar.Select(r.Context(), s.ids, id, sel)
	if err != nil {
		s.fail(w, r, columnarError(err))
		return
	}
	defer res.Close()
	rr, err := res.Reader()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rr.Release()
	w.Header().Set("Content-Type", columnar.StreamContentType)
	w.WriteHeader(http.StatusOK)
	if err := columnar.WriteStream(w, rr); err != nil {
		s.log.Warn("columnar stream cut short", "id", string(id), "err", err)
	}
}

// handleSchema answers GET /v1/objects/{id}/schema with an Arrow IPC stream
// holding only the schema.
func (s *Server) handleSchema(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(query(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := pathID(r, "schema")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	schema, err := columnar.ReadSchema(r.Context(), s.ids, id)
	if err != nil {
		s.fail(w, r, columnarError(err))
		return
	}
	w.Header().Set("Content-Type", columnar.StreamContentType)
	w.WriteHeader(http.StatusOK)
	if err := columnar.WriteStream(w, columnar.SchemaReader(schema)); err != nil {
		s.log.Warn("schema stream cut short", "id", string(id), "err", err)
	}
}

type columnarCodeEntry struct {
	err    error
	status int
	code   string
}

// columnarCodes are the columnar errors' codes and HTTP statuses: an unknown
// column 400 unknown_column (its message names the known columns), rows out
// of range 416, not Arrow 415. The local socket answers the same codes.
var columnarCodes = []columnarCodeEntry{
	{columnar.ErrUnknownColumn, http.StatusBadRequest, wire.CodeUnknownColumn},
	{columnar.ErrRowRange, http.StatusRequestedRangeNotSatisfiable, wire.CodeBadRange},
	{columnar.ErrNotArrow, http.StatusUnsupportedMediaType, wire.CodeNotArrow},
}

// columnarError gives the columnar errors their HTTP statuses and codes.
func columnarError(err error) error {
	if c, ok := columnarCode(err); ok {
		return errorf(c.status, c.code, err.Error())
	}
	return err
}

// localColumnarError gives the columnar errors their codes on the local socket.
func localColumnarError(err error) error {
	if c, ok := columnarCode(err); ok {
		return localproto.WithCode(c.code, err)
	}
	return err
}

// columnarCode finds err's entry in columnarCodes.
func columnarCode(err error) (columnarCodeEntry, bool) {
	for _, c := range columnarCodes {
		if errors.Is(err, c.err) {
			return c, true
		}
	}
	return columnarCodeEntry{}, false
}

// columns answers OpSelect and OpSchema: the selection (or the schema alone)
// as an Arrow IPC stream in ReplyChunk frames, then ReplyOK. An error before
// the first chunk is the reply; one after it ends the stream, which the
// client then discards. Writes are bounded by the I/O timeout, so a client
// that stops reading cannot hold the connection's goroutine.
func (c *localConn) columns(op byte, id backend.ID, cols, rows string) bool {
	ctx, cancel := context.WithTimeout(c.ctx, c.s.ioTO)
	defer cancel()
	var rr array.RecordReader
	if op == localproto.OpSchema {
		schema, err := columnar.ReadSchema(ctx, c.s.b, id)
		if err != nil {
			return c.replyErr(localColumnarError(err))
		}
		rr = columnar.SchemaReader(schema)
	} else {
		sel, err := columnar.ParseSelection(cols, rows)
		if err != nil {
			return c.replyErr(fmt.Errorf("select %s: %w: %w", id, backend.ErrInvalidArgument, err))
		}
		res, err := columnar.Select(ctx, c.s.b, id, sel)
		if err != nil {
			return c.replyErr(localColumnarError(err))
		}
		defer res.Close()
		if rr, err = res.Reader(); err != nil {
			return c.replyErr(err)
		}
	}
	defer rr.Release()
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.ioTO))
	defer c.nc.SetWriteDeadline(time.Time{})
	cw := &chunkWriter{c: c}
	bw := bufio.NewWriterSize(cw, localproto.MaxChunk)
	err := columnar.WriteStream(bw, rr)
	if err == nil {
		err = bw.Flush()
	}
	if cw.lost {
		return false
	}
	if err != nil {
		c.log.Warn("local socket: columnar stream cut short", "id", string(id), "err", err)
		return c.replyErr(err)
	}
	return c.replyOK()
}

// chunkWriter sends what is written to it as ReplyChunk frames.
type chunkWriter struct {
	c    *localConn
	lost bool // a send failed: the connection is gone
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), localproto.MaxChunk)
		if !w.c.send(w.c.frame(w.c.enc.Begin(localproto.ReplyChunk).Bytes(p[:k])), nil) {
			w.lost = true
			return n, net.ErrClosed
		}
		p, n = p[k:], n+k
	}
	return n, nil
}
