package cluster

import (
	"context"
	"net/http"
	"time"

	"distore/backend"
	"distore/tracker"
)

// announceBatch is the most IDs one announce request carries.
const announceBatch = 2000

// follow re-announces local objects whenever the membership changes, until
// Teardown. A first pass runs at once: a node that (re)starts tells the homes
// of all its objects that it holds them.
func (n *Node) follow(changes <-chan struct{}) {
	defer close(n.done)
	n.reannounce()
	for {
		select {
		case <-n.stop:
			return
		case <-changes:
			n.mu.Lock()
			n.changedAt = time.Now()
			n.mu.Unlock()
			n.reannounce()
		}
	}
}

// reannounce sends, in batches, every local ID whose home moved since the last
// pass (a new home, or the same home restarted: a new incarnation) to its
// home, and prunes this node's own directory. The work is one pass over the
// local index and at most objects/announceBatch requests per home.
func (n *Node) reannounce() {
	start := time.Now()
	members := n.live()
	now := map[string]int64{}
	live := map[string]bool{}
	for _, m := range members {
		now[m.ID] = m.Incarnation
		live[m.ID] = true
	}
	n.mu.Lock()
	before := n.lastView
	n.mu.Unlock()
	n.met.members.Set(float64(len(members)))
	n.dir.prune(live, func(id backend.ID) bool { h, ok := home(id, members); return ok && h.ID == n.self })
	oldMembers := make([]tracker.Member, 0, len(before))
	for id, inc := range before {
		oldMembers = append(oldMembers, tracker.Member{ID: id, Incarnation: inc})
	}
	byHome := map[string][]entry{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var after backend.ID
	total := 0
	for {
		page, err := n.local.List(ctx, backend.ListOptions{After: after, Limit: 1000})
		if err != nil {
			n.log.Warn("cluster: listing local objects to re-announce", "err", err)
			break
		}
		for _, info := range page {
			nh, ok := home(info.ID, members)
			if !ok {
				continue
			}
			oh, had := home(info.ID, oldMembers)
			if had && oh.ID == nh.ID && oh.Incarnation == nh.Incarnation {
				continue // its home knows
			}
			byHome[nh.ID] = append(byHome[nh.ID], entry{ID: info.ID, Size: info.Size, Checksum: info.Checksum})
			total++
			if len(byHome[nh.ID]) >= announceBatch {
				n.announce(ctx, byHome[nh.ID])
				byHome[nh.ID] = nil
			}
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	failed := false
	for _, es := range byHome {
		if len(es) > 0 && !n.announce(ctx, es) {
			failed = true
		}
	}
	if !failed {
		n.mu.Lock()
		n.lastView = now
		n.mu.Unlock()
	}
	n.met.spreadSeconds.WithLabelValues("reannounce").Observe(time.Since(start).Seconds())
	if total > 0 {
		n.log.Info("cluster: re-announced objects whose home moved", "objects", total, "members", len(members), "took", time.Since(start).Round(time.Millisecond), "complete", !failed)
	}
}

// announce tells each entry's home that this node holds it; it reports
// whether every home was reached.
func (n *Node) announce(ctx context.Context, es []entry) bool {
	members := n.live()
	groups := map[string][]entry{}
	for _, e := range es {
		if h, ok := home(e.ID, members); ok {
			groups[h.ID] = append(groups[h.ID], e)
		}
	}
	ok := true
	for hid, batch := range groups {
		var conflicts []backend.ID
		if hid == n.self {
			conflicts = n.dir.announce(n.self, batch)
		} else {
			m, found := n.tr.Member(hid)
			if !found {
				ok = false
				continue
			}
			var ar announceResp
			if err := n.peers.call(ctx, "announce", hid, m.Addr, http.MethodPost, "announce", "", announceReq{Node: n.self, Entries: batch}, &ar); err != nil {
				n.log.Warn("cluster: announcing objects to their home", "home", hid, "objects", len(batch), "err", err)
				ok = false
				continue
			}
			conflicts = ar.Conflicts
		}
		for _, id := range conflicts {
			n.met.conflicts.Inc()
			n.log.Error("cluster: two different objects under one ID (put while the servers could not see each other); this copy is not served to others", "id", id, "home", hid)
		}
	}
	return ok
}
