package shmem

import (
	"sync"
	"sync/atomic"
	"time"
)

// A coarse clock for access and creation times: reading the time on every Get
// costs as much as the rest of the Get, and LRU order needs no more than
// millisecond resolution. A ticker updates it while any store is set up.
var clock struct {
	now   atomic.Int64 // unix nanoseconds
	mu    sync.Mutex
	users int
	stop  chan struct{}
}

const clockTick = time.Millisecond

// clockStart registers a user of the clock, starting the ticker for the first.
func clockStart() {
	clock.mu.Lock()
	defer clock.mu.Unlock()
	clock.users++
	if clock.users > 1 {
		return
	}
	clock.now.Store(time.Now().UnixNano())
	stop := make(chan struct{})
	clock.stop = stop
	go func() {
		t := time.NewTicker(clockTick)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				clock.now.Store(now.UnixNano())
			case <-stop:
				return
			}
		}
	}()
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
func coarseNow() int64 { return clock.now.Load() }
