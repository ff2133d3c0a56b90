package columnar

// MaxAllocForTest exposes maxAlloc to the tests.
func MaxAllocForTest(size int64) int { return maxAlloc(size) }
