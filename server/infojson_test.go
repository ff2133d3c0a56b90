package server

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"distore/backend"
	"distore/levels"
)

// TestWriteInfo: writeInfo writes exactly what json.Encoder does, for plain
// values (its fast path) and for ones that need escapes or fail (its
// fallback).
func TestWriteInfo(t *testing.T) {
	now := time.Date(2026, 11, 22, 22, 27, 11, 640442526, time.UTC)
	cet := time.FixedZone("CET", 3600)
	for i, info := range []backend.ObjectInfo{
		{},
		{ID: "traj-1", Size: 1 << 20, Level: levels.Memory, Tier: "memory", Importance: 5, Pins: 2,
			Created: now, Accessed: now.Add(time.Second), Checksum: 467447939},
		{ID: "x", Size: math.MaxInt64, Level: levels.Remote, Tier: "s3", Importance: -7, Pins: math.MaxInt32,
			Created: now.In(cet), Accessed: time.Unix(0, 0), Checksum: math.MaxUint32},
		{ID: "a.b_c-D9", Tier: `we"ird\tier<&>`, Created: now},
		{ID: "u", Tier: "tïer\u2028", Created: now},
		{ID: "y", Tier: "memory", Created: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}, // MarshalJSON fails
		{ID: "z", Tier: "memory", Created: now.In(time.FixedZone("odd", 24*3600+60))},
	} {
		var want, got bytes.Buffer
		wantErr := json.NewEncoder(&want).Encode(info)
		gotErr := writeInfo(&got, info)
		if (wantErr == nil) != (gotErr == nil) || got.String() != want.String() {
			t.Errorf("info %d:\n got %q, %v\nwant %q, %v", i, got.String(), gotErr, want.String(), wantErr)
		}
		if _, fast := appendInfo(nil, info); fast != (i <= 2) {
			t.Errorf("info %d: fast path %v", i, fast)
		}
	}
}
