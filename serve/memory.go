package serve

import (
	"runtime/debug"
	"time"

	"github.com/embtune/embtune/torch"
)

// idleRelease is how long the batcher waits without work before it hands
// free memory back to the operating system.
var idleRelease = 2 * time.Second

// releaseMemory returns what tcmalloc and the Go heap keep free but mapped.
// Measured (README, "Serving memory"): after a burst of large batches RSS
// otherwise stays at its peak, because tcmalloc keeps the freed activation
// pages for reuse; the memory is not leaked, only kept. Releasing when idle
// costs nothing under load and bounds what an idle server holds.
func releaseMemory() {
	torch.ReleaseFreeMemory()
	debug.FreeOSMemory()
}
