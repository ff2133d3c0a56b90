// Package spill composes storage tiers into one backend.Backend — a Stack —
// and moves objects between the tiers by importance, pins and demand.
//
//	import (
//		_ "distore/disk"
//		_ "distore/shmem"
//	)
//	tiers, _ := spill.ParseTiers("memory,disk", map[string]backend.Config{
//		"memory": {"capacity": "4GiB"},
//		"disk":   {"dir": "/var/lib/distore"},
//	})
//	s, err := spill.Open(ctx, spill.Options{Tiers: tiers})
//
// # Placement
//
// Tiers are ordered fastest first. A Put lands in the fastest tier that
// accepts it: an object larger than a tier's capacity (or refused by the tier
// with ErrTooLarge) goes to the next tier. When the fastest deserving tier is
// full right now, the Put waits for the mover to make room there — if spilling
// can make room with objects no more important than the new one — bounded by
// its context; waiters get the room in the order they came (FIFO), which keeps
// the tail latency of a sustained put near the lower tier's. Otherwise (the tier is full of pinned or more important
// objects, or its spill is blocked because the tiers below are full) the Put
// goes straight to the next tier that has room, without waiting: throughput,
// and never losing data, over perfect placement. If no tier can take the
// object, the Put fails at once with an ErrFull (*backend.FullError) that
// gives the bytes free and the bytes pinned across the tiers.
//
// Each tier also has an admission floor: once the mover has had to spill
// objects of importance f from a tier, new objects less important than f go
// straight to the tier below (they would be the next victims; writing them to
// the fast tier only to copy them down costs a copy). The floor lifts when the
// tier drains to below 2·low−high of its capacity (0.5 with the defaults).
// The effect, for objects of similar sizes, is that under sustained pressure
// the unpinned objects left in a fast tier are at least as important as those
// spilled or sent below it (Prefetch, an explicit demand, ignores floors).
//
// # Spilling
//
// Each bounded tier has a high and a low watermark (fractions of its capacity,
// DefaultHighWatermark and DefaultLowWatermark unless set). Above the high
// watermark — or when Puts are waiting for room — a background mover spills
// unpinned objects to the next tier with room until the tier is under its low
// watermark. Victims: lowest importance first, then least recently used (Get,
// OpenReader, ObjectInfo, Pin and Prefetch count as uses). At most
// Options.MaxConcurrentMoves moves run at once. Choosing victims scans the
// tier's objects, once per planning round (a round starts as many moves as
// there are free slots).
//
// A move copies the object (Get → Put up to 8 MiB: zero-copy out of a memory
// tier, one transaction into the disk tier; OpenReader → OpenWriter streaming
// beyond, so memory stays bounded; always with PutOptions.Checksum set so the
// destination verifies the CRC-32C, and Importance and Created kept),
// then switches the index, then deletes the source. Readers holding an Object
// keep valid bytes (the tiers guarantee it), and a Get racing the switch is
// retried on the new tier. A Pin racing a spill wins: the spill is cancelled,
// or undone (the copy deleted) if it already copied. A Delete racing a move
// cancels it, waits for it to end, then deletes the one copy that remains.
//
// # Crashes
//
// The index (ID → tier, size, importance, pins, last use) lives only in
// memory and is rebuilt by Open/NewStack by listing the tiers. A crash in the
// middle of a move leaves at most a complete, verified copy in both tiers:
// the rebuild keeps the copy in the slower tier (the more durable one, and
// where the interrupted spill was taking it): it reads that copy back, checks
// it against its checksum and that both copies record the same checksum, and
// only then deletes the faster copy. Otherwise each copy is verified; an
// invalid copy is deleted, and two valid but different copies are both kept
// (the index uses the slower) and reported in the log, since deleting either
// could lose data. Pins are not persisted, as in every tier.
//
// A move keeps the object marked as moving until the copy it gives up (the
// source after a switch, the destination after an undo) is deleted, so a
// second move of the same object can never adopt a copy that is about to go.
//
// # Promotion
//
// Prefetch moves an object up to the fastest tier that has room for it or can
// make room by spilling objects no more important than it, and returns when it
// is there. A Get from a lower tier is served from there; with
// Options.PromoteOnGet (off by default, so reads never cause write traffic
// unless asked) the object is also promoted in the background if a faster
// tier has room under its high watermark. Options.PromoteOnPin does the same
// when an object is pinned (a scheduler pinning the inputs of its next task).
//
// # Pins
//
// Pins are counted in the stack's index; while an object has pins the stack
// also holds one pin in the tier that stores it, so the tier itself refuses to
// delete or evict it. Pinned objects are never spilled (but may be promoted).
package spill
