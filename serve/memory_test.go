package serve

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// afterBatch reads tcmalloc's statistics at most once per checkEvery, and
// releases at most once per releaseEvery.
func TestMemoryBoundRateLimits(t *testing.T) {
	var m memoryBound
	m.afterBatch()
	first := m.checked
	assert.False(t, first.IsZero(), "the first batch checks")
	m.afterBatch()
	assert.Equal(t, first, m.checked, "a batch within checkEvery does not read the statistics again")
	m.checked = first.Add(-checkEvery)
	m.afterBatch()
	assert.True(t, m.checked.After(first), "a batch after checkEvery checks again")
	m.released = time.Now()
	m.checked = time.Time{}
	m.afterBatch()
	assert.True(t, m.checked.IsZero(), "no check within releaseEvery of a release")
}
