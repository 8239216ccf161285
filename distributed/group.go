// Package distributed joins embtune processes into one data-parallel
// training group on PyTorch's c10d: a TCPStore on the master for
// rendezvous, and a process group (Gloo on the CPU, NCCL on CUDA) for the
// collectives. It reads torchrun's environment (RANK, LOCAL_RANK,
// WORLD_SIZE, MASTER_ADDR, MASTER_PORT), launches local workers like
// torchrun (Launch), and turns c10d's failures into errors that name ranks.
package distributed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/embtune/embtune/torch"
)

// DefaultTimeout bounds the rendezvous and every collective: long enough
// for a SageMaker host that boots late, short enough that a dead rank is
// reported in minutes (torchrun's rendezvous default is 15 minutes, c10d's
// collective default 30).
const DefaultTimeout = 5 * time.Minute

// BucketBytes is the gradient all-reduce bucket size:
// DistributedDataParallel's bucket_cap_mb default, 25 MiB.
const BucketBytes = 25 << 20

// Config places this process in a group.
type Config struct {
	Rank, LocalRank, WorldSize int
	// MasterAddr:MasterPort serves the TCPStore (rank 0 binds it).
	MasterAddr string
	MasterPort int
	// Timeout bounds the rendezvous and each collective (0: DefaultTimeout).
	Timeout time.Duration
	// Device picks the backend: NCCL for CUDA, Gloo otherwise.
	Device torch.Device
	// Iface names the network interface Gloo binds (GLOO_SOCKET_IFNAME);
	// empty: the address the master is reached from (loopback for a local
	// master, else this host's name).
	Iface string
	// AgentStore: torchrun's elastic agent already serves the TCPStore at
	// MasterAddr:MasterPort (TORCHELASTIC_USE_AGENT_STORE=True), so every
	// rank, rank 0 included, joins it as a client, as
	// torch.distributed.rendezvous._create_c10d_store does.
	AgentStore bool
}

// agentStoreEnv is set by torchrun's LocalElasticAgent to str(True) or
// str(False) for each worker.
const agentStoreEnv = "TORCHELASTIC_USE_AGENT_STORE"

// FromEnv reads torchrun's variables. ok is false when RANK and
// WORLD_SIZE are both absent (a plain single process).
func FromEnv() (cfg Config, ok bool, err error) {
	get := func(k string) (string, bool) {
		v, ok := os.LookupEnv(k)
		return strings.TrimSpace(v), ok && strings.TrimSpace(v) != ""
	}
	_, hasRank := get("RANK")
	_, hasWorld := get("WORLD_SIZE")
	if !hasRank && !hasWorld {
		return Config{}, false, nil
	}
	num := func(k string, def int, must bool) (int, error) {
		v, ok := get(k)
		if !ok {
			if must {
				return 0, fmt.Errorf("%s is not set (torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT together)", k)
			}
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s=%q is not a non-negative integer", k, v)
		}
		return n, nil
	}
	if cfg.Rank, err = num("RANK", 0, true); err != nil {
		return cfg, true, err
	}
	if cfg.WorldSize, err = num("WORLD_SIZE", 0, true); err != nil {
		return cfg, true, err
	}
	if cfg.LocalRank, err = num("LOCAL_RANK", cfg.Rank, false); err != nil {
		return cfg, true, err
	}
	if cfg.MasterPort, err = num("MASTER_PORT", 29500, false); err != nil {
		return cfg, true, err
	}
	cfg.MasterAddr, _ = get("MASTER_ADDR")
	if cfg.MasterAddr == "" {
		cfg.MasterAddr = "127.0.0.1"
	}
	cfg.Iface = os.Getenv("GLOO_SOCKET_IFNAME")
	if v, ok := get(agentStoreEnv); ok {
		// torch compares with str(True); other spellings of true count too.
		if cfg.AgentStore, err = strconv.ParseBool(v); err != nil {
			return cfg, true, fmt.Errorf("%s=%q is not True or False", agentStoreEnv, v)
		}
		// The agent's store outlives a restart with the previous attempt's
		// keys in it, which a new rendezvous would read as its own.
		if n, _ := get("TORCHELASTIC_RESTART_COUNT"); cfg.AgentStore && n != "" && n != "0" {
			return cfg, true, fmt.Errorf("torchrun restarted the workers (TORCHELASTIC_RESTART_COUNT=%s) on its shared store, which embtune cannot rejoin: "+
				"run torchrun with --max-restarts 0 and continue with embtune train --resume", n)
		}
	}
	return cfg, true, cfg.Validate()
}

// Validate checks the ranks and the port.
func (c Config) Validate() error {
	switch {
	case c.WorldSize < 1:
		return fmt.Errorf("world size must be at least 1, got %d", c.WorldSize)
	case c.Rank < 0 || c.Rank >= c.WorldSize:
		return fmt.Errorf("rank %d is outside world size %d", c.Rank, c.WorldSize)
	case c.MasterPort < 1 || c.MasterPort > 65535:
		return fmt.Errorf("master port %d is out of range", c.MasterPort)
	}
	return nil
}

// Group is this process's membership in a training group.
type Group struct {
	cfg   Config
	store *torch.Store
	beat  *torch.Store
	pg    *torch.ProcessGroup

	// agreements counts Agree calls: every rank makes the same calls in the
	// same order, so the count names the round (a fold's run must not read
	// another rank's value from the previous fold).
	agreements int

	stopBeat chan struct{}
	beatDone chan struct{}
	closing  sync.Once
}

func key(parts ...any) string {
	s := "embtune"
	for _, p := range parts {
		s += "/" + fmt.Sprint(p)
	}
	return s
}

// Join performs the rendezvous and builds the process group. Every rank
// must call it; it fails, naming the missing ranks, when they have not all
// arrived within the timeout. worker, when set, runs the process group's
// construction (NCCL binds the calling thread's CUDA device).
func Join(ctx context.Context, cfg Config, worker *torch.Worker) (*Group, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	// One deadline for the whole rendezvous: the master's port, then every
	// rank's join. c10d's own connect retries for its timeout once per
	// address the name resolves to (localhost: ::1 and 127.0.0.1), so it
	// is only called once the port answers.
	deadline := time.Now().Add(cfg.Timeout)
	master := net.JoinHostPort(cfg.MasterAddr, strconv.Itoa(cfg.MasterPort))
	serve := cfg.Rank == 0 && !cfg.AgentStore
	if !serve {
		if err := waitListening(ctx, master, deadline); err != nil {
			if cfg.AgentStore {
				return nil, fmt.Errorf("rendezvous: rank %d cannot reach torchrun's agent store %s within %s: %w", cfg.Rank, master, cfg.Timeout, err)
			}
			return nil, fmt.Errorf("rendezvous: rank %d cannot reach the master %s within %s: %w", cfg.Rank, master, cfg.Timeout, err)
		}
	}
	store, err := torch.NewTCPStore(cfg.MasterAddr, cfg.MasterPort, serve, cfg.Timeout)
	if err != nil {
		if serve {
			return nil, fmt.Errorf("rendezvous: rank 0 cannot serve the store on %s (port in use, or another group's master?): %w", master, err)
		}
		return nil, fmt.Errorf("rendezvous: rank %d cannot reach the master %s within %s: %w", cfg.Rank, master, cfg.Timeout, err)
	}
	g := &Group{cfg: cfg, store: store}
	fail := func(err error) (*Group, error) {
		g.pg.Close()
		g.beat.Close()
		g.store.Close()
		return nil, err
	}
	n, err := store.Add(key("join", cfg.Rank), 1)
	if err != nil {
		return fail(fmt.Errorf("rendezvous: %w", err))
	}
	if n > 1 {
		return fail(fmt.Errorf("rendezvous: rank %d was started twice: another process already joined %s as rank %d", cfg.Rank, master, cfg.Rank))
	}
	host, _ := os.Hostname()
	_ = store.Set(key("who", cfg.Rank), []byte(fmt.Sprintf("%s pid %d", host, os.Getpid())))
	if err := g.waitJoined(ctx, deadline); err != nil {
		return fail(err)
	}
	build := func() error {
		var err error
		if cfg.Device.Type == torch.CUDAType {
			g.pg, err = torch.NewNCCLGroup(store, cfg.Rank, cfg.WorldSize, cfg.Timeout)
		} else {
			g.pg, err = torch.NewGlooGroup(store, cfg.Rank, cfg.WorldSize, g.glooHost(), cfg.Iface, cfg.Timeout)
		}
		return err
	}
	if worker != nil {
		err = worker.Do(ctx, build)
	} else {
		err = build()
	}
	if err != nil {
		return fail(g.Explain(fmt.Errorf("process group: %w", err)))
	}
	if g.beat, err = store.Clone(); err != nil {
		return fail(fmt.Errorf("rendezvous: %w", err))
	}
	g.stopBeat, g.beatDone = make(chan struct{}), make(chan struct{})
	go g.heartbeat()
	return g, nil
}

func (g *Group) glooHost() string {
	if ip := net.ParseIP(g.cfg.MasterAddr); (ip != nil && ip.IsLoopback()) || g.cfg.MasterAddr == "localhost" {
		return "127.0.0.1"
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "127.0.0.1"
}

// waitListening dials addr until it accepts a connection, deadline passes
// or ctx ends; the error says which, in one line.
func waitListening(ctx context.Context, addr string, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var last error
	for {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				if last == nil {
					return errors.New("no answer")
				}
				return fmt.Errorf("last try: %v", last)
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitJoined polls the store until every rank has joined or deadline.
func (g *Group) waitJoined(ctx context.Context, deadline time.Time) error {
	for {
		var missing []int
		for r := 0; r < g.cfg.WorldSize; r++ {
			ok, err := g.store.Has(key("join", r))
			if err != nil {
				return fmt.Errorf("rendezvous: %w", err)
			}
			if !ok {
				missing = append(missing, r)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rendezvous: timed out after %s waiting for rank(s) %s of %d at %s:%d",
				g.cfg.Timeout, ranks(missing), g.cfg.WorldSize, g.cfg.MasterAddr, g.cfg.MasterPort)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rendezvous: %w (missing rank(s) %s)", ctx.Err(), ranks(missing))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ranks(rs []int) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = strconv.Itoa(r)
	}
	return strings.Join(s, ", ")
}

const beatEvery = 500 * time.Millisecond

// heartbeat counts up this rank's key so that Explain can tell live ranks
// from dead ones after a collective fails.
func (g *Group) heartbeat() {
	defer close(g.beatDone)
	t := time.NewTicker(beatEvery)
	defer t.Stop()
	for {
		select {
		case <-g.stopBeat:
			return
		case <-t.C:
			if _, err := g.beat.Add(key("alive", g.cfg.Rank), 1); err != nil {
				return
			}
		}
	}
}

// Explain adds to a failed collective's error which ranks stopped beating:
// c10d reports a closed connection or a timeout, not who is gone.
func (g *Group) Explain(err error) error {
	if err == nil {
		return nil
	}
	counts := func() ([]int64, error) {
		out := make([]int64, g.cfg.WorldSize)
		for r := range out {
			n, err := g.store.Add(key("alive", r), 0)
			if err != nil {
				return nil, err
			}
			out[r] = n
		}
		return out, nil
	}
	before, cerr := counts()
	if cerr == nil {
		time.Sleep(4 * beatEvery)
		var after []int64
		if after, cerr = counts(); cerr == nil {
			var dead []int
			for r := range after {
				if r != g.cfg.Rank && after[r] == before[r] {
					dead = append(dead, r)
				}
			}
			if len(dead) > 0 {
				return fmt.Errorf("rank %d: rank(s) %s stopped (no heartbeat): %w", g.cfg.Rank, ranks(dead), err)
			}
			return fmt.Errorf("rank %d: %w", g.cfg.Rank, err)
		}
	}
	if g.cfg.AgentStore {
		return fmt.Errorf("rank %d: torchrun's agent store at %s:%d is gone: %w", g.cfg.Rank, g.cfg.MasterAddr, g.cfg.MasterPort, err)
	}
	if g.cfg.Rank != 0 {
		return fmt.Errorf("rank %d: rank 0 (the master, serving the store at %s:%d) is gone: %w", g.cfg.Rank, g.cfg.MasterAddr, g.cfg.MasterPort, err)
	}
	return fmt.Errorf("rank %d: %w", g.cfg.Rank, err)
}

// Rank is this process's rank; Size the world size; Main whether it is rank 0.
func (g *Group) Rank() int      { return g.cfg.Rank }
func (g *Group) Size() int      { return g.cfg.WorldSize }
func (g *Group) Main() bool     { return g.cfg.Rank == 0 }
func (g *Group) Config() Config { return g.cfg }

// ProcessGroup is the c10d process group, for collectives on the torch worker.
func (g *Group) ProcessGroup() *torch.ProcessGroup { return g.pg }

// Agree publishes this rank's settings and compares them with every other
// rank's. All ranks get the same verdict: an error naming the first setting
// that differs, with both values.
func (g *Group) Agree(ctx context.Context, what string, settings map[string]string) error {
	b, err := json.Marshal(settings)
	if err != nil {
		return err
	}
	round := g.agreements
	g.agreements++
	if err := g.store.Set(key("agree", round, g.cfg.Rank), b); err != nil {
		return g.Explain(fmt.Errorf("agree on %s: %w", what, err))
	}
	names := make([]string, 0, len(settings))
	for k := range settings {
		names = append(names, k)
	}
	sort.Strings(names)
	var all []map[string]string
	for r := 0; r < g.cfg.WorldSize; r++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v, err := g.store.Get(key("agree", round, r))
		if err != nil {
			return g.Explain(fmt.Errorf("agree on %s: waiting for rank %d: %w", what, r, err))
		}
		var m map[string]string
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("agree on %s: rank %d sent %q: %w", what, r, v, err)
		}
		all = append(all, m)
	}
	for r := 1; r < len(all); r++ {
		keys := names
		for k := range all[r] {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			if all[0][k] != all[r][k] {
				return fmt.Errorf("ranks disagree on %s: %s is %q on rank 0 but %q on rank %d; every rank must run the same command on the same data",
					what, k, all[0][k], all[r][k], r)
			}
		}
	}
	return nil
}

// Close leaves the group: the ranks meet at a barrier (errors are
// returned), then rank 0 waits until every rank has stopped using the store
// before its server goes away.
func (g *Group) Close(ctx context.Context, worker *torch.Worker) error {
	var err error
	g.closing.Do(func() {
		barrier := func() error { return g.pg.Barrier() }
		if worker != nil {
			err = worker.Do(ctx, barrier)
		} else {
			err = barrier()
		}
		if err != nil {
			err = g.Explain(fmt.Errorf("final barrier: %w", err))
		}
		close(g.stopBeat)
		<-g.beatDone
		if _, aerr := g.store.Add(key("left"), 1); aerr == nil && g.Main() && err == nil {
			deadline := time.Now().Add(g.cfg.Timeout)
			for time.Now().Before(deadline) {
				n, aerr := g.store.Add(key("left"), 0)
				if aerr != nil || n >= int64(g.cfg.WorldSize) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		free := func() error { g.pg.Close(); return nil }
		if worker != nil {
			_ = worker.Do(context.WithoutCancel(ctx), free)
		} else {
			free()
		}
		g.beat.Close()
		g.store.Close()
	})
	return err
}

// ErrNotDivisible is returned when the global batch does not split evenly.
var ErrNotDivisible = errors.New("batch size does not divide by the world size")

// Abort leaves the group after a failure, without the barrier (the other
// ranks are failing too, or are gone).
func (g *Group) Abort() {
	g.closing.Do(func() {
		close(g.stopBeat)
		<-g.beatDone
		g.pg.Close()
		g.beat.Close()
		g.store.Close()
	})
}
