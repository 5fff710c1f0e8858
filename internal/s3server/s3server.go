// Package s3server runs a real S3-compatible server on loopback for the
// S3 target's tests and benchmarks: versitygw with its POSIX back end in a
// directory, built from the Go module proxy by scripts/install-s3-server.sh
// into .cache/bin. It is never a mock: the client speaks the S3 wire
// protocol to it.
package s3server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backend"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// ErrNotInstalled: the server could not be built or found.
var ErrNotInstalled = errors.New("the S3-compatible test server (versitygw) could not be installed")

// ModuleRoot is the repository's root.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Install returns the versitygw binary, building it first if it is not in
// .cache/bin.
func Install() (string, error) {
	cmd := exec.Command(filepath.Join(ModuleRoot(), "scripts", "install-s3-server.sh"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: scripts/install-s3-server.sh: %v\n%s", ErrNotInstalled, err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	bin := lines[len(lines)-1]
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		return "", fmt.Errorf("%w: the script named %q", ErrNotInstalled, bin)
	}
	return bin, nil
}

// Server is a running versitygw.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	Dir       string // the POSIX back end's root: one directory per bucket
	cmd       *exec.Cmd
	log       bytes.Buffer
}

// Start runs versitygw on a free loopback port with its POSIX back end in
// dir, and waits until it answers.
func Start(bin, dir string) (*Server, error) {
	ports, err := localcluster.FreePorts(1)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "posix")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	s := &Server{Endpoint: "http://" + ports[0], AccessKey: "clusterkeep-test", SecretKey: "clusterkeep-test-secret", Region: "us-east-1", Dir: root}
	s.cmd = exec.Command(bin, "--port", ports[0], "--access", s.AccessKey, "--secret", s.SecretKey,
		"--region", s.Region, "--quiet", "posix", "--sidecar", filepath.Join(dir, "meta"), root)
	os.MkdirAll(filepath.Join(dir, "meta"), 0o700)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	exited := make(chan struct{})
	go func() { s.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("versitygw exited: %s", s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("versitygw does not answer on %s: %s", s.Endpoint, s.log.String())
		}
	}
}

// Log is what the server printed.
func (s *Server) Log() string { return s.log.String() }

// Stop kills the server.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
}

// Env is the environment a clusterkeep process needs to use the server.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		backend.EnvEndpoint + "=" + s.Endpoint, backend.EnvRegion + "=" + s.Region, backend.EnvPathStyle + "=1"}
}

// Options are S3 target options for the server.
func (s *Server) Options() backend.S3Options {
	return backend.S3Options{Endpoint: s.Endpoint, PathStyle: true, Region: s.Region,
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")}
}

// MakeBucket creates a bucket.
func (s *Server) MakeBucket(ctx context.Context, name string) error {
	t, err := backend.NewS3(name, "", s.Options())
	if err != nil {
		return err
	}
	return t.Client().MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region})
}
