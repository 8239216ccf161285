package torch

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestGlooWorldOfOne drives every c10d call of the binding in a group of
// one (the multi-process paths run in trainer's and cmd's tests).
func TestGlooWorldOfOne(t *testing.T) {
	w, err := NewWorker(1)
	require.NoError(t, err)
	defer w.Close()
	err = w.Do(t.Context(), func() error {
		_, err := NewTCPStore("127.0.0.1", 0, true, time.Second)
		assert.ErrorContains(t, err, "port out of range")

		s, err := NewTCPStore("127.0.0.1", freeTCPPort(t), true, 2*time.Second)
		require.NoError(t, err)
		defer s.Close()
		require.NoError(t, s.Set("k", []byte("v")))
		v, err := s.Get("k")
		require.NoError(t, err)
		assert.Equal(t, "v", string(v))
		ok, err := s.Has("k", "absent")
		require.NoError(t, err)
		assert.False(t, ok)
		n, err := s.Add("n", 2)
		require.NoError(t, err)
		assert.Equal(t, int64(2), n)
		_, err = s.Get("never-set")
		assert.Error(t, err, "a get that times out is an error, not a hang")

		_, err = NewGlooGroup(s, 1, 1, "127.0.0.1", "", time.Second)
		assert.ErrorContains(t, err, "rank 1 outside world size 1")
		g, err := NewGlooGroup(s, 0, 1, "127.0.0.1", "", 2*time.Second)
		require.NoError(t, err)
		defer g.Close()

		x, err := FromFloat32([]float32{1, 2, 3, 4}, 2, 2)
		require.NoError(t, err)
		defer x.Close()
		require.NoError(t, x.SetRequiresGrad(true))
		y, err := g.AllGather(x)
		require.NoError(t, err)
		defer y.Close()
		f, err := y.Float32s()
		require.NoError(t, err)
		assert.Equal(t, []float32{1, 2, 3, 4}, f)

		// x has no gradient yet: it takes part as zeros.
		nb, buckets, err := g.AllReduceGrads([]*Tensor{x}, 8)
		require.NoError(t, err)
		assert.Equal(t, int64(16), nb)
		assert.Equal(t, 1, buckets)
		require.NoError(t, g.AllReduce(x, ReduceMax))
		require.NoError(t, g.Barrier())

		g.Close()
		assert.ErrorIs(t, g.Barrier(), ErrClosed)
		_, err = NewNCCLGroup(s, 0, 1, time.Second)
		assert.Error(t, err, "no NCCL in a CPU build")
		return nil
	})
	require.NoError(t, err)
	assert.Zero(t, Leaked())
}
