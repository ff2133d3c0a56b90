package cluster

import (
	"fmt"
	"testing"

	"distore/backend"
	"distore/tracker"
)

func members(n int) []tracker.Member {
	var ms []tracker.Member
	for i := range n {
		ms = append(ms, tracker.Member{ID: fmt.Sprintf("n%d", i)})
	}
	return ms
}

// Homes spread evenly, and a leave moves only the IDs the leaver was home of.
func TestHomeBalanceAndStability(t *testing.T) {
	const ids = 20000
	ms := members(10)
	count := map[string]int{}
	before := map[backend.ID]string{}
	for i := range ids {
		id := backend.ID(fmt.Sprintf("obj-%d", i))
		h, _ := home(id, ms)
		count[h.ID]++
		before[id] = h.ID
	}
	for _, m := range ms {
		if c := count[m.ID]; c < ids/10*8/10 || c > ids/10*12/10 {
			t.Fatalf("%s is home of %d of %d IDs; want about %d", m.ID, c, ids, ids/10)
		}
	}
	left := ms[3].ID
	rest := append(append([]tracker.Member{}, ms[:3]...), ms[4:]...)
	for id, old := range before {
		h, _ := home(id, rest)
		if old != left && h.ID != old {
			t.Fatalf("%s moved from %s to %s though only %s left", id, old, h.ID, left)
		}
	}
	if _, ok := home("x", nil); ok {
		t.Fatal("a home among no members")
	}
}

func TestDirectory(t *testing.T) {
	d := newDirectory()
	if err := d.claim("a", "n1", 10, 0); err != nil {
		t.Fatal(err)
	}
	// A streamed put claims before its checksum is known; its announce sets it.
	if c := d.announce("n1", []entry{{ID: "a", Size: 10, Checksum: 7}}); len(c) != 0 {
		t.Fatalf("the claimant's own announce conflicts: %v", c)
	}
	if err := d.claim("a", "n2", 10, 7); err == nil {
		t.Fatal("a second claim of a held ID succeeded")
	}
	if c := d.announce("n2", []entry{{ID: "a", Size: 10, Checksum: 7}}); len(c) != 0 {
		t.Fatalf("a copy's announce conflicts: %v", c)
	}
	if c := d.announce("n3", []entry{{ID: "a", Size: 10, Checksum: 8}}); len(c) != 1 {
		t.Fatalf("a different object under the same ID is not a conflict: %v", c)
	}
	if h := d.where("a"); len(h) != 2 || h[0] != "n1" || h[1] != "n2" {
		t.Fatalf("holders %v, want n1 n2", h)
	}
	d.prune(map[string]bool{"n2": true}, func(backend.ID) bool { return true })
	if h := d.where("a"); len(h) != 1 || h[0] != "n2" {
		t.Fatalf("after n1 left: holders %v", h)
	}
	d.drop("a", "n2")
	if err := d.claim("a", "n4", 1, 1); err != nil {
		t.Fatalf("an ID with no holder left cannot be put again: %v", err)
	}
}
