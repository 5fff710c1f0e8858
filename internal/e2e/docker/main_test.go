package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The suite's run: one image and one label for everything it creates, so
// that parallel runs and the leftovers of a killed run never collide.
var (
	// runID is unique to this test process.
	runID string
	// image is the image built for this run, tagged with runID.
	image string
	// binary is the static clusterkeep binary the image holds; the tests
	// also run it on the host as a client.
	binary string
	// skipReason is why the suite does not run here ("" when it does).
	skipReason string
)

// runLabel marks every container, network and volume of this run.
const runLabel = "clusterkeep.e2e.run"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if _, err := docker(context.Background(), "info", "--format", "{{.ServerVersion}}"); err != nil {
		skipReason = fmt.Sprintf("no Docker engine answers (docker info: %v)", err)
		fmt.Fprintf(os.Stderr, "container suite NOT RUN: %s\n", skipReason)
		return m.Run()
	}
	sweepDead()
	b := make([]byte, 4)
	rand.Read(b)
	runID = fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(b))
	dir, err := os.MkdirTemp("", "clusterkeep-e2e-image-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildImage(dir); err != nil {
		fmt.Fprintf(os.Stderr, "container suite: %v\n", err)
		return 1
	}
	defer func() {
		sweep(runID)
		docker(context.Background(), "rmi", "-f", image)
	}()
	return m.Run()
}

// buildImage builds the static binary into dir and the FROM-scratch image
// of deploy/Dockerfile from it, as deploy/build-image.sh does, under this
// run's own tag.
func buildImage(dir string) error {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	binary = filepath.Join(dir, "clusterkeep")
	build := exec.Command("go", "build", "-trimpath", "-o", binary, "./cmd/clusterkeep")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the static binary: %w\n%s", err, out)
	}
	df, err := os.ReadFile(filepath.Join(root, "deploy", "Dockerfile"))
	if err != nil {
		return fmt.Errorf("read the Dockerfile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o644); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return err
	}
	image = "clusterkeep-e2e:" + runID
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := docker(ctx, "build", "-q", "--label", runLabel+"="+runID, "-t", image, dir); err != nil {
		return fmt.Errorf("build the image: %w", err)
	}
	return nil
}

// sweep removes every container, network and volume labelled with run,
// or made by compose for run's compose project, whatever a test left
// behind.
func sweep(run string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, filter := range []string{"label=" + runLabel + "=" + run, "label=com.docker.compose.project=" + composeProject(run)} {
		if ids, _ := docker(ctx, "ps", "-aq", "--filter", filter); ids != "" {
			docker(ctx, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
		}
		if ids, _ := docker(ctx, "network", "ls", "-q", "--filter", filter); ids != "" {
			docker(ctx, append([]string{"network", "rm"}, strings.Fields(ids)...)...)
		}
		if ids, _ := docker(ctx, "volume", "ls", "-q", "--filter", filter); ids != "" {
			docker(ctx, append([]string{"volume", "rm", "-f"}, strings.Fields(ids)...)...)
		}
	}
}

// sweepDead removes what runs of this suite left behind when their test
// process died before it could clean up (killed, or out of time): a run is
// named after its process id, and only runs whose process is gone are
// touched, so that parallel runs are left alone.
func sweepDead() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runs := map[string]bool{}
	label := func(key string) string { return `{{.Label "` + key + `"}}` }
	for _, args := range [][]string{
		{"ps", "-a", "--filter", "label=" + runLabel, "--format", label(runLabel)},
		{"network", "ls", "--filter", "label=" + runLabel, "--format", label(runLabel)},
		{"volume", "ls", "--filter", "label=" + runLabel, "--format", label(runLabel)},
		{"images", "--filter", "label=" + runLabel, "--format", "{{.Tag}}"},
	} {
		out, _ := docker(ctx, args...)
		for _, r := range strings.Fields(out) {
			runs[r] = true
		}
	}
	out, _ := docker(ctx, "ps", "-a", "--filter", "label=com.docker.compose.project", "--format", label("com.docker.compose.project"))
	for _, p := range strings.Fields(out) {
		if r, ok := strings.CutPrefix(p, "cke2e-"); ok && strings.HasSuffix(r, "-compose") {
			runs[strings.TrimSuffix(r, "-compose")] = true
		}
	}
	for r := range runs {
		pid, _, ok := strings.Cut(r, "-")
		n, err := strconv.Atoi(pid)
		if !ok || err != nil || n <= 0 || !errors.Is(syscall.Kill(n, 0), syscall.ESRCH) {
			continue
		}
		fmt.Fprintf(os.Stderr, "container suite: removing what the dead run %s left\n", r)
		sweep(r)
		docker(ctx, "rmi", "-f", "clusterkeep-e2e:"+r)
	}
}

// docker runs the docker CLI and returns its trimmed standard output; the
// error carries its standard error.
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// run runs a command and returns its standard output, standard error and
// exit code; err is set only when it could not run at all.
func run(ctx context.Context, name string, args ...string) (stdout, stderr string, code int, err error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return o.String(), e.String(), ee.ExitCode(), nil
	}
	if err != nil {
		return o.String(), e.String(), -1, err
	}
	return o.String(), e.String(), 0, nil
}
