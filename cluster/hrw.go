package cluster

import (
	"hash/fnv"

	"distore/backend"
	"distore/tracker"
)

// score is the rendezvous (highest random weight) score of node for id: every
// server computes the same score from the same view, so all agree on an ID's
// home without asking anyone.
func score(node string, id backend.ID) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return mix(h.Sum64())
}

// mix is splitmix64's finalizer: FNV's low bits are weak for short keys.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// home returns the member that keeps id's holder records: the highest score.
// When the home leaves, only the IDs it was home of move (to each one's
// next-highest member): about 1/N of them, spread over all the others.
func home(id backend.ID, members []tracker.Member) (tracker.Member, bool) {
	var best tracker.Member
	var bestScore uint64
	found := false
	for _, m := range members {
		if s := score(m.ID, id); !found || s > bestScore || (s == bestScore && m.ID < best.ID) {
			best, bestScore, found = m, s, true
		}
	}
	return best, found
}
