package distributed

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/torch"
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
		// torchrun's LocalElasticAgent sets str(True) / str(False).
		{name: "agent store", env: map[string]string{"RANK": "0", "WORLD_SIZE": "2", "MASTER_PORT": "29500", "TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RESTART_COUNT": "0"},
			ok: true, want: Config{Rank: 0, WorldSize: 2, MasterAddr: "127.0.0.1", MasterPort: 29500, AgentStore: true}},
		{name: "no agent store", env: map[string]string{"RANK": "0", "WORLD_SIZE": "2", "TORCHELASTIC_USE_AGENT_STORE": "False"},
			ok: true, want: Config{Rank: 0, WorldSize: 2, MasterAddr: "127.0.0.1", MasterPort: 29500}},
		{name: "agent store not a boolean", env: map[string]string{"RANK": "0", "WORLD_SIZE": "2", "TORCHELASTIC_USE_AGENT_STORE": "yes"},
			ok: true, err: `TORCHELASTIC_USE_AGENT_STORE="yes" is not True or False`},
		{name: "restart on the agent store", env: map[string]string{"RANK": "0", "WORLD_SIZE": "2", "TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RESTART_COUNT": "1"},
			ok: true, err: "--max-restarts 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GLOO_SOCKET_IFNAME",
				"TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT"} {
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

// TestAgreeRounds: two ranks in one process. Rank 1 runs ahead into a
// second agreement (a second fold) while rank 0 is still busy; it must wait
// for rank 0's second value, not read its first.
func TestAgreeRounds(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx := context.Background()
	groups := make([]*Group, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			groups[r], errs[r] = Join(ctx, Config{Rank: r, WorldSize: 2, MasterAddr: "127.0.0.1", MasterPort: port, Timeout: 20 * time.Second}, nil)
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fold := range 2 {
				if r == 0 {
					time.Sleep(300 * time.Millisecond) // rank 0 evaluates between folds
				}
				if err := groups[r].Agree(ctx, "training", map[string]string{"data": fmt.Sprint("fold ", fold)}); err != nil {
					errs[r] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	assert.NoError(t, errs[0])
	assert.NoError(t, errs[1])

	// A real disagreement: both ranks refuse, naming the setting.
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = groups[r].Agree(ctx, "training", map[string]string{"lr": fmt.Sprint(r + 1)})
		}()
	}
	wg.Wait()
	for r := range 2 {
		require.Error(t, errs[r])
		assert.Contains(t, errs[r].Error(), `lr is "1" on rank 0 but "2" on rank 1`)
	}
	for r := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); errs[r] = groups[r].Close(ctx, nil) }()
	}
	wg.Wait()
	assert.NoError(t, errs[0])
	assert.NoError(t, errs[1])
}

// TestAgentStore: under torchrun, whose agent already serves the TCPStore
// on MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True), rank 0
// joins that store as a client like every rank, instead of trying to bind
// the port: the group forms, agrees and closes, and the agent's store is
// still there afterwards. Without AgentStore, rank 0 reports the port as
// taken (what it did before).
func TestAgentStore(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	agent, err := torch.NewTCPStore("127.0.0.1", port, true, 20*time.Second) // torchrun's agent
	require.NoError(t, err)
	defer agent.Close()

	_, err = Join(context.Background(), Config{Rank: 0, WorldSize: 2, MasterAddr: "127.0.0.1", MasterPort: port, Timeout: 3 * time.Second}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rank 0 cannot serve the store")

	ctx := context.Background()
	groups := make([]*Group, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			groups[r], errs[r] = Join(ctx, Config{Rank: r, WorldSize: 2, MasterAddr: "127.0.0.1", MasterPort: port, Timeout: 20 * time.Second, AgentStore: true}, nil)
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[r] = groups[r].Agree(ctx, "training", map[string]string{"lr": "2e-5"}); errs[r] == nil {
				errs[r] = groups[r].Close(ctx, nil)
			}
		}()
	}
	wg.Wait()
	assert.NoError(t, errs[0])
	assert.NoError(t, errs[1])
	n, err := agent.Add("embtune/left", 0)
	require.NoError(t, err, "the agent's store outlives the workers")
	assert.Equal(t, int64(2), n, "both ranks used the agent's store")
}
