package columnar

// MaxAllocForTest exposes maxAlloc to the tests.
func MaxAllocForTest(size int64) int { return maxAlloc(size) }

// ForgetLayoutsForTest empties the layout cache (cold selections).
func ForgetLayoutsForTest() {
	layouts.mu.Lock()
	defer layouts.mu.Unlock()
	for layouts.lru.Len() > 0 {
		layouts.remove(layouts.lru.Front())
	}
}

// BatchLoadsForTest is how many record batches arrow-go loaded so far.
func BatchLoadsForTest() int64 { return batchLoads.Load() }
