// Package tracker keeps a distore cluster's membership and groups in etcd.
//
// Each server registers one key, PREFIX/members/<node ID>, whose value is its
// Member record (advertised address, tiers, capacity, groups), under a lease
// that a session keeps alive. A server that dies stops renewing its lease and
// etcd deletes the key within the lease TTL (DefaultTTL, 5 s, unless
// configured): nobody unregisters a dead node by hand. Every server watches
// the prefix, so each one's view of the cluster is current within a watch
// delay. Groups are a field of the record, so joining or leaving one is one
// write of the member's own key.
//
// If etcd goes away the tracker keeps its last view (peers are usually still
// reachable), reports itself unhealthy (Healthy, Err), and keeps trying to
// get a new session; when etcd is back it registers again and reloads the
// view. Object locations are NOT kept in etcd (see package cluster).
package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"distore/backend"
)

// DefaultTTL is the lease TTL when Options.TTL is zero: a dead server
// disappears from every view within this time (plus a watch delay).
const DefaultTTL = 5 * time.Second

// DefaultPrefix is the etcd key prefix when Options.Prefix is empty.
const DefaultPrefix = "/distore/"

// Member is one server's registration.
type Member struct {
	// ID names the node; it is unique in the cluster.
	ID string `json:"id"`
	// Addr is the address peers and clients reach it at (host:port).
	Addr string `json:"addr"`
	// Tiers names its tiers, fastest first; Capacity is their total in bytes.
	Tiers    []string `json:"tiers,omitempty"`
	Capacity int64    `json:"capacity"`
	// Groups are the prefetch groups it belongs to, sorted.
	Groups []string `json:"groups,omitempty"`
	// Incarnation changes each time the node registers (a restart, or a new
	// session after etcd came back), so that others notice a node that
	// restarted within the TTL and lost what it knew.
	Incarnation int64 `json:"incarnation"`
}

// InGroup reports whether m is a member of group g.
func (m Member) InGroup(g string) bool { return slices.Contains(m.Groups, g) }

// Options configure a Tracker.
type Options struct {
	// Client is the etcd client; the caller closes it after the tracker.
	Client *clientv3.Client
	// Prefix is the key prefix of this cluster (DefaultPrefix if empty).
	Prefix string
	// Self is this server's record; Incarnation is set by the tracker.
	Self Member
	// TTL is the lease TTL (DefaultTTL if zero; at least one second).
	TTL time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Tracker registers this server and keeps a view of the others.
type Tracker struct {
	cli    *clientv3.Client
	prefix string
	ttl    time.Duration
	log    *slog.Logger

	mu      sync.Mutex
	self    Member
	view    map[string]Member
	healthy bool
	lastErr error
	sess    *concurrency.Session
	subs    []chan struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

// ErrNoCluster wraps backend.ErrUnavailable: the cluster cannot be reached
// (etcd is down or this server has no session).
var ErrNoCluster = fmt.Errorf("%w: cluster membership unavailable", backend.ErrUnavailable)

// Open registers opts.Self and starts watching. It returns once registered,
// or with an error if etcd cannot be reached before ctx ends.
func Open(ctx context.Context, opts Options) (*Tracker, error) {
	if opts.Client == nil {
		return nil, errors.New("tracker: nil etcd client")
	}
	if opts.Self.ID == "" || strings.ContainsAny(opts.Self.ID, "/ ") {
		return nil, fmt.Errorf("tracker: %w: node ID %q (want non-empty, no '/' or space)", backend.ErrInvalidArgument, opts.Self.ID)
	}
	t := &Tracker{cli: opts.Client, prefix: opts.Prefix, ttl: opts.TTL, log: opts.Logger, self: opts.Self, view: map[string]Member{}, done: make(chan struct{})}
	if t.prefix == "" {
		t.prefix = DefaultPrefix
	}
	if !strings.HasSuffix(t.prefix, "/") {
		t.prefix += "/"
	}
	if t.ttl == 0 {
		t.ttl = DefaultTTL
	}
	if t.ttl < time.Second {
		return nil, fmt.Errorf("tracker: %w: TTL %v below one second", backend.ErrInvalidArgument, t.ttl)
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	t.self.Groups = normGroups(t.self.Groups)
	if err := t.register(ctx); err != nil {
		return nil, err
	}
	if err := t.reload(ctx); err != nil {
		t.sess.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go t.run(rctx)
	return t, nil
}

func (t *Tracker) memberKey(id string) string { return t.prefix + "members/" + id }

// register makes a session and writes this member's key under its lease.
func (t *Tracker) register(ctx context.Context) error {
	// The grant is bounded here: NewSession's own would wait for etcd forever.
	gctx, cancel := context.WithTimeout(ctx, t.ttl)
	lease, err := t.cli.Grant(gctx, int64(t.ttl.Seconds()+0.5))
	cancel()
	if err != nil {
		return fmt.Errorf("tracker: etcd lease: %w: %v", backend.ErrUnavailable, err)
	}
	// The session keeps the lease alive until Close, whatever ctx does.
	sess, err := concurrency.NewSession(t.cli, concurrency.WithLease(lease.ID), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return fmt.Errorf("tracker: etcd lease: %w: %v", backend.ErrUnavailable, err)
	}
	t.mu.Lock()
	t.self.Incarnation = time.Now().UnixNano()
	self := t.self
	t.mu.Unlock()
	if err := t.putSelf(ctx, sess, self); err != nil {
		sess.Close()
		return err
	}
	t.mu.Lock()
	t.sess = sess
	t.healthy = true
	t.lastErr = nil
	t.mu.Unlock()
	return nil
}

func (t *Tracker) putSelf(ctx context.Context, sess *concurrency.Session, self Member) error {
	v, err := json.Marshal(self)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, t.ttl)
	defer cancel()
	if _, err := t.cli.Put(pctx, t.memberKey(self.ID), string(v), clientv3.WithLease(sess.Lease())); err != nil {
		return fmt.Errorf("tracker: registering %s in etcd: %w: %v", self.ID, backend.ErrUnavailable, err)
	}
	return nil
}

// reload reads every member and replaces the view; it returns the revision
// to watch from.
func (t *Tracker) reload(ctx context.Context) error {
	_, err := t.reloadRev(ctx)
	return err
}

func (t *Tracker) reloadRev(ctx context.Context) (int64, error) {
	gctx, cancel := context.WithTimeout(ctx, t.ttl)
	defer cancel()
	resp, err := t.cli.Get(gctx, t.prefix+"members/", clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("tracker: reading members from etcd: %w: %v", backend.ErrUnavailable, err)
	}
	view := map[string]Member{}
	for _, kv := range resp.Kvs {
		var m Member
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			t.log.Warn("tracker: unreadable member record; ignored", "key", string(kv.Key), "err", err)
			continue
		}
		view[m.ID] = m
	}
	t.setView(view)
	return resp.Header.Revision, nil
}

func (t *Tracker) setView(view map[string]Member) {
	t.mu.Lock()
	changed := !maps.EqualFunc(view, t.view, func(a, b Member) bool {
		return a.Incarnation == b.Incarnation && a.Addr == b.Addr && slices.Equal(a.Groups, b.Groups)
	})
	t.view = view
	subs := t.subs
	t.mu.Unlock()
	if changed {
		notify(subs)
	}
}

func notify(subs []chan struct{}) {
	for _, c := range subs {
		select {
		case c <- struct{}{}:
		default: // a notice is pending already
		}
	}
}

// run watches the members and keeps the session; when either fails it
// retries with a bounded backoff for as long as the tracker is open.
func (t *Tracker) run(ctx context.Context) {
	defer close(t.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		t.mu.Lock()
		sess := t.sess
		t.mu.Unlock()
		if sess == nil {
			if err := t.register(ctx); err != nil {
				t.fail(err)
				sleep(ctx, backoff)
				backoff = min(2*backoff, t.ttl/2)
				continue
			}
			t.log.Info("tracker: registered again", "node", t.self.ID)
			t.mu.Lock()
			sess = t.sess
			t.mu.Unlock()
		}
		rev, err := t.reloadRev(ctx)
		if err != nil {
			t.fail(err)
			sleep(ctx, backoff)
			backoff = min(2*backoff, t.ttl/2)
			continue
		}
		backoff = 100 * time.Millisecond
		t.watch(ctx, sess, rev+1)
	}
}

// watch applies member events until the watch or the session fails.
func (t *Tracker) watch(ctx context.Context, sess *concurrency.Session, rev int64) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wc := t.cli.Watch(wctx, t.prefix+"members/", clientv3.WithPrefix(), clientv3.WithRev(rev))
	for {
		select {
		case <-ctx.Done():
			return
		case <-sess.Done():
			t.mu.Lock()
			if t.sess == sess {
				t.sess = nil
			}
			t.mu.Unlock()
			t.fail(fmt.Errorf("tracker: %w: lease of %s lost (etcd unreachable for the TTL %v)", backend.ErrUnavailable, t.self.ID, t.ttl))
			return
		case wr, ok := <-wc:
			if !ok || wr.Err() != nil {
				err := fmt.Errorf("tracker: %w: etcd watch ended", backend.ErrUnavailable)
				if ok {
					err = fmt.Errorf("tracker: %w: etcd watch: %v", backend.ErrUnavailable, wr.Err())
				}
				t.fail(err)
				sleep(ctx, 200*time.Millisecond)
				return
			}
			t.mu.Lock()
			view := maps.Clone(t.view)
			t.healthy = t.sess != nil
			t.mu.Unlock()
			for _, ev := range wr.Events {
				id := strings.TrimPrefix(string(ev.Kv.Key), t.prefix+"members/")
				if ev.Type == clientv3.EventTypeDelete {
					delete(view, id)
					continue
				}
				var m Member
				if err := json.Unmarshal(ev.Kv.Value, &m); err != nil {
					t.log.Warn("tracker: unreadable member record; ignored", "key", string(ev.Kv.Key), "err", err)
					continue
				}
				view[m.ID] = m
			}
			t.setView(view)
		}
	}
}

func (t *Tracker) fail(err error) {
	t.mu.Lock()
	was := t.healthy
	t.healthy, t.lastErr = false, err
	t.mu.Unlock()
	if was {
		t.log.Warn("tracker: cluster membership unavailable; keeping the last view", "err", err)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}

// Self returns this server's record.
func (t *Tracker) Self() Member {
	t.mu.Lock()
	defer t.mu.Unlock()
	return cloneMember(t.self)
}

// TTL returns the lease TTL.
func (t *Tracker) TTL() time.Duration { return t.ttl }

// Members returns the current view, sorted by ID. While etcd is unreachable it
// is the last view seen (see Healthy).
func (t *Tracker) Members() []Member {
	t.mu.Lock()
	out := make([]Member, 0, len(t.view))
	for _, m := range t.view {
		out = append(out, cloneMember(m))
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Member returns one member of the view.
func (t *Tracker) Member(id string) (Member, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.view[id]
	return cloneMember(m), ok
}

// Groups returns each group's members' IDs, sorted.
func (t *Tracker) Groups() map[string][]string {
	out := map[string][]string{}
	for _, m := range t.Members() {
		for _, g := range m.Groups {
			out[g] = append(out[g], m.ID)
		}
	}
	return out
}

// Healthy reports whether this server holds a live session and a watch: if
// not, Err says why and the view may be stale.
func (t *Tracker) Healthy() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.healthy
}

// Err returns nil when healthy, else an error wrapping ErrNoCluster's
// sentinel (backend.ErrUnavailable) that says what failed.
func (t *Tracker) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.healthy {
		return nil
	}
	if t.lastErr != nil {
		return t.lastErr
	}
	return ErrNoCluster
}

// Changes returns a channel that receives a value (coalesced) whenever the
// view changes.
func (t *Tracker) Changes() <-chan struct{} {
	c := make(chan struct{}, 1)
	t.mu.Lock()
	t.subs = append(t.subs, c)
	t.mu.Unlock()
	return c
}

// JoinGroup adds this server to group g (a no-op if it is in it).
func (t *Tracker) JoinGroup(ctx context.Context, g string) error {
	return t.editGroups(ctx, g, true)
}

// LeaveGroup removes this server from group g (a no-op if it is not in it).
func (t *Tracker) LeaveGroup(ctx context.Context, g string) error {
	return t.editGroups(ctx, g, false)
}

// ValidGroup checks a group name: 1-64 characters of [A-Za-z0-9._-].
func ValidGroup(g string) error {
	if g == "" || len(g) > 64 || strings.Trim(g, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return fmt.Errorf("%w: group name %q (1-64 of A-Z a-z 0-9 . _ -)", backend.ErrInvalidArgument, g)
	}
	return nil
}

func (t *Tracker) editGroups(ctx context.Context, g string, join bool) error {
	if err := ValidGroup(g); err != nil {
		return err
	}
	t.mu.Lock()
	sess := t.sess
	old := t.self.Groups
	if join {
		t.self.Groups = normGroups(append(slices.Clone(old), g))
	} else {
		t.self.Groups = slices.DeleteFunc(slices.Clone(old), func(x string) bool { return x == g })
	}
	self := cloneMember(t.self)
	t.mu.Unlock()
	if sess == nil {
		t.mu.Lock()
		t.self.Groups = old
		t.mu.Unlock()
		return fmt.Errorf("tracker: group %q: no etcd session: %w", g, t.Err())
	}
	if err := t.putSelf(ctx, sess, self); err != nil {
		t.mu.Lock()
		t.self.Groups = old
		t.mu.Unlock()
		return err
	}
	return nil
}

// Close revokes the lease (others stop listing this server at once) and stops
// watching.
func (t *Tracker) Close() error {
	t.cancel()
	<-t.done
	t.mu.Lock()
	sess := t.sess
	t.sess = nil
	t.healthy = false
	t.mu.Unlock()
	if sess != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		sess.Client().Revoke(ctx, sess.Lease())
		sess.Orphan()
	}
	return nil
}

func normGroups(gs []string) []string {
	gs = slices.Clone(gs)
	slices.Sort(gs)
	return slices.Compact(gs)
}

func cloneMember(m Member) Member {
	m.Tiers = slices.Clone(m.Tiers)
	m.Groups = slices.Clone(m.Groups)
	return m
}
