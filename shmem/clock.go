package shmem

import (
	"sync"
	"sync/atomic"
	"time"
)

// A coarse clock for access and creation times: reading the time on every Get
// costs as much as the rest of the Get, and access order needs no more than
// millisecond resolution. A ticker updates it while stores are set up and in
// use. After clockIdle ticks in which nobody read it, the ticker stops, and
// the next reader reads the time itself and starts it again: a store at rest
// wakes nothing.
var clock struct {
	now     atomic.Int64 // unix nanoseconds
	running atomic.Bool  // the ticker runs: now is at most a tick old
	read    atomic.Bool  // now was read since the last tick
	mu      sync.Mutex   // guards users, stop, and starting and stopping the ticker
	users   int
	stop    chan struct{} // closed when the last user goes
}

const (
	clockTick = time.Millisecond
	clockIdle = 100 // ticks without a reader before the ticker stops
)

// clockStart registers a user of the clock (a store set up).
func clockStart() {
	clock.mu.Lock()
	defer clock.mu.Unlock()
	clock.users++
	if clock.users == 1 {
		clock.stop = make(chan struct{})
	}
}

// clockStop unregisters a user, stopping the ticker after the last.
func clockStop() {
	clock.mu.Lock()
	defer clock.mu.Unlock()
	clock.users--
	if clock.users == 0 {
		close(clock.stop)
	}
}

// coarseNow returns the time to within a few milliseconds, as unix nanoseconds.
func coarseNow() int64 {
	if !clock.read.Load() {
		clock.read.Store(true) // only on the first read of a tick: no shared write per call
	}
	if clock.running.Load() {
		return clock.now.Load()
	}
	return clockWake()
}

// clockWake reads the time and starts the ticker if a store is set up.
func clockWake() int64 {
	now := time.Now().UnixNano()
	clock.mu.Lock()
	defer clock.mu.Unlock()
	if last := clock.now.Load(); now > last {
		clock.now.Store(now)
	} else {
		now = last // never backwards, whoever stored first
	}
	if clock.users > 0 && !clock.running.Load() {
		clock.running.Store(true)
		go clockRun(clock.stop)
	}
	return now
}

// clockRun ticks until stop is closed or the clock goes unread for clockIdle
// ticks.
func clockRun(stop chan struct{}) {
	t := time.NewTicker(clockTick)
	defer t.Stop()
	idle := 0
	for {
		select {
		case now := <-t.C:
			clock.now.Store(now.UnixNano())
			if clock.read.Swap(false) {
				idle = 0
				continue
			}
			if idle++; idle < clockIdle {
				continue
			}
			clock.mu.Lock()
			quiet := !clock.read.Load() // a reader since the Swap keeps it going
			if quiet {
				clock.running.Store(false)
			}
			clock.mu.Unlock()
			if quiet {
				return
			}
			idle = 0
		case <-stop:
			clock.mu.Lock()
			clock.running.Store(false)
			clock.mu.Unlock()
			return
		}
	}
}
