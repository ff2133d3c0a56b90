package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"distore/backend"
	"distore/wire"
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

// Errors travel as the HTTP API's do (package wire): one table of codes and
// sentinels for every door.
func writeErr(w http.ResponseWriter, err error) {
	status, code := wire.Classify(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(wire.NewErrorBody(code, err))
}

// respErr turns an error answer from node into an error wrapping its sentinel.
func respErr(op, node string, id backend.ID, resp *http.Response) error {
	var eb wire.ErrorBody
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&eb)
	if s := wire.CodeSentinel(eb.Code); s != nil {
		return backend.Errorf(op, "cluster", id, s, "node %s: %s", node, eb.Message)
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
