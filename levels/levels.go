// Package levels names the storage tiers' levels — GPU, Memory, Disk and Remote —
// as bit flags with Mars's values, so a set of levels is one Level value.
package levels

import (
	"fmt"
	"math/bits"
	"strings"
)

// Level is a set of storage levels. The single levels are bit flags; a union of
// them (GPU|Memory) is a Level too.
type Level uint8

// The single levels, with the values Mars uses.
const (
	GPU    Level = 1
	Memory Level = 2
	Disk   Level = 4
	Remote Level = 8
)

// None is the empty set of levels.
const None Level = 0

// All is every level, fastest first. Iterating it gives the order tiers stack in.
var All = []Level{GPU, Memory, Disk, Remote}

var names = map[Level]string{GPU: "gpu", Memory: "memory", Disk: "disk", Remote: "remote"}

// Names lists the known level names, fastest first.
func Names() []string {
	out := make([]string, len(All))
	for i, l := range All {
		out[i] = names[l]
	}
	return out
}

// Union returns the set of levels in l or o.
func (l Level) Union(o Level) Level { return l | o }

// Contains reports whether every level in o is also in l.
func (l Level) Contains(o Level) bool { return l&o == o }

// IsSingle reports whether l is exactly one known level.
func (l Level) IsSingle() bool { return bits.OnesCount8(uint8(l)) == 1 && l <= Remote }

// Split returns the single levels in l, fastest first.
func (l Level) Split() []Level {
	var out []Level
	for _, s := range All {
		if l&s != 0 {
			out = append(out, s)
		}
	}
	return out
}

// Fastest returns the fastest single level in l, or None for the empty set.
func (l Level) Fastest() Level {
	if s := l.Split(); len(s) > 0 {
		return s[0]
	}
	return None
}

// Faster reports whether l's fastest level is faster than o's fastest level.
func (l Level) Faster(o Level) bool {
	a, b := l.Fastest(), o.Fastest()
	return a != None && (b == None || a < b)
}

// String returns the levels' names joined by commas, fastest first ("memory,disk"),
// "none" for the empty set, and the unknown bits in hex if there are any.
func (l Level) String() string {
	if l == None {
		return "none"
	}
	if name, ok := names[l]; ok {
		return name // one level: no allocation (object info formats it per request)
	}
	var parts []string
	for _, s := range l.Split() {
		parts = append(parts, names[s])
	}
	if rest := l &^ (GPU | Memory | Disk | Remote); rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint8(rest)))
	}
	return strings.Join(parts, ",")
}

// ParseList parses a comma-separated list of level names ("memory,disk") into the
// levels in the order given. Names are case-insensitive and may be padded with
// spaces. An unknown, empty or repeated name is an error that lists the known names.
func ParseList(s string) ([]Level, error) {
	var out []Level
	var seen Level
	for _, raw := range strings.Split(s, ",") {
		name := strings.ToLower(strings.TrimSpace(raw))
		l, ok := byName(name)
		switch {
		case !ok:
			return nil, fmt.Errorf("levels: unknown level %q in %q (known: %s)", name, s, strings.Join(Names(), ", "))
		case seen&l != 0:
			return nil, fmt.Errorf("levels: level %q repeated in %q (known: %s)", name, s, strings.Join(Names(), ", "))
		}
		seen |= l
		out = append(out, l)
	}
	return out, nil
}

// Parse parses a comma-separated list of level names into their union, with the
// same rules as ParseList.
func Parse(s string) (Level, error) {
	if l, ok := byName(s); ok {
		return l, nil // one name as String writes it: no list to build (object info parses it per request)
	}
	list, err := ParseList(s)
	if err != nil {
		return None, err
	}
	var l Level
	for _, x := range list {
		l |= x
	}
	return l, nil
}

func byName(name string) (Level, bool) {
	for _, l := range All {
		if names[l] == name {
			return l, true
		}
	}
	return None, false
}
