package cluster

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"

	"distore/backend"
	"distore/tracker"
)

// Handler returns the cluster's routes, all under RoutePrefix. The server
// mounts it behind its one handler chain, so peers authenticate with the same
// bearer tokens as clients. Public routes:
//
//	GET  /v1/cluster/nodes                   members, this node, health
//	GET  /v1/cluster/groups                  each group's members
//	POST /v1/cluster/groups/{name}/join      this server joins a group
//	POST /v1/cluster/groups/{name}/leave     ... leaves it
//	POST /v1/cluster/objects/{id}/spread     ?group=G or ?nodes=a,b: spread a local object
//	GET  /v1/cluster/spreads/{id}            where a spread has reached
//
// The rest (claim, announce, drop, forget, where, objects/{id}[/info|/relay])
// are for peers.
func (n *Node) Handler() http.Handler {
	m := http.NewServeMux()
	p := RoutePrefix
	m.HandleFunc("GET "+p+"nodes", n.handleNodes)
	m.HandleFunc("GET "+p+"groups", n.handleGroups)
	m.HandleFunc("POST "+p+"groups/{name}/{action}", n.handleGroupAction)
	m.HandleFunc("POST "+p+"claim", n.handleClaim)
	m.HandleFunc("POST "+p+"announce", n.handleAnnounce)
	m.HandleFunc("POST "+p+"drop", n.handleDrop)
	m.HandleFunc("POST "+p+"forget", n.handleForget)
	m.HandleFunc("GET "+p+"where/{id}", n.handleWhere)
	m.HandleFunc("GET "+p+"objects/{id}", n.handleObject)
	m.HandleFunc("GET "+p+"objects/{id}/info", n.handleInfo)
	m.HandleFunc("DELETE "+p+"objects/{id}", n.handleLocalDelete)
	m.HandleFunc("POST "+p+"objects/{id}/relay", n.handleRelay)
	m.HandleFunc("POST "+p+"objects/{id}/spread", n.handleSpread)
	m.HandleFunc("GET "+p+"spreads/{id}", n.handleSpreadStatus)
	m.HandleFunc("POST "+p+"spreads/{id}/reached", n.handleReached)
	m.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, backend.Errorf("route", "cluster", "", backend.ErrNotFound, "no cluster endpoint %s %s", r.Method, r.URL.Path))
	})
	return m
}

// NodesInfo is the body of GET /v1/cluster/nodes.
type NodesInfo struct {
	Self    string           `json:"self"`
	Healthy bool             `json:"healthy"`
	Error   string           `json:"error,omitempty"`
	TTL     string           `json:"lease_ttl"`
	Members []tracker.Member `json:"members"`
}

func (n *Node) handleNodes(w http.ResponseWriter, r *http.Request) {
	ni := NodesInfo{Self: n.self, Healthy: n.tr.Healthy(), TTL: n.tr.TTL().String(), Members: n.tr.Members()}
	if err := n.tr.Err(); err != nil {
		ni.Error = err.Error()
	}
	writeJSON(w, ni)
}

// GroupsInfo is the body of GET /v1/cluster/groups.
type GroupsInfo struct {
	Groups map[string][]string `json:"groups"`
}

func (n *Node) handleGroups(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, GroupsInfo{Groups: n.tr.Groups()})
}

func (n *Node) handleGroupAction(w http.ResponseWriter, r *http.Request) {
	g := r.PathValue("name")
	var err error
	switch r.PathValue("action") {
	case "join":
		err = n.tr.JoinGroup(r.Context(), g)
	case "leave":
		err = n.tr.LeaveGroup(r.Context(), g)
	default:
		err = backend.Errorf("group", "cluster", "", backend.ErrNotFound, "no group action %q (join, leave)", r.PathValue("action"))
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decode reads a bounded JSON body.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(v); err != nil {
		writeErr(w, backend.Errorf("decode", "cluster", "", backend.ErrInvalidArgument, "%s: bad JSON body: %v", r.URL.Path, err))
		return false
	}
	return true
}

func (n *Node) handleClaim(w http.ResponseWriter, r *http.Request) {
	var req claimReq
	if !decode(w, r, &req) {
		return
	}
	if err := backend.CheckID("claim", "cluster", req.Entry.ID); err != nil {
		writeErr(w, err)
		return
	}
	if err := n.dir.claim(req.Entry.ID, req.Node, req.Entry.Size, req.Entry.Checksum); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleAnnounce(w http.ResponseWriter, r *http.Request) {
	var req announceReq
	if !decode(w, r, &req) {
		return
	}
	for _, e := range req.Entries {
		if err := backend.CheckID("announce", "cluster", e.ID); err != nil {
			writeErr(w, err)
			return
		}
	}
	writeJSON(w, announceResp{Conflicts: n.dir.announce(req.Node, req.Entries)})
}

func (n *Node) handleDrop(w http.ResponseWriter, r *http.Request) {
	var req dropReq
	if decode(w, r, &req) {
		n.dir.drop(req.ID, req.Node)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (n *Node) handleForget(w http.ResponseWriter, r *http.Request) {
	var req dropReq
	if decode(w, r, &req) {
		n.dir.forget(req.ID)
		w.WriteHeader(http.StatusNoContent)
	}
}

func pathID(w http.ResponseWriter, r *http.Request, op string) (backend.ID, bool) {
	id := backend.ID(r.PathValue("id"))
	if err := backend.CheckID(op, "cluster", id); err != nil {
		writeErr(w, err)
		return id, false
	}
	return id, true
}

func (n *Node) handleWhere(w http.ResponseWriter, r *http.Request) {
	if id, ok := pathID(w, r, "locate"); ok {
		writeJSON(w, whereResp{Holders: n.dir.where(id)})
	}
}

func (n *Node) handleInfo(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "info")
	if !ok {
		return
	}
	info, err := n.local.ObjectInfo(r.Context(), id)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, info)
}

func (n *Node) handleLocalDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "delete")
	if !ok {
		return
	}
	if err := n.local.Delete(r.Context(), id); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// handleObject streams this node's own copy (never a peer's) from ?offset=.
func (n *Node) handleObject(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "fetch")
	if !ok {
		return
	}
	var off int64
	if v := r.URL.Query().Get("offset"); v != "" {
		var err error
		if off, err = strconv.ParseInt(v, 10, 64); err != nil || off < 0 {
			writeErr(w, backend.Errorf("fetch", "cluster", id, backend.ErrInvalidArgument, "offset %q", v))
			return
		}
	}
	ctx := r.Context()
	info, err := n.local.ObjectInfo(ctx, id)
	if err != nil {
		writeErr(w, err)
		return
	}
	if off > info.Size {
		writeErr(w, backend.Errorf("fetch", "cluster", id, backend.ErrInvalidArgument, "offset %d past the object's %d bytes", off, info.Size))
		return
	}
	rc, err := n.local.OpenReader(ctx, id, off, -1)
	if err != nil {
		writeErr(w, err)
		return
	}
	defer rc.Close()
	setInfo(w.Header(), info)
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size-off, 10))
	w.WriteHeader(http.StatusOK)
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	k, _ := io.CopyBuffer(w, rc, *bp)
	n.met.peerBytes.WithLabelValues("out").Add(float64(k))
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
