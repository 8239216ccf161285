package distributed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Node places a launch among several hosts (torchrun's --nnodes,
// --node-rank, --master-addr); the zero value is one host on loopback.
type Node struct {
	Rank, Count int
	MasterAddr  string
}

// Launch starts n local workers of exe with args, as torchrun
// --nproc-per-node n does: each gets LOCAL_RANK i and LOCAL_WORLD_SIZE n,
// RANK node.Rank·n+i and WORLD_SIZE node.Count·n, and MASTER_ADDR/
// MASTER_PORT of the store (loopback and a free port for one node). Rank 0's stdout goes to stdout, every rank's stderr
// to stderr. When ctx ends, the workers get SIGTERM (rank 0 checkpoints).
// When one fails, the others have grace to fail on their own with an error
// naming it, then are terminated. The result joins every failed rank's
// exit status.
func Launch(ctx context.Context, exe string, args []string, n int, node Node, port int, grace time.Duration, stdout, stderr io.Writer) error {
	if n < 1 {
		return fmt.Errorf("--nproc-per-node must be at least 1, got %d", n)
	}
	if node.Count < 1 {
		node = Node{Count: 1, MasterAddr: "127.0.0.1"}
	}
	if port == 0 && node.Count > 1 {
		return fmt.Errorf("launch: several nodes need a fixed master port")
	}
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return fmt.Errorf("launch: choosing a master port: %w", err)
		}
	}
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		c := exec.Command(exe, args...)
		c.Env = append(os.Environ(),
			"RANK="+strconv.Itoa(node.Rank*n+i), "LOCAL_RANK="+strconv.Itoa(i),
			"WORLD_SIZE="+strconv.Itoa(node.Count*n), "LOCAL_WORLD_SIZE="+strconv.Itoa(n),
			"MASTER_ADDR="+node.MasterAddr, "MASTER_PORT="+strconv.Itoa(port))
		c.Stdout = io.Discard
		if node.Rank*n+i == 0 {
			c.Stdout = stdout
		}
		c.Stderr = stderr
		cmds[i] = c
	}
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			for _, d := range cmds[:i] {
				d.Process.Kill() //nolint:errcheck
				d.Wait()         //nolint:errcheck
			}
			return fmt.Errorf("launch: starting rank %d: %w", i, err)
		}
	}
	type exit struct {
		rank int
		err  error
	}
	exits := make(chan exit, n)
	for i, c := range cmds {
		go func() { exits <- exit{i, c.Wait()} }()
	}
	var mu sync.Mutex
	done := make([]bool, n)
	signalAll := func(sig os.Signal) {
		mu.Lock()
		defer mu.Unlock()
		for i, c := range cmds {
			if !done[i] {
				c.Process.Signal(sig) //nolint:errcheck
			}
		}
	}
	var errs []error
	var deadline <-chan time.Time
	ctxDone := ctx.Done()
	for left := n; left > 0; {
		select {
		case e := <-exits:
			mu.Lock()
			done[e.rank] = true
			mu.Unlock()
			left--
			if e.err != nil {
				errs = append(errs, fmt.Errorf("rank %d: %w", e.rank, e.err))
				if deadline == nil {
					deadline = time.After(grace)
				}
			}
		case <-ctxDone:
			ctxDone = nil
			signalAll(syscall.SIGTERM)
			deadline = time.After(grace)
		case <-deadline:
			signalAll(syscall.SIGTERM)
			deadline = nil
			go func() {
				time.Sleep(10 * time.Second)
				signalAll(syscall.SIGKILL)
			}()
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("launch: %w", errors.Join(errs...))
	}
	return ctx.Err()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
