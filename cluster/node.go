// Package cluster makes a distore server part of a cluster: Node is a
// backend.Backend over the server's local stack that finds objects held by
// other servers, fetches them (streamed, checksummed, one transfer per ID),
// keeps IDs unique in the cluster, deletes every copy, and spreads objects to
// prefetch groups. Handler serves the internal routes peers use.
//
// Where objects are is kept by the servers, not in etcd (docs/cluster.md):
// each ID has a home server by rendezvous hashing over the live members
// (package tracker); the home records the holders; a put registers with the
// home, which refuses a second put of the ID; a get asks the home (one round
// trip) and fetches from a holder; on a membership change holders re-announce,
// in batches, the IDs whose home moved.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"distore/backend"
	"distore/levels"
	"distore/tracker"
)

// Options configure a Node.
type Options struct {
	// Local is this server's own backend (its tier stack). The caller sets it
	// up before New and tears it down after Node.Teardown.
	Local backend.Backend
	// Tracker is this server's membership; the caller closes it after the Node.
	Tracker *tracker.Tracker
	// SpoolDir holds the unlinked spool files of fetches in flight (os.TempDir
	// if empty).
	SpoolDir string
	// Token is the bearer token sent to peers (empty: none).
	Token string
	// HTTPClient talks to peers (nil: a tuned default).
	HTTPClient *http.Client
	// MaxHolders bounds the holders a fetch tries (0: 3).
	MaxHolders int
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Node is a cluster member's backend. It is safe for concurrent use.
type Node struct {
	local      backend.Backend
	stack      backend.Backend // local's trusted view: for IDs validated already
	tr         *tracker.Tracker
	self       string
	peers      *peers
	dir        *directory
	log        *slog.Logger
	met        *metrics
	spoolDir   string
	maxHolders int

	mu        sync.Mutex
	transfers map[backend.ID]*transfer
	lastView  map[string]int64 // member -> incarnation, as last announced to
	changedAt time.Time        // last membership change seen
	spreads   map[backend.ID]*Spread
	located   map[backend.ID]located // recent lookups: ObjectInfo then OpenReader cost one

	stop chan struct{}
	done chan struct{}
}

// New returns a Node and starts following membership changes.
func New(opts Options) (*Node, error) {
	if opts.Local == nil || opts.Tracker == nil {
		return nil, errors.New("cluster: Local and Tracker are required")
	}
	n := &Node{local: opts.Local, stack: backend.Trusted(opts.Local), tr: opts.Tracker, self: opts.Tracker.Self().ID, peers: newPeers(opts.HTTPClient, opts.Token),
		dir: newDirectory(), log: opts.Logger, spoolDir: opts.SpoolDir, maxHolders: opts.MaxHolders,
		transfers: map[backend.ID]*transfer{}, located: map[backend.ID]located{}, lastView: map[string]int64{}, spreads: map[backend.ID]*Spread{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if n.log == nil {
		n.log = slog.Default()
	}
	if n.spoolDir == "" {
		n.spoolDir = os.TempDir()
	}
	if err := os.MkdirAll(n.spoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: spool dir: %w", err)
	}
	if n.maxHolders <= 0 {
		n.maxHolders = 3
	}
	n.met = newMetrics()
	changes := n.tr.Changes()
	go n.follow(changes)
	return n, nil
}

// Self is this node's ID.
func (n *Node) Self() string { return n.self }

// Unwrap returns the local backend (so the server's spill metrics find the stack).
func (n *Node) Unwrap() backend.Backend { return n.local }

// Tracker returns the node's membership.
func (n *Node) Tracker() *tracker.Tracker { return n.tr }

// live returns the members of the current view.
func (n *Node) live() []tracker.Member { return n.tr.Members() }

// homeOf returns id's home in the current view.
func (n *Node) homeOf(id backend.ID) (tracker.Member, error) {
	h, ok := home(id, n.live())
	if !ok {
		return h, backend.Errorf("locate", "cluster", id, backend.ErrUnavailable, "no live members")
	}
	return h, nil
}

// converging reports whether the view changed so recently that homes may not
// have heard from every holder yet.
func (n *Node) converging() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return time.Since(n.changedAt) < convergeWindow
}

// convergeWindow is how long after a membership change a home's "unknown" is
// not trusted and a get asks every member instead.
const convergeWindow = 10 * time.Second

// Setup does nothing: the local backend is set up by its owner.
func (n *Node) Setup(ctx context.Context) error { return nil }

// Teardown stops following membership (the local backend is its owner's).
func (n *Node) Teardown(ctx context.Context) error {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	<-n.done
	return nil
}

// Level is the local backend's.
func (n *Node) Level() levels.Level { return n.local.Level() }

// claim registers this node as id's first holder with id's home.
func (n *Node) claim(ctx context.Context, id backend.ID, size int64, checksum uint32) error {
	h, err := n.homeOf(id)
	if err != nil {
		return err
	}
	e := entry{ID: id, Size: size, Checksum: checksum}
	if h.ID == n.self {
		return n.dir.claim(id, n.self, size, checksum)
	}
	n.met.lookups.WithLabelValues("claim").Inc()
	return n.peers.call(ctx, "put", h.ID, h.Addr, http.MethodPost, "claim", id, claimReq{Node: n.self, Entry: e}, nil)
}

// unclaim undoes a claim whose put failed; best effort (the home also drops
// the records of members that leave).
func (n *Node) unclaim(id backend.ID) {
	n.dropHolder(context.Background(), id, n.self)
}

func (n *Node) dropHolder(ctx context.Context, id backend.ID, node string) {
	h, err := n.homeOf(id)
	if err != nil {
		return
	}
	if h.ID == n.self {
		n.dir.drop(id, node)
		return
	}
	if err := n.peers.call(ctx, "drop", h.ID, h.Addr, http.MethodPost, "drop", id, dropReq{Node: node, ID: id}, nil); err != nil {
		n.log.Debug("cluster: dropping a holder record", "id", id, "home", h.ID, "err", err)
	}
}

func (n *Node) put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	if err := n.claim(ctx, id, int64(len(data)), backend.Checksum(data)); err != nil {
		return backend.ObjectInfo{}, err
	}
	info, err := n.stack.Put(ctx, id, data, opts)
	if err != nil && !errors.Is(err, backend.ErrExists) {
		n.unclaim(id)
	}
	return info, err
}

func (n *Node) openWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	// The checksum is unknown before the bytes: the claim records 0 and the
	// holder's announcements carry the real one.
	if err := n.claim(ctx, id, size, opts.Checksum); err != nil {
		return nil, err
	}
	w, err := n.stack.OpenWriter(ctx, id, size, opts)
	if err != nil {
		if !errors.Is(err, backend.ErrExists) {
			n.unclaim(id)
		}
		return nil, err
	}
	return &claimedWriter{Writer: w, n: n, id: id}, nil
}

type claimedWriter struct {
	backend.Writer
	n    *Node
	id   backend.ID
	once sync.Once
}

func (w *claimedWriter) Close() error {
	err := w.Writer.Close()
	w.once.Do(func() {
		if err != nil {
			w.n.unclaim(w.id)
			return
		}
		// Record the real checksum with the home.
		if info, ierr := w.n.stack.ObjectInfo(context.Background(), w.id); ierr == nil {
			w.n.announce(context.Background(), []entry{{ID: w.id, Size: info.Size, Checksum: info.Checksum}})
		}
	})
	return err
}

func (w *claimedWriter) Abort() error {
	err := w.Writer.Abort()
	w.once.Do(func() { w.n.unclaim(w.id) })
	return err
}

func (n *Node) get(ctx context.Context, id backend.ID) (backend.Object, error) {
	obj, err := n.stack.Get(ctx, id)
	if !errors.Is(err, backend.ErrNotFound) {
		return obj, err
	}
	if err := n.fetch(ctx, id); err != nil {
		return nil, err
	}
	return n.stack.Get(ctx, id)
}

func (n *Node) prefetch(ctx context.Context, id backend.ID) error {
	err := n.stack.Prefetch(ctx, id)
	if !errors.Is(err, backend.ErrNotFound) {
		return err
	}
	if err := n.fetch(ctx, id); err != nil {
		return err
	}
	return n.stack.Prefetch(ctx, id)
}

func (n *Node) openReader(ctx context.Context, id backend.ID, offset, length int64) (backend.Reader, error) {
	rc, err := n.stack.OpenReader(ctx, id, offset, length)
	if !errors.Is(err, backend.ErrNotFound) {
		return rc, err
	}
	t, err := n.startFetch(ctx, id)
	if err != nil {
		return nil, err
	}
	r, err := t.reader(ctx, offset, length)
	t.unref()
	return r, err
}

func (n *Node) objectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	info, err := n.stack.ObjectInfo(ctx, id)
	if !errors.Is(err, backend.ErrNotFound) {
		return info, err
	}
	n.mu.Lock()
	t := n.transfers[id]
	n.mu.Unlock()
	if t != nil {
		if info, err := t.waitInfo(ctx); err == nil {
			return info, nil
		}
	}
	holders, err := n.locate(ctx, id)
	if err != nil {
		return info, err
	}
	n.remember(id, holders)
	var lastErr error
	for _, h := range holders {
		m, ok := n.tr.Member(h)
		if !ok || h == n.self {
			continue
		}
		var ri backend.ObjectInfo
		if lastErr = n.peers.call(ctx, "info", h, m.Addr, http.MethodGet, "objects/"+url.PathEscape(string(id))+"/info", id, nil, &ri); lastErr == nil {
			return ri, nil
		}
	}
	if lastErr == nil {
		lastErr = backend.Errorf("info", "cluster", id, backend.ErrNotFound, "no live holder")
	}
	return info, lastErr
}

// fetch makes a local copy of id, joining a transfer in flight.
func (n *Node) fetch(ctx context.Context, id backend.ID) error {
	t, err := n.startFetch(ctx, id)
	if err != nil {
		return err
	}
	defer t.unref()
	return t.wait(ctx)
}

// startFetch returns the transfer of id (a reference the caller unrefs),
// starting one if none runs: concurrent gets share one transfer.
func (n *Node) startFetch(ctx context.Context, id backend.ID) (*transfer, error) {
	n.mu.Lock()
	if t := n.transfers[id]; t != nil {
		t.mu.Lock()
		t.refs++
		t.mu.Unlock()
		n.mu.Unlock()
		return t, nil
	}
	holders := n.recall(id)
	n.mu.Unlock()
	if holders == nil {
		var err error
		if holders, err = n.locate(ctx, id); err != nil {
			return nil, err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.transfers[id]; t != nil { // started while we looked
		t.mu.Lock()
		t.refs++
		t.mu.Unlock()
		return t, nil
	}
	t := newTransfer(id)
	t.refs++ // the caller's
	n.transfers[id] = t
	n.met.transfers.Inc()
	go n.runTransfer(t, holders)
	return t, nil
}

// located is a recent lookup's answer.
type located struct {
	holders []string
	at      time.Time
}

// locatedTTL is how long a lookup's answer is reused: long enough for a
// server's HEAD-then-GET, short enough that a deleted object is not sought.
const locatedTTL = 2 * time.Second

func (n *Node) remember(id backend.ID, holders []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	if len(n.located) > 4096 {
		for k, v := range n.located {
			if now.Sub(v.at) > locatedTTL {
				delete(n.located, k)
			}
		}
	}
	n.located[id] = located{holders, now}
}

// recall returns a recent lookup's holders (nil if none); n.mu is held.
func (n *Node) recall(id backend.ID) []string {
	l, ok := n.located[id]
	delete(n.located, id)
	if !ok || time.Since(l.at) > locatedTTL {
		return nil
	}
	return l.holders
}

// locate returns the holders of id other than this node: one round trip to
// its home; while membership is converging, also every member that has it.
func (n *Node) locate(ctx context.Context, id backend.ID) ([]string, error) {
	h, err := n.homeOf(id)
	if err != nil {
		return nil, err
	}
	var holders []string
	if h.ID == n.self {
		holders = n.dir.where(id)
		n.met.lookups.WithLabelValues("local").Inc()
	} else {
		var wr whereResp
		err = n.peers.call(ctx, "locate", h.ID, h.Addr, http.MethodGet, "where/"+url.PathEscape(string(id)), id, nil, &wr)
		n.met.lookups.WithLabelValues("home").Inc()
		holders = wr.Holders
	}
	holders = without(holders, n.self)
	if len(holders) > 0 {
		return holders, nil
	}
	if err != nil || n.converging() {
		// The home is unreachable or may not have heard yet: ask everyone.
		n.met.lookups.WithLabelValues("broadcast").Inc()
		holders = n.askAll(ctx, id)
		if len(holders) > 0 {
			return holders, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return nil, backend.Errorf("get", "cluster", id, backend.ErrNotFound, "not held by any of %d live servers", len(n.live()))
}

// askAll asks every other live member whether it holds id, in parallel.
func (n *Node) askAll(ctx context.Context, id backend.ID) []string {
	var mu sync.Mutex
	var out []string
	var wg sync.WaitGroup
	for _, m := range n.live() {
		if m.ID == n.self {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ri backend.ObjectInfo
			if n.peers.call(ctx, "locate", m.ID, m.Addr, http.MethodGet, "objects/"+url.PathEscape(string(id))+"/info", id, nil, &ri) == nil {
				mu.Lock()
				out = append(out, m.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

func without(xs []string, x string) []string {
	out := xs[:0:0]
	for _, v := range xs {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// afterCopy tells the home this node now holds a copy.
func (n *Node) afterCopy(id backend.ID, info backend.ObjectInfo) {
	n.announce(context.Background(), []entry{{ID: id, Size: info.Size, Checksum: info.Checksum}})
}

func (n *Node) delete(ctx context.Context, id backend.ID) error {
	info, lerr := n.stack.ObjectInfo(ctx, id)
	if lerr != nil && !errors.Is(lerr, backend.ErrNotFound) {
		return lerr
	}
	if lerr == nil && info.Pins > 0 {
		return backend.Errorf("delete", "cluster", id, backend.ErrPinned, "pinned on %s (this node)", n.self)
	}
	holders, err := n.locate(ctx, id)
	switch {
	case err == nil:
	case errors.Is(err, backend.ErrNotFound) && lerr == nil:
		// Only here: the home forgot or never heard; delete this copy.
	case lerr == nil:
		// The home cannot be reached: delete this copy, and say others may remain.
		if derr := n.stack.Delete(ctx, id); derr != nil {
			return derr
		}
		return backend.Errorf("delete", "cluster", id, backend.ErrUnavailable, "deleted on %s; other copies may remain: %v", n.self, err)
	default:
		return err
	}
	for _, h := range holders {
		m, ok := n.tr.Member(h)
		if !ok {
			continue
		}
		var ri backend.ObjectInfo
		if err := n.peers.call(ctx, "delete", h, m.Addr, http.MethodGet, "objects/"+url.PathEscape(string(id))+"/info", id, nil, &ri); err == nil && ri.Pins > 0 {
			return backend.Errorf("delete", "cluster", id, backend.ErrPinned, "pinned on %s (%s)", h, m.Addr)
		}
	}
	var failed []string
	for _, h := range holders {
		m, ok := n.tr.Member(h)
		if !ok {
			continue
		}
		err := n.peers.call(ctx, "delete", h, m.Addr, http.MethodDelete, "objects/"+url.PathEscape(string(id)), id, nil, nil)
		if errors.Is(err, backend.ErrPinned) {
			return backend.Errorf("delete", "cluster", id, backend.ErrPinned, "pinned on %s (%s) meanwhile: other copies deleted", h, m.Addr)
		}
		if err != nil && !errors.Is(err, backend.ErrNotFound) {
			failed = append(failed, h+": "+err.Error())
		}
	}
	if lerr == nil {
		if err := n.stack.Delete(ctx, id); err != nil && !errors.Is(err, backend.ErrNotFound) {
			return err
		}
	}
	n.forget(ctx, id)
	if len(failed) > 0 {
		return backend.Errorf("delete", "cluster", id, backend.ErrUnavailable, "copies left on: %s", strings.Join(failed, "; "))
	}
	return nil
}

func (n *Node) forget(ctx context.Context, id backend.ID) {
	h, err := n.homeOf(id)
	if err != nil {
		return
	}
	if h.ID == n.self {
		n.dir.forget(id)
		return
	}
	n.peers.call(ctx, "delete", h.ID, h.Addr, http.MethodPost, "forget", id, dropReq{ID: id}, nil)
}

func (n *Node) pin(ctx context.Context, id backend.ID) error {
	err := n.stack.Pin(ctx, id)
	if !errors.Is(err, backend.ErrNotFound) {
		return err
	}
	if err := n.fetch(ctx, id); err != nil {
		return err
	}
	return n.stack.Pin(ctx, id)
}

func (n *Node) unpin(ctx context.Context, id backend.ID) error { return n.stack.Unpin(ctx, id) }

// List lists this node's own objects.
func (n *Node) List(ctx context.Context, opts backend.ListOptions) ([]backend.ObjectInfo, error) {
	return n.stack.List(ctx, opts)
}

// Stats are this node's own.
func (n *Node) Stats(ctx context.Context) (backend.Stats, error) { return n.local.Stats(ctx) }

// The Backend methods validate the ID once, then do the work on the stack's
// trusted view (it does not validate again). TrustedIDs is the view of a
// caller that validated already (the server, from the request path).

// Put stores data locally after the ID's home accepted it as new in the
// cluster (ErrExists otherwise, naming where it is).
func (n *Node) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	if err := backend.CheckID("put", "cluster", id); err != nil {
		return backend.ObjectInfo{}, err
	}
	return n.put(ctx, id, data, opts)
}

// OpenWriter claims the ID with its home, then writes locally; a write that
// is aborted or fails gives the claim back.
func (n *Node) OpenWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	if err := backend.CheckID("write", "cluster", id); err != nil {
		return nil, err
	}
	return n.openWriter(ctx, id, size, opts)
}

// Get returns the local copy, fetching it from a holder first if there is none.
func (n *Node) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	if err := backend.CheckID("get", "cluster", id); err != nil {
		return nil, err
	}
	return n.get(ctx, id)
}

// Prefetch makes the object local (fetching it), then ready in the fastest tier.
func (n *Node) Prefetch(ctx context.Context, id backend.ID) error {
	if err := backend.CheckID("prefetch", "cluster", id); err != nil {
		return err
	}
	return n.prefetch(ctx, id)
}

// OpenReader reads the local copy, or the object as it arrives from a holder.
func (n *Node) OpenReader(ctx context.Context, id backend.ID, offset, length int64) (backend.Reader, error) {
	if err := backend.CheckID("read", "cluster", id); err != nil {
		return nil, err
	}
	return n.openReader(ctx, id, offset, length)
}

// ObjectInfo is the local copy's info, or a holder's.
func (n *Node) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	if err := backend.CheckID("info", "cluster", id); err != nil {
		return backend.ObjectInfo{}, err
	}
	return n.objectInfo(ctx, id)
}

// Delete removes every copy in the cluster. If a copy is pinned anywhere
// nothing is deleted: ErrPinned naming the node (a pin that lands between
// the check and the delete leaves that one copy, and says so).
func (n *Node) Delete(ctx context.Context, id backend.ID) error {
	if err := backend.CheckID("delete", "cluster", id); err != nil {
		return err
	}
	return n.delete(ctx, id)
}

// Pin pins the local copy, fetching one first if there is none.
func (n *Node) Pin(ctx context.Context, id backend.ID) error {
	if err := backend.CheckID("pin", "cluster", id); err != nil {
		return err
	}
	return n.pin(ctx, id)
}

// Unpin unpins the local copy.
func (n *Node) Unpin(ctx context.Context, id backend.ID) error {
	if err := backend.CheckID("unpin", "cluster", id); err != nil {
		return err
	}
	return n.unpin(ctx, id)
}

// trustedNode is the Node for callers that validated the ID already.
type trustedNode struct{ *Node }

// TrustedIDs returns the Node's view that does not validate IDs again.
func (n *Node) TrustedIDs() backend.Backend { return trustedNode{n} }

func (t trustedNode) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	return t.put(ctx, id, data, opts)
}

func (t trustedNode) OpenWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	return t.openWriter(ctx, id, size, opts)
}

func (t trustedNode) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	return t.get(ctx, id)
}

func (t trustedNode) Prefetch(ctx context.Context, id backend.ID) error { return t.prefetch(ctx, id) }

func (t trustedNode) OpenReader(ctx context.Context, id backend.ID, offset, length int64) (backend.Reader, error) {
	return t.openReader(ctx, id, offset, length)
}

func (t trustedNode) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	return t.objectInfo(ctx, id)
}

func (t trustedNode) Delete(ctx context.Context, id backend.ID) error { return t.delete(ctx, id) }

func (t trustedNode) Pin(ctx context.Context, id backend.ID) error { return t.pin(ctx, id) }

func (t trustedNode) Unpin(ctx context.Context, id backend.ID) error { return t.unpin(ctx, id) }
