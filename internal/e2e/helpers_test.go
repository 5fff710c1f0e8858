package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// agentProcess starts `clusterkeep agent` with args; it is killed when the
// test ends.
func agentProcess(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(tc.Binary(t), append([]string{"agent"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", out.String())
		}
	})
	return cmd
}

// cli runs the clusterkeep binary and returns stdout, stderr and the exit code.
func cli(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	return runCLI(t, append(os.Environ(), env...), args...)
}

// runCLI runs the clusterkeep binary with exactly the environment env.
func runCLI(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(tc.Binary(t), args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}
