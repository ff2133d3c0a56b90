package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"distore/backend"
)

// Internal routes, all under RoutePrefix and mounted by the server behind its
// one handler chain (authentication, limits, metrics, logging), so peer
// traffic is authenticated exactly as clients are.
const (
	RoutePrefix = "/v1/cluster/"

	headerSize       = "X-Distore-Size"
	headerChecksum   = "X-Distore-Checksum"
	headerImportance = "X-Distore-Importance"
	headerCreated    = "X-Distore-Created"
	headerChain      = "X-Distore-Chain"
	headerOrigin     = "X-Distore-Origin"
)

// errorBody is the JSON body of an error answer.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// The codes of errorBody, one per sentinel; wire.go is the one table both
// ends use.
var codes = []struct {
	code   string
	status int
	err    error
}{
	{"not_found", http.StatusNotFound, backend.ErrNotFound},
	{"exists", http.StatusConflict, backend.ErrExists},
	{"pinned", http.StatusConflict, backend.ErrPinned},
	{"not_pinned", http.StatusConflict, backend.ErrNotPinned},
	{"invalid_id", http.StatusBadRequest, backend.ErrInvalidID},
	{"invalid_argument", http.StatusBadRequest, backend.ErrInvalidArgument},
	{"full", http.StatusInsufficientStorage, backend.ErrFull},
	{"too_large", http.StatusRequestEntityTooLarge, backend.ErrTooLarge},
	{"corrupt", http.StatusUnprocessableEntity, backend.ErrCorrupt},
	{"unavailable", http.StatusServiceUnavailable, backend.ErrUnavailable},
	{"closed", http.StatusServiceUnavailable, backend.ErrClosed},
}

func writeErr(w http.ResponseWriter, err error) {
	code, status := "internal", http.StatusInternalServerError
	for _, c := range codes {
		if errors.Is(err, c.err) {
			code, status = c.code, c.status
			break
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Code: code, Message: err.Error()})
}

// respErr turns an error answer from node into an error wrapping its sentinel.
func respErr(op, node string, id backend.ID, resp *http.Response) error {
	var eb errorBody
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&eb)
	for _, c := range codes {
		if c.code == eb.Code {
			return backend.Errorf(op, "cluster", id, c.err, "node %s: %s", node, eb.Message)
		}
	}
	return backend.Errorf(op, "cluster", id, backend.ErrUnavailable, "node %s answered %s: %s", node, resp.Status, eb.Message)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// setInfo writes what a receiver needs to store a copy as the original is.
func setInfo(h http.Header, info backend.ObjectInfo) {
	h.Set(headerSize, strconv.FormatInt(info.Size, 10))
	h.Set(headerChecksum, fmt.Sprintf("%08x", info.Checksum))
	h.Set(headerImportance, strconv.Itoa(info.Importance))
	h.Set(headerCreated, info.Created.UTC().Format(time.RFC3339Nano))
}

func parseInfo(id backend.ID, h http.Header) (backend.ObjectInfo, error) {
	info := backend.ObjectInfo{ID: id}
	var err error
	if info.Size, err = strconv.ParseInt(h.Get(headerSize), 10, 64); err != nil || info.Size < 0 {
		return info, fmt.Errorf("%w: bad %s %q", backend.ErrInvalidArgument, headerSize, h.Get(headerSize))
	}
	c, err := strconv.ParseUint(h.Get(headerChecksum), 16, 32)
	if err != nil {
		return info, fmt.Errorf("%w: bad %s %q", backend.ErrInvalidArgument, headerChecksum, h.Get(headerChecksum))
	}
	info.Checksum = uint32(c)
	if v := h.Get(headerImportance); v != "" {
		if info.Importance, err = strconv.Atoi(v); err != nil {
			return info, fmt.Errorf("%w: bad %s %q", backend.ErrInvalidArgument, headerImportance, v)
		}
	}
	if v := h.Get(headerCreated); v != "" {
		if info.Created, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return info, fmt.Errorf("%w: bad %s %q", backend.ErrInvalidArgument, headerCreated, v)
		}
	}
	return info, nil
}

// Bodies of the internal JSON routes.
type (
	claimReq struct {
		Node  string `json:"node"`
		Entry entry  `json:"entry"`
	}
	announceReq struct {
		Node    string  `json:"node"`
		Entries []entry `json:"entries"`
	}
	announceResp struct {
		Conflicts []backend.ID `json:"conflicts,omitempty"`
	}
	whereResp struct {
		Holders []string `json:"holders"`
	}
	dropReq struct {
		Node string     `json:"node"`
		ID   backend.ID `json:"id"`
	}
)
