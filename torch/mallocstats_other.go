//go:build !tcmalloc

package torch

// ReadMallocStats reports false: without the tcmalloc tag the C heap is
// glibc's, which has no such accounting here.
func ReadMallocStats() (MallocStats, bool) { return MallocStats{}, false }

// ReleaseFreeMemory does nothing without tcmalloc.
func ReleaseFreeMemory() {}
