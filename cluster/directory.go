package cluster

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"distore/backend"
)

// directory is what a home server knows about the IDs it is home of: who holds
// a copy. It lives in memory only; holders re-announce after a membership
// change, so a restarted or new home learns again within a bounded time.
type directory struct {
	mu   sync.Mutex
	recs map[backend.ID]*record
}

type record struct {
	holders  []string // node IDs, sorted
	size     int64
	checksum uint32
}

func newDirectory() *directory { return &directory{recs: map[backend.ID]*record{}} }

// claim registers node as the first holder of a new object. A second,
// different claim of an ID fails with ErrExists naming the holders: this is
// what makes IDs unique in the cluster.
func (d *directory) claim(id backend.ID, node string, size int64, checksum uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.recs[id]; ok && len(r.holders) > 0 {
		return backend.Errorf("put", "cluster", id, backend.ErrExists, "held by %s", strings.Join(r.holders, ", "))
	}
	d.recs[id] = &record{holders: []string{node}, size: size, checksum: checksum}
	return nil
}

// release undoes node's claim (a put that failed).
func (d *directory) release(id backend.ID, node string) { d.drop(id, node) }

// announce records node as a holder of each entry. An entry whose checksum
// differs from the recorded one is a conflict (two objects under one ID, put
// while the servers could not see each other): it is returned and not added.
func (d *directory) announce(node string, entries []entry) (conflicts []backend.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range entries {
		r, ok := d.recs[e.ID]
		if !ok || len(r.holders) == 0 {
			d.recs[e.ID] = &record{holders: []string{node}, size: e.Size, checksum: e.Checksum}
			continue
		}
		if len(r.holders) == 1 && r.holders[0] == node {
			// The claimant's own record: a streamed put claims before the
			// checksum is known.
			r.size, r.checksum = e.Size, e.Checksum
			continue
		}
		if r.checksum != e.Checksum || r.size != e.Size {
			if !slices.Contains(r.holders, node) {
				conflicts = append(conflicts, e.ID)
			}
			continue
		}
		if !slices.Contains(r.holders, node) {
			r.holders = append(r.holders, node)
			sort.Strings(r.holders)
		}
	}
	return conflicts
}

// drop removes node as a holder of id.
func (d *directory) drop(id backend.ID, node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.recs[id]; ok {
		r.holders = slices.DeleteFunc(r.holders, func(h string) bool { return h == node })
		if len(r.holders) == 0 {
			delete(d.recs, id)
		}
	}
}

// forget removes id's record.
func (d *directory) forget(id backend.ID) {
	d.mu.Lock()
	delete(d.recs, id)
	d.mu.Unlock()
}

// where returns id's holders (nil if unknown).
func (d *directory) where(id backend.ID) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.recs[id]; ok {
		return slices.Clone(r.holders)
	}
	return nil
}

// prune drops holders not in live, and the records of IDs whose home is no
// longer this node (isHome false): their new home learns them from holders.
func (d *directory) prune(live map[string]bool, isHome func(backend.ID) bool) (dropped int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, r := range d.recs {
		r.holders = slices.DeleteFunc(r.holders, func(h string) bool { return !live[h] })
		if len(r.holders) == 0 || !isHome(id) {
			delete(d.recs, id)
			dropped++
		}
	}
	return dropped
}

func (d *directory) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.recs)
}

// entry is one announced object.
type entry struct {
	ID       backend.ID `json:"id"`
	Size     int64      `json:"size"`
	Checksum uint32     `json:"checksum"`
}

func (e entry) String() string { return fmt.Sprintf("%s(%d)", e.ID, e.Size) }
