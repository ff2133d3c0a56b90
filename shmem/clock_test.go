package shmem

import (
	"testing"
	"time"
)

// TestClockIdles: the coarse clock stays within a few ticks of the time
// while it is read, stops ticking once nobody reads it, and is exact again
// on the first read after.
func TestClockIdles(t *testing.T) {
	clockStart()
	defer clockStop()
	near := func(what string) {
		t.Helper()
		before := time.Now().UnixNano()
		got := coarseNow()
		if after := time.Now().UnixNano(); got < before-int64(5*clockTick) || got > after {
			t.Fatalf("%s: coarse clock %v off the time [%v, %v]", what, got, before, after)
		}
	}
	near("first read")
	if !clock.running.Load() {
		t.Fatal("a read did not start the ticker")
	}
	for range 50 {
		time.Sleep(clockTick)
		near("while read")
	}
	if !clock.running.Load() {
		t.Fatal("the ticker stopped while read")
	}

	deadline := time.Now().Add(10 * time.Second)
	for clock.running.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("the ticker still runs with no reader for 10s (idle after %d ticks)", clockIdle)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(20 * clockTick) // the clock's value is now stale
	before := time.Now().UnixNano()
	if got := coarseNow(); got < before {
		t.Fatalf("first read after idling: %v, before it %v", got, before)
	}
	if !clock.running.Load() {
		t.Fatal("a read after idling did not restart the ticker")
	}
}
