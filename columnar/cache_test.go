package columnar

import (
	"container/list"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"distore/backend"
)

// TestLayoutCacheBound: the cache holds at most max nodes (a layout counts
// one, plus one per batch, plus its learnt templates), evicting the least
// recently used layouts first; a layout that learns more is re-accounted.
func TestLayoutCacheBound(t *testing.T) {
	c := &layoutCache{byKey: map[layoutKey]*list.Element{}, max: 20}
	schema := arrow.NewSchema(nil, nil)
	key := func(i int) layoutKey { return layoutKey{id: backend.ID("layout" + fmt.Sprint(i)), size: 100} }
	lays := make([]*fileLayout, 4)
	for i := range lays {
		lays[i] = newLayout(100, schema, nil, make([]block, 4), make([]int64, 4)) // 5 nodes each
		c.put(key(i), lays[i])
	}
	if c.nodes != 20 || c.lru.Len() != 4 {
		t.Fatalf("%d nodes in %d layouts, want 20 in 4", c.nodes, c.lru.Len())
	}
	if c.get(key(0)) != lays[0] { // 0 is now the most recently used
		t.Fatal("layout 0 missing")
	}
	lays[2].nodes = 3 // learnt 3 templates: 8 nodes, over the bound
	c.put(key(2), lays[2])
	if c.get(key(1)) != nil || c.get(key(0)) != lays[0] || c.get(key(2)) != lays[2] || c.get(key(3)) != lays[3] {
		t.Fatal("the least recently used layout (1) should have gone, and only it")
	}
	if c.nodes != 18 || c.lru.Len() != 3 || len(c.byKey) != 3 {
		t.Fatalf("%d nodes in %d layouts, want 18 in 3", c.nodes, c.lru.Len())
	}
	huge := newLayout(100, schema, nil, make([]block, 40), make([]int64, 40))
	c.put(key(9), huge)
	if c.get(key(9)) != nil || c.nodes != 18 || c.get(key(0)) != lays[0] {
		t.Fatalf("a layout larger than the bound is not kept, and evicts nothing: %d nodes", c.nodes)
	}
	// Another layout under a key replaces the old one.
	c.put(key(0), lays[3])
	if c.get(key(0)) != lays[3] || c.nodes > c.max {
		t.Fatal("replacing a key's layout")
	}
}
