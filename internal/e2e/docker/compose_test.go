package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// deploy/compose.yml, as the README runs it: three nodes Up, a command
// against the cluster, a backup onto the shared volume that another node
// verifies.
func TestComposeFile(t *testing.T) {
	requireDocker(t)
	base := composeCommand()
	if base == nil {
		t.Skip("neither docker-compose nor docker compose is installed")
	}
	_, file, _, _ := runtime.Caller(0)
	file = filepath.Join(filepath.Dir(file), "..", "..", "..", "deploy", "compose.yml")
	project := composeProject(runID)
	joinToken, err := security.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	compose := func(ctx context.Context, args ...string) (string, string, int) {
		t.Helper()
		argv := append(append(append([]string(nil), base...), "-f", file, "-p", project), args...)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "CLUSTERKEEP_IMAGE="+image, "CLUSTERKEEP_JOIN_TOKEN="+joinToken)
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return o.String(), e.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), 0
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if t.Failed() {
			out, _, _ := compose(ctx, "logs", "--no-color", "--tail", "40")
			t.Logf("compose logs:\n%s", out)
		}
		compose(ctx, "down", "-v", "--remove-orphans", "-t", "5")
	})
	began := time.Now()
	if _, errOut, code := compose(ctx(t), "up", "-d"); code != 0 {
		t.Fatalf("compose up: exit %d: %s", code, errOut)
	}
	// Compose makes the containers; c only lends its helpers.
	c := &cluster{t: t, name: project}
	inNode := func(service string, args ...string) (string, string, int) {
		return compose(ctx(t), append([]string{"exec", "-T", service, "/clusterkeep"}, c.cliArgs(true, args...)...)...)
	}
	c.eventually("three compose nodes Up", 2*time.Minute, func() error {
		out, errOut, code := inNode("node1", "--cluster", "unix:/data/api.sock", "cluster", "info", "--json")
		if code != 0 {
			return fmt.Errorf("cluster info: exit %d: %s", code, errOut)
		}
		var info wire.ClusterInfo
		jsonOf(t, out, &info)
		return allUp(info)
	})
	t.Logf("compose: three nodes Up after %v", time.Since(began).Round(time.Millisecond))
	out, errOut, code := inNode("node2", "backup", "create", "--to", "/backups", "--data-dir", "/data", "--json")
	if code != 0 {
		t.Fatalf("backup create in node2: exit %d: %s", code, errOut)
	}
	var res backup.Result
	jsonOf(t, out, &res)
	if !strings.HasPrefix(res.Path, "/backups/") || res.Node != "node2" {
		t.Fatalf("backup: %s", out)
	}
	if _, errOut, code := inNode("node3", "backup", "verify", res.Path); code != 0 {
		t.Fatalf("backup verify in node3: exit %d: %s", code, errOut)
	}
}

// composeProject is the compose project name of a run.
func composeProject(run string) string { return "cke2e-" + run + "-compose" }

// composeCommand is the compose program: docker-compose, or the docker
// CLI's compose plugin; nil when there is neither.
func composeCommand() []string {
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	if err := exec.Command("docker", "compose", "version").Run(); err == nil {
		return []string{"docker", "compose"}
	}
	return nil
}
