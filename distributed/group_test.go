package distributed

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFromEnv(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		ok   bool
		want Config
		err  string
	}{
		{name: "single process", env: map[string]string{}},
		{name: "torchrun", env: map[string]string{"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29400"},
			ok: true, want: Config{Rank: 3, LocalRank: 1, WorldSize: 4, MasterAddr: "10.0.0.1", MasterPort: 29400}},
		{name: "defaults", env: map[string]string{"RANK": "0", "WORLD_SIZE": "2"},
			ok: true, want: Config{Rank: 0, WorldSize: 2, MasterAddr: "127.0.0.1", MasterPort: 29500}},
		{name: "no world size", env: map[string]string{"RANK": "0"}, ok: true, err: "WORLD_SIZE is not set"},
		{name: "rank outside", env: map[string]string{"RANK": "2", "WORLD_SIZE": "2"}, ok: true, err: "rank 2 is outside world size 2"},
		{name: "not a number", env: map[string]string{"RANK": "x", "WORLD_SIZE": "2"}, ok: true, err: `RANK="x"`},
		{name: "bad port", env: map[string]string{"RANK": "0", "WORLD_SIZE": "2", "MASTER_PORT": "70000"}, ok: true, err: "master port 70000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GLOO_SOCKET_IFNAME"} {
				t.Setenv(k, c.env[k])
			}
			cfg, ok, err := FromEnv()
			assert.Equal(t, c.ok, ok)
			if c.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, cfg)
		})
	}
}
