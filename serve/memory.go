package serve

import (
	"runtime/debug"
	"time"

	"github.com/embtune/embtune/torch"
)

// Measured (docs/benchmarks.md, "Serving"): under a steady mixed load RSS grew
// 21% after warm-up while the C heap in use stayed flat; the growth was
// tcmalloc keeping freed activation pages for reuse, not a leak. These bound
// what it keeps.
var (
	// idleRelease is how long the batcher waits without work before it
	// hands all free memory (C and Go heaps) back to the operating system.
	idleRelease = 2 * time.Second
	// keepFreeBytes is how much free memory tcmalloc may keep under load;
	// above it the batcher releases, at most once per releaseEvery, so the
	// pages faulted back in cost little.
	keepFreeBytes uint64 = 64 << 20
	releaseEvery         = 5 * time.Second
)

// releaseMemory returns what tcmalloc and the Go heap keep free but mapped.
func releaseMemory() {
	torch.ReleaseFreeMemory()
	debug.FreeOSMemory()
}

// checkEvery is how often, at most, the batcher reads tcmalloc's free
// bytes under load: reading them took 37 µs a batch, which single short
// queries (1.5 ms each) felt when it ran after every one.
var checkEvery = time.Second

// memoryBound is the batcher's rate-limited release under load.
type memoryBound struct{ checked, released time.Time }

func (m *memoryBound) afterBatch() {
	now := time.Now()
	if now.Sub(m.checked) < checkEvery || now.Sub(m.released) < releaseEvery {
		return
	}
	m.checked = now
	if st, ok := torch.ReadMallocStats(); ok && st.PageHeapFree > keepFreeBytes {
		torch.ReleaseFreeMemory()
		m.released = now
	}
}
