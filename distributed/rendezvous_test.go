package distributed

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRendezvousTimeoutIsOverall: a rank whose master never comes gives up
// after --rendezvous-timeout in all, with one line that says so. The
// master is "localhost", which resolves to two addresses: c10d's connect
// alone retried for the whole timeout on each, so the wait was twice the
// flag (the probe's 612.9 s for 5 minutes). The bound checked is the
// flag plus half of it, against the double wait it replaces.
func TestRendezvousTimeoutIsOverall(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close()) // nobody listens there now

	const timeout = 4 * time.Second
	start := time.Now()
	g, err := Join(context.Background(), Config{Rank: 1, WorldSize: 2, MasterAddr: "localhost", MasterPort: port, Timeout: timeout}, nil)
	took := time.Since(start)
	if g != nil {
		require.NoError(t, g.Close(context.Background(), nil))
	}
	require.Error(t, err)
	msg := err.Error()
	assert.NotContains(t, msg, "\n", "one line")
	assert.NotContains(t, msg, "frame #")
	assert.Contains(t, msg, "rank 1 cannot reach the master")
	assert.Contains(t, msg, "within 4s")
	assert.Less(t, took, timeout+timeout/2, "the whole wait is bounded by the timeout")
}

// TestRendezvousCancelled: cancelling the context ends the wait for the
// master at once, with the cause.
func TestRendezvousCancelled(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Join(ctx, Config{Rank: 1, WorldSize: 2, MasterAddr: "127.0.0.1", MasterPort: port, Timeout: time.Hour}, nil)
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "context canceled"), err.Error())
}
