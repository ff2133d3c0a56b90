package server

import (
	"errors"
	"net/http"

	"distore/columnar"
	"distore/wire"
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

// columnarError gives the columnar errors their statuses: an unknown column
// 400 unknown_column (its message names the known columns), rows out of
// range 416, not Arrow 415.
func columnarError(err error) error {
	switch {
	case errors.Is(err, columnar.ErrUnknownColumn):
		return errorf(http.StatusBadRequest, wire.CodeUnknownColumn, err.Error())
	case errors.Is(err, columnar.ErrRowRange):
		return errorf(http.StatusRequestedRangeNotSatisfiable, wire.CodeBadRange, err.Error())
	case errors.Is(err, columnar.ErrNotArrow):
		return errorf(http.StatusUnsupportedMediaType, wire.CodeNotArrow, err.Error())
	}
	return err
}
