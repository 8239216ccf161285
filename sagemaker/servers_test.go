package sagemaker

// Real servers for the AWS tests: MinIO for S3 and moto_server for the
// SageMaker control plane and runtime. `make deps-aws` builds MinIO into
// third_party/bin and installs moto into third_party/moto-venv. Both listen
// on 127.0.0.1 only, on free ports, with their data in the test's temporary
// folder, and are stopped (their whole process group) when the test ends.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

const (
	testAccessKey = "embtune-test"
	testSecretKey = "embtune-test-secret-key"
	testRegion    = "us-east-1"
)

// repoRoot is the module root (the folder holding go.mod).
func embtuneRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's folder")
		}
		dir = parent
	}
}

// awsBinary returns the path of a server binary under the module root, or
// fails the test (skips it with EMBTUNE_SKIP_AWS=1) when it is missing.
func awsBinary(t *testing.T, rel, what string) string {
	t.Helper()
	p := filepath.Join(embtuneRoot(t), rel)
	if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		if os.Getenv("EMBTUNE_SKIP_AWS") == "1" {
			t.Skipf("%s (%s) is missing; skipped because EMBTUNE_SKIP_AWS=1", what, rel)
		}
		t.Fatalf("%s is missing (%s): run `make deps-aws` to build it, or set EMBTUNE_SKIP_AWS=1 to skip the AWS tests", what, rel)
	}
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// testServer is a server process in its own process group.
type testServer struct {
	t    *testing.T
	name string
	argv []string
	env  []string
	log  string
	addr string
	// ready reports whether the server answers.
	ready func(addr string) bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// serverEnv is a minimal environment: nothing of the caller's AWS or MinIO
// settings leaks into the servers.
func serverEnv(home string, extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8"}, extra...)
}

func (s *testServer) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting %s: %v", s.name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait() //nolint:errcheck // the exit is observed through done
		close(done)
	}()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			s.t.Fatalf("%s exited while starting:\n%s", s.name, logTail(s.log))
		default:
		}
		if s.ready(s.addr) {
			return
		}
		if time.Now().After(deadline) {
			s.killLocked()
			s.t.Fatalf("%s did not answer on %s within 60 s:\n%s", s.name, s.addr, logTail(s.log))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill stops the server's process group at once (SIGKILL), as a crash would.
func (s *testServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *testServer) killLocked() {
	if s.cmd == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // may be gone already
	<-s.done
	s.cmd = nil
}

// stop asks the process group to terminate, then kills it.
func (s *testServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM) //nolint:errcheck // may be gone already
	select {
	case <-s.done:
		s.cmd = nil
	case <-time.After(5 * time.Second):
		s.killLocked()
	}
}

func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func httpOK(url string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// minioServer is a single-drive MinIO on 127.0.0.1.
type minioServer struct {
	*testServer
	dir string
}

// URL is the S3 endpoint.
func (m *minioServer) URL() string { return "http://" + m.addr }

// restart starts MinIO again on the same address and data folder.
func (m *minioServer) restart() { m.start() }

// startMinIO runs `minio server` on a fresh data folder. Its root
// credentials are testAccessKey/testSecretKey.
func startMinIO(t *testing.T) *minioServer {
	t.Helper()
	bin := awsBinary(t, "third_party/bin/minio", "the MinIO server")
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	s := &testServer{
		t: t, name: "minio", addr: addr, log: filepath.Join(base, "minio.log"),
		argv: []string{bin, "server", "--address", addr, "--console-address", freeAddr(t),
			"--certs-dir", filepath.Join(base, "certs"), "--quiet", dir},
		env: serverEnv(base, "MINIO_ROOT_USER="+testAccessKey, "MINIO_ROOT_PASSWORD="+testSecretKey,
			"MINIO_UPDATE=off", "MINIO_CALLHOME_ENABLE=off"),
		// live answers as soon as the process listens; cluster only once the
		// object layer is up (before that S3 calls get XMinioServerNotInitialized).
		ready: func(addr string) bool {
			return httpOK("http://"+addr+"/minio/health/live") && httpOK("http://"+addr+"/minio/health/cluster")
		},
	}
	t.Cleanup(s.stop)
	s.start()
	return &minioServer{testServer: s, dir: dir}
}

// motoServer is moto_server on 127.0.0.1.
type motoServer struct{ *testServer }

func (m *motoServer) URL() string { return "http://" + m.addr }

// startMoto runs `moto_server -H 127.0.0.1 -p PORT`.
func startMoto(t *testing.T) *motoServer {
	t.Helper()
	bin := awsBinary(t, "third_party/moto-venv/bin/moto_server", "moto_server")
	base := t.TempDir()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	s := &testServer{
		t: t, name: "moto_server", addr: addr, log: filepath.Join(base, "moto.log"),
		argv:  []string{bin, "-H", "127.0.0.1", "-p", port},
		env:   serverEnv(base),
		ready: func(addr string) bool { return httpOK("http://" + addr + "/moto-api/data.json") },
	}
	t.Cleanup(s.stop)
	s.start()
	return &motoServer{s}
}

// queueInvokeResults makes moto's InvokeEndpoint answer the next distinct
// requests with these bodies, in order.
func (m *motoServer) queueInvokeResults(t *testing.T, bodies ...string) {
	t.Helper()
	var results []string
	for _, b := range bodies {
		results = append(results, fmt.Sprintf(`{"Body": %s, "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic"}`, strconv.Quote(b)))
	}
	payload := `{"region": "` + testRegion + `", "results": [` + strings.Join(results, ",") + `]}`
	resp, err := http.Post(m.URL()+"/moto-api/static/sagemaker/endpoint-results", "application/json", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("moto endpoint-results: %s", resp.Status)
	}
}

// useTestAWSEnv points the SDK's default chain at the test credentials and
// at nothing of the user's: no shared config or credentials files, no
// profile, no instance metadata, no endpoint overrides.
func useTestAWSEnv(t *testing.T) {
	t.Helper()
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": testAccessKey, "AWS_SECRET_ACCESS_KEY": testSecretKey, "AWS_SESSION_TOKEN": "",
		"AWS_REGION": testRegion, "AWS_DEFAULT_REGION": "", "AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "",
		"AWS_CONFIG_FILE": empty, "AWS_SHARED_CREDENTIALS_FILE": empty, "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": "", "AWS_ENDPOINT_URL_SAGEMAKER": "",
		"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "",
		"AWS_REQUEST_CHECKSUM_CALCULATION": "", "AWS_RESPONSE_CHECKSUM_VALIDATION": "",
		"AWS_MAX_ATTEMPTS": "", "AWS_RETRY_MODE": "", "AWS_CA_BUNDLE": "",
	} {
		t.Setenv(k, v)
	}
}

// testClients builds clients for a test; endpoint "" leaves the endpoint
// to the AWS_ENDPOINT_URL* variables.
func testClients(t *testing.T, endpoint string, tweak ...func(*AWSOptions)) AWSClients {
	t.Helper()
	o := AWSOptions{EndpointURL: endpoint, S3PathStyle: true, MaxAttempts: 2}
	for _, f := range tweak {
		f(&o)
	}
	c, err := NewAWSClients(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// recordingHTTP records the bodies of SageMaker JSON requests by operation
// (X-Amz-Target), to check what was sent where moto does not keep it.
type recordingHTTP struct {
	mu     sync.Mutex
	next   aws.HTTPClient
	bodies map[string][]byte
}

func newRecordingHTTP() *recordingHTTP {
	return &recordingHTTP{next: http.DefaultClient, bodies: map[string][]byte{}}
}

func (r *recordingHTTP) Do(req *http.Request) (*http.Response, error) {
	if target := req.Header.Get("X-Amz-Target"); target != "" && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		op := target[strings.LastIndexByte(target, '.')+1:]
		r.mu.Lock()
		r.bodies[op] = b
		r.mu.Unlock()
	}
	return r.next.Do(req)
}

func (r *recordingHTTP) body(op string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodies[op]
}
