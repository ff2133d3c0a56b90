package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"distore/wire"
)

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
	if errors.As(err, &ae) {
		return ae.status, ae.code
	}
	return wire.Classify(err)
}

// writeError sends err as a JSON error body (headers only for HEAD).
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	body := wire.NewErrorBody(code, err)
	h := w.Header()
	// Headers set for a success that did not happen must not leak into the error.
	for k := range h {
		switch k {
		case "Content-Range", "Www-Authenticate", "Connection": // a 416's size, a 401's scheme, a close
			continue
		}
		delete(h, k)
	}
	h.Set(wire.HeaderErrorCode, code)
	var ae *apiError
	if errors.As(err, &ae) && ae.allow != "" {
		h.Set("Allow", ae.allow)
	}
	if r.Method == http.MethodHead {
		// No body to carry the message: a header does, on one line.
		h.Set(wire.HeaderErrorMessage, wire.OneLine(body.Message))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(body)
}
