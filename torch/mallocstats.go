package torch

// MallocStats is the C heap as tcmalloc sees it: what libtorch and the shim
// hold (Allocated), and what tcmalloc keeps mapped but free (PageHeapFree),
// which is resident memory that is not in use. RSS growth with a flat
// Allocated is the allocator keeping memory, not a leak.
type MallocStats struct {
	Allocated, HeapSize, PageHeapFree, Unmapped uint64
}
