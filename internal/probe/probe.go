// Package probe holds counters that tests switch on to see how often a hot
// path does a piece of work (e.g. that an object ID is validated once per
// request). Off, a probe costs one pointer load.
package probe

import "sync/atomic"

// IDValidations, when set, counts every backend.ID.Validate call.
var IDValidations atomic.Pointer[atomic.Int64]

// CountIDValidations switches the ID validation counter on and returns it;
// stop switches it off. Tests that use it must not run in parallel.
func CountIDValidations() (n *atomic.Int64, stop func()) {
	n = new(atomic.Int64)
	IDValidations.Store(n)
	return n, func() { IDValidations.CompareAndSwap(n, nil) }
}
