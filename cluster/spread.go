package cluster

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"distore/backend"
)

// Spread is the state of one spread of an object to other servers, as the
// origin sees it (GET /v1/cluster/spreads/{id}).
type Spread struct {
	ID      backend.ID `json:"id"`
	Group   string     `json:"group,omitempty"`
	Targets []string   `json:"targets"`
	Reached []string   `json:"reached"`
	Failed  []string   `json:"failed,omitempty"`
	Done    bool       `json:"done"`
	Error   string     `json:"error,omitempty"`
	Started time.Time  `json:"started"`
	Seconds float64    `json:"seconds,omitempty"`
}

// relayResp is a hop's answer: the nodes at and after it that stored the
// object, and those that could not be reached.
type relayResp struct {
	Reached []string `json:"reached"`
	Failed  []string `json:"failed,omitempty"`
}

// SpreadGroup spreads a local object to every member of group g (as the view
// is now: a server that joins later is not sent it) in the background, as a
// pipelined chain; it returns the spread's state at its start.
func (n *Node) SpreadGroup(id backend.ID, g string) (Spread, error) {
	var targets []string
	for _, m := range n.live() {
		if m.InGroup(g) && m.ID != n.self {
			targets = append(targets, m.ID)
		}
	}
	return n.startSpread(id, g, targets)
}

// SpreadTo spreads a local object to the named servers in the background.
func (n *Node) SpreadTo(id backend.ID, nodes []string) (Spread, error) {
	for _, t := range nodes {
		if _, ok := n.tr.Member(t); !ok {
			return Spread{}, backend.Errorf("spread", "cluster", id, backend.ErrInvalidArgument, "no live server %q", t)
		}
	}
	return n.startSpread(id, "", without(nodes, n.self))
}

func (n *Node) startSpread(id backend.ID, g string, targets []string) (Spread, error) {
	if err := backend.CheckID("spread", "cluster", id); err != nil {
		return Spread{}, err
	}
	info, err := n.local.ObjectInfo(context.Background(), id)
	if err != nil {
		return Spread{}, err
	}
	s := &Spread{ID: id, Group: g, Targets: slices.Clone(targets), Reached: []string{}, Started: time.Now()}
	n.mu.Lock()
	n.spreads[id] = s
	snap := *s
	n.mu.Unlock()
	go func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rr, err := n.sendChain(ctx, id, info, targets)
		n.mu.Lock()
		s.Done, s.Failed, s.Seconds = true, rr.Failed, time.Since(s.Started).Seconds()
		for _, r := range rr.Reached {
			if !slices.Contains(s.Reached, r) {
				s.Reached = append(s.Reached, r)
			}
		}
		if err != nil {
			s.Error = err.Error()
		}
		n.mu.Unlock()
		n.met.spreadSeconds.WithLabelValues("chain").Observe(s.Seconds)
	}()
	return snap, nil
}

// SpreadStatus returns the state of the last spread of id started here.
func (n *Node) SpreadStatus(id backend.ID) (Spread, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.spreads[id]
	if !ok {
		return Spread{}, false
	}
	c := *s
	c.Reached, c.Failed = slices.Clone(s.Reached), slices.Clone(s.Failed)
	return c, true
}

// sendChain sends the local copy down the chain; a hop that cannot be reached
// is skipped and the rest are sent to (each hop is skipped at most once, so
// the retries are bounded by the chain's length).
func (n *Node) sendChain(ctx context.Context, id backend.ID, info backend.ObjectInfo, chain []string) (relayResp, error) {
	var out relayResp
	for len(chain) > 0 {
		rc, err := n.local.OpenReader(ctx, id, 0, -1)
		if err != nil {
			return out, err
		}
		rr, err := n.relayTo(ctx, id, info, chain, rc)
		rc.Close()
		out.Reached = append(out.Reached, rr.Reached...)
		out.Failed = append(out.Failed, rr.Failed...)
		if err == nil {
			return out, nil
		}
		n.log.Warn("cluster: spread: hop unreachable; routing around it", "id", id, "hop", chain[0], "err", err)
		out.Failed = append(out.Failed, chain[0])
		chain = chain[1:]
	}
	return out, nil
}

// relayTo POSTs body to chain[0], which stores it and forwards it to the
// rest, and answers who has stored it.
func (n *Node) relayTo(ctx context.Context, id backend.ID, info backend.ObjectInfo, chain []string, body io.Reader) (relayResp, error) {
	var rr relayResp
	m, ok := n.tr.Member(chain[0])
	if !ok {
		return rr, backend.Errorf("spread", "cluster", id, backend.ErrUnavailable, "node %s left", chain[0])
	}
	req, err := n.peers.newReq(ctx, http.MethodPost, m.Addr, "objects/"+url.PathEscape(string(id))+"/relay", nil, io.NopCloser(body))
	if err != nil {
		return rr, err
	}
	req.ContentLength = info.Size
	setInfo(req.Header, info)
	req.Header.Set(headerChain, strings.Join(chain[1:], ","))
	req.Header.Set(headerOrigin, n.self)
	resp, err := n.peers.hc.Do(req)
	if err != nil {
		return rr, backend.Errorf("spread", "cluster", id, backend.ErrUnavailable, "node %s: %v", chain[0], err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rr, respErr("spread", chain[0], id, resp)
	}
	if err := decodeBody(resp.Body, &rr); err != nil {
		return rr, backend.Errorf("spread", "cluster", id, backend.ErrUnavailable, "node %s: bad answer: %v", chain[0], err)
	}
	n.met.peerBytes.WithLabelValues("out").Add(float64(info.Size))
	return rr, nil
}

// Relay pipelining: a hop hands each piece to the next hop as soon as at
// least relayPiece bytes (or the object's tail) have arrived, through a ring
// of relayRing buffers, so receiving, storing and forwarding overlap and a
// hop adds about one piece's time to the chain, in constant memory.
const (
	relayPiece = 256 << 10
	relayRing  = 4
)

// handleRelay stores the streamed object and forwards it to the next hop
// while still receiving (a pipelined chain: reaching N servers costs about
// one transfer time plus N piece delays). A forwarder goroutine (the next
// hop's request body, forwardStream) drains the ring while this one reads the
// next piece and writes its own copy. If the next hop fails, the rest of the
// chain is sent from the stored copy, skipping it.
func (n *Node) handleRelay(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "relay")
	if !ok {
		return
	}
	info, err := parseInfo(id, r.Header)
	if err != nil {
		writeErr(w, backend.Errorf("relay", "cluster", id, err, ""))
		return
	}
	var chain []string
	if c := r.Header.Get(headerChain); c != "" {
		chain = strings.Split(c, ",")
	}
	origin := r.Header.Get(headerOrigin)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	lw, err := n.local.OpenWriter(ctx, id, info.Size, backend.PutOptions{Importance: info.Importance, Checksum: info.Checksum, Created: info.Created})
	// The tier verifies a non-zero checksum as it stores (backend.PutOptions):
	// a second pass here only where it does not.
	verify := info.Checksum == 0
	if errors.Is(err, backend.ErrExists) {
		lw, err, verify = discardWriter{}, nil, false
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	defer lw.Abort()

	bufSize := max(min(int64(chunkSize), info.Size), 1)
	var fs *forwardStream
	var down chan relayDone
	if len(chain) > 0 {
		fs = newForwardStream(relayRing, bufSize)
		down = make(chan relayDone, 1)
		go func() {
			rr, err := n.relayTo(ctx, id, info, chain, fs)
			fs.stop(errDownstream)
			down <- relayDone{rr, err}
		}()
	}
	watchdog := time.AfterFunc(stallTimeout, cancel)
	defer watchdog.Stop()
	var own []byte // the buffer once forwarding has stopped (or at the last hop)
	var crc uint32
	var got int64
	for got < info.Size {
		var buf []byte
		if fs != nil {
			if buf = fs.get(); buf == nil {
				fs = nil // the next hop failed: routed around below
			}
		}
		if buf == nil {
			if own == nil {
				own = make([]byte, bufSize)
			}
			buf = own
		}
		left := info.Size - got
		k, rerr := io.ReadAtLeast(r.Body, buf[:min(int64(len(buf)), left)], int(min(relayPiece, left)))
		if k > 0 {
			watchdog.Reset(stallTimeout)
			if fs != nil && !fs.put(buf[:k]) {
				fs = nil
			}
			if _, err := lw.Write(buf[:k]); err != nil {
				n.abortDown(fs, err)
				writeErr(w, err)
				return
			}
			if verify {
				crc = backend.UpdateChecksum(crc, buf[:k])
			}
			got += int64(k)
			n.met.peerBytes.WithLabelValues("in").Add(float64(k))
		}
		if rerr != nil && got < info.Size {
			err := backend.Errorf("relay", "cluster", id, backend.ErrUnavailable, "stream ended after %d of %d bytes: %v", got, info.Size, rerr)
			n.abortDown(fs, err)
			writeErr(w, err)
			return
		}
	}
	if verify && crc != info.Checksum {
		err := backend.Errorf("relay", "cluster", id, backend.ErrCorrupt, "received crc %08x, sender said %08x", crc, info.Checksum)
		n.abortDown(fs, err)
		writeErr(w, err)
		return
	}
	if err := lw.Close(); err != nil && !errors.Is(err, backend.ErrExists) {
		n.abortDown(fs, err)
		writeErr(w, err)
		return
	}
	n.afterCopy(id, info)
	n.reportReached(origin, id)
	rr := relayResp{Reached: []string{n.self}}
	if down != nil {
		if fs != nil {
			fs.end()
		}
		d := <-down
		rr.Reached = append(rr.Reached, d.rr.Reached...)
		rr.Failed = append(rr.Failed, d.rr.Failed...)
		if d.err != nil {
			// The next hop failed: send the rest from our copy, skipping it.
			n.log.Warn("cluster: relay: next hop failed; routing around it", "id", id, "hop", chain[0], "err", d.err)
			rest, _ := n.sendChain(context.WithoutCancel(ctx), id, info, without(chain[1:], ""))
			rr.Failed = append(rr.Failed, chain[0])
			rr.Reached = append(rr.Reached, rest.Reached...)
			rr.Failed = append(rr.Failed, rest.Failed...)
		}
	}
	writeJSON(w, rr)
}

type relayDone struct {
	rr  relayResp
	err error
}

var errDownstream = errors.New("downstream hop gone")

func (n *Node) abortDown(fs *forwardStream, err error) {
	if fs != nil {
		fs.stop(err)
	}
}

// forwardStream is the body of the request to the next hop: pieces that the
// receiving goroutine put, read in order by the HTTP transport, through a
// ring of buffers. It replaces an io.Pipe, whose Write blocks until the
// reader has taken every byte, so that receiving and forwarding overlap.
type forwardStream struct {
	free   chan []byte // empty ring buffers
	full   chan []byte // pieces to send, in order; closed after the last
	gone   chan struct{}
	once   sync.Once
	err    error // why the stream stopped (set before gone closes)
	cur    []byte
	curBuf []byte
	ended  bool
}

func newForwardStream(ring int, size int64) *forwardStream {
	fs := &forwardStream{free: make(chan []byte, ring), full: make(chan []byte, ring), gone: make(chan struct{})}
	for range ring {
		fs.free <- make([]byte, size)
	}
	return fs
}

// get returns an empty buffer to receive into, or nil once the stream stopped.
func (fs *forwardStream) get() []byte {
	select {
	case b := <-fs.free:
		return b
	case <-fs.gone:
		return nil
	}
}

// put queues a piece (a prefix of a buffer from get); false once the stream
// stopped. The caller may read the piece (store it) but not change it.
func (fs *forwardStream) put(p []byte) bool {
	select {
	case fs.full <- p:
		return true
	case <-fs.gone:
		return false
	}
}

// end marks the last piece queued: the reader gets io.EOF after it.
func (fs *forwardStream) end() {
	if !fs.ended {
		fs.ended = true
		close(fs.full)
	}
}

// stop ends the stream with err: the reader's next Read fails with it.
func (fs *forwardStream) stop(err error) {
	fs.once.Do(func() { fs.err = err; close(fs.gone) })
}

// Read is called by the transport's goroutine only.
func (fs *forwardStream) Read(p []byte) (int, error) {
	for len(fs.cur) == 0 {
		if fs.curBuf != nil {
			fs.free <- fs.curBuf // never blocks: the ring holds every buffer
			fs.curBuf = nil
		}
		select {
		case <-fs.gone:
			return 0, fs.err
		default:
		}
		select {
		case b, ok := <-fs.full:
			if !ok {
				return 0, io.EOF
			}
			fs.cur, fs.curBuf = b, b[:cap(b)]
		case <-fs.gone:
			return 0, fs.err
		}
	}
	k := copy(p, fs.cur)
	fs.cur = fs.cur[k:]
	return k, nil
}

// reportReached tells the spread's origin that this node has the object, so
// progress shows while the chain runs. Best effort.
func (n *Node) reportReached(origin string, id backend.ID) {
	if origin == "" || origin == n.self {
		return
	}
	m, ok := n.tr.Member(origin)
	if !ok {
		return
	}
	go n.peers.call(context.Background(), "spread", origin, m.Addr, http.MethodPost, "spreads/"+url.PathEscape(string(id))+"/reached", id, dropReq{Node: n.self, ID: id}, nil)
}

func (n *Node) handleReached(w http.ResponseWriter, r *http.Request) {
	var req dropReq
	if !decode(w, r, &req) {
		return
	}
	n.mu.Lock()
	if s, ok := n.spreads[backend.ID(r.PathValue("id"))]; ok && !slices.Contains(s.Reached, req.Node) {
		s.Reached = append(s.Reached, req.Node)
	}
	n.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleSpread(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "spread")
	if !ok {
		return
	}
	q := r.URL.Query()
	var s Spread
	var err error
	switch g, nodes := q.Get("group"), q.Get("nodes"); {
	case g != "" && nodes == "":
		s, err = n.SpreadGroup(id, g)
	case nodes != "" && g == "":
		s, err = n.SpreadTo(id, strings.Split(nodes, ","))
	default:
		err = backend.Errorf("spread", "cluster", id, backend.ErrInvalidArgument, "give group= or nodes= (one of them)")
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	writeJSON(w, s)
}

func (n *Node) handleSpreadStatus(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "spread")
	if !ok {
		return
	}
	s, found := n.SpreadStatus(id)
	if !found {
		writeErr(w, backend.Errorf("spread", "cluster", id, backend.ErrNotFound, "no spread of it started on %s", n.self))
		return
	}
	writeJSON(w, s)
}

func decodeBody(r io.Reader, v any) error {
	return jsonDecode(io.LimitReader(r, 1<<20), v)
}
