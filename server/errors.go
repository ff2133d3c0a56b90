package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"distore/backend"
)

// Error codes of the HTTP API. They are stable: clients map them back to the
// sentinel errors of package backend (see CodeSentinel).
const (
	CodeInvalidID       = "invalid_id"         // 400: the object ID is malformed
	CodeInvalidArgument = "invalid_argument"   // 400: a bad or unknown parameter
	CodeBadBody         = "bad_body"           // 400: the request body ended before Content-Length
	CodeNotFound        = "not_found"          // 404: no such object
	CodeNoRoute         = "no_route"           // 404: no such endpoint
	CodeMethod          = "method_not_allowed" // 405: the path exists, not with this method
	CodeExists          = "exists"             // 409: the ID is taken
	CodePinned          = "pinned"             // 409: the object is pinned
	CodeNotPinned       = "not_pinned"         // 409: unpin of an object without pins
	CodeLengthRequired  = "length_required"    // 411: PUT without Content-Length
	CodeTooLarge        = "too_large"          // 413: larger than every tier
	CodeBadRange        = "bad_range"          // 416: Range outside the object or malformed
	CodeCorrupt         = "corrupt"            // 422 on put (body does not match the checksum), 500 on read
	CodeFull            = "full"               // 507: no room now (pinned bytes block spilling)
	CodeUnavailable     = "unavailable"        // 503: a tier cannot run
	CodeClosed          = "closed"             // 503: the store is shutting down
	CodeTimeout         = "timeout"            // 504: the request's deadline passed
	CodeCanceled        = "canceled"           // 499-like: the client went away
	CodeInternal        = "internal"           // 500: anything else
)

// HeaderErrorCode carries the error code on every error response, so that a
// HEAD, which has no body, still tells the client what went wrong.
const HeaderErrorCode = "X-Distore-Error-Code"

// HeaderErrorMessage carries the error message on a HEAD's error response.
const HeaderErrorMessage = "X-Distore-Error-Message"

// CodeSentinel maps an error code of the API to the backend sentinel it stands
// for, or nil when there is none.
func CodeSentinel(code string) error {
	switch code {
	case CodeInvalidID:
		return backend.ErrInvalidID
	case CodeInvalidArgument, CodeBadRange, CodeLengthRequired, CodeBadBody:
		return backend.ErrInvalidArgument
	case CodeNotFound:
		return backend.ErrNotFound
	case CodeExists:
		return backend.ErrExists
	case CodePinned:
		return backend.ErrPinned
	case CodeNotPinned:
		return backend.ErrNotPinned
	case CodeTooLarge:
		return backend.ErrTooLarge
	case CodeFull:
		return backend.ErrFull
	case CodeUnavailable:
		return backend.ErrUnavailable
	case CodeClosed:
		return backend.ErrClosed
	case CodeCorrupt:
		return backend.ErrCorrupt
	case CodeTimeout:
		return context.DeadlineExceeded
	case CodeCanceled:
		return context.Canceled
	}
	return nil
}

// ErrorBody is the JSON body of every error response. The sizes are set for
// "full" and "too_large", so a client can rebuild a *backend.FullError.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Requested, Free, Capacity and Pinned are the sizes of a FullError.
	Requested int64 `json:"requested,omitempty"`
	Free      int64 `json:"free,omitempty"`
	Capacity  int64 `json:"capacity,omitempty"`
	Pinned    int64 `json:"pinned,omitempty"`
}

// apiError is an error the handlers raise themselves with a chosen status.
type apiError struct {
	status int
	code   string
	msg    string
	allow  string // the Allow header of a 405
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, code, msg string) error {
	return &apiError{status: status, code: code, msg: msg}
}

// classify returns the HTTP status and code for err.
func classify(err error) (int, string) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.code
	case errors.Is(err, backend.ErrInvalidID):
		return http.StatusBadRequest, CodeInvalidID
	case errors.Is(err, backend.ErrNotFound):
		return http.StatusNotFound, CodeNotFound
	case errors.Is(err, backend.ErrExists):
		return http.StatusConflict, CodeExists
	case errors.Is(err, backend.ErrPinned):
		return http.StatusConflict, CodePinned
	case errors.Is(err, backend.ErrNotPinned):
		return http.StatusConflict, CodeNotPinned
	case errors.Is(err, backend.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, CodeTooLarge
	case errors.Is(err, backend.ErrFull):
		return http.StatusInsufficientStorage, CodeFull
	case errors.Is(err, backend.ErrInvalidArgument):
		return http.StatusBadRequest, CodeInvalidArgument
	case errors.Is(err, backend.ErrUnavailable):
		return http.StatusServiceUnavailable, CodeUnavailable
	case errors.Is(err, backend.ErrClosed):
		return http.StatusServiceUnavailable, CodeClosed
	case errors.Is(err, backend.ErrCorrupt):
		return http.StatusInternalServerError, CodeCorrupt
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, CodeTimeout
	case errors.Is(err, context.Canceled):
		return 499, CodeCanceled // nginx's "client closed request"; nobody reads it
	}
	return http.StatusInternalServerError, CodeInternal
}

// writeError sends err as a JSON error body (headers only for HEAD).
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	body := ErrorBody{Code: code, Message: err.Error()}
	var fe *backend.FullError
	if errors.As(err, &fe) {
		body.Requested, body.Free, body.Capacity, body.Pinned = fe.Requested, fe.Free, fe.Capacity, fe.Pinned
	}
	h := w.Header()
	// Headers set for a success that did not happen must not leak into the error.
	for k := range h {
		if k != "Content-Range" { // a 416 says the object's size in it
			delete(h, k)
		}
	}
	h.Set(HeaderErrorCode, code)
	var ae *apiError
	if errors.As(err, &ae) && ae.allow != "" {
		h.Set("Allow", ae.allow)
	}
	if r.Method == http.MethodHead {
		// No body to carry the message: a header does, on one line.
		h.Set(HeaderErrorMessage, strings.Join(strings.Fields(truncate(body.Message)), " "))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(body)
}
