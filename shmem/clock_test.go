package shmem

import (
	"testing"
	"time"
)

// TestClockIdles: the coarse clock advances while it is read, stops ticking
// once nobody reads it, and is exact again on the first read after.
func TestClockIdles(t *testing.T) {
	clockStart()
	defer clockStop()
	// Bounds that hold on a loaded machine too (the tests run in parallel
	// packages, under -race): never ahead of the time, and advancing.
	notAhead := func(what string) int64 {
		t.Helper()
		got := coarseNow()
		if now := time.Now().UnixNano(); got > now {
			t.Fatalf("%s: coarse clock %v ahead of the time %v", what, got, now)
		}
		return got
	}
	stopped := !clock.running.Load() // (a ticker of an earlier test may still run)
	before := time.Now().UnixNano()
	first := notAhead("first read")
	if stopped && first < before {
		t.Fatalf("first read: %v, before it %v (a stopped clock reads the time)", first, before)
	}
	if !clock.running.Load() {
		t.Fatal("a read did not start the ticker")
	}
	last := first
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
		time.Sleep(clockTick)
		last = notAhead("while read")
		if !clock.running.Load() {
			t.Fatal("the ticker stopped while read")
		}
	}
	if d := time.Duration(last - first); d < 10*time.Millisecond {
		t.Fatalf("the clock advanced %v in 100 ms of reads", d)
	}

	deadline := time.Now().Add(10 * time.Second)
	for clock.running.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("the ticker still runs with no reader for 10s (idle after %d ticks)", clockIdle)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(20 * clockTick) // the clock's value is now stale
	before = time.Now().UnixNano()
	if got := coarseNow(); got < before {
		t.Fatalf("first read after idling: %v, before it %v", got, before)
	}
	if !clock.running.Load() {
		t.Fatal("a read after idling did not restart the ticker")
	}
}
