package resources

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
)

// envTestAgent, set, makes the test binary a stand-in agent (see
// testAgent); its value is the JSON of a testAgentSpec.
const envTestAgent = "CLUSTERKEEP_RESOURCES_TEST_AGENT"

// TestMain makes the test binary what the clusterkeep binary is to the
// exec runner: the shim, when run with ShimArg.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ShimArg {
		os.Exit(ShimMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == GuardArg {
		os.Exit(GuardMain(os.Args[2:]))
	}
	if spec := os.Getenv(envTestAgent); spec != "" {
		os.Exit(testAgent(spec))
	}
	// Under the race detector, every shim (this binary) would linger a
	// second at exit.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}

type testAgentSpec struct {
	Config   ExecConfig
	Resource roles.Resource
}

// testAgent starts one resource as the agent would, prints its process
// group's id, and waits to be killed.
func testAgent(spec string) int {
	var s testAgentSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	inst, err := NewExec(s.Config).Start(context.Background(), s.Resource, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("pgid %d\n", inst.(*execInstance).pgid)
	select {}
}

// testConfig is an ExecConfig in a test's own directory whose shim is the
// test binary.
func testConfig(t *testing.T) ExecConfig {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return ExecConfig{
		LogDir:   filepath.Join(dir, "log"),
		StateDir: filepath.Join(dir, "state"),
		Shim:     []string{exe, ShimArg},
	}
}

// uniqueName is a resource name no other test uses, so that a test can
// find its resource's processes by their environment.
func uniqueName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// cmdParam writes argv as a command parameter (a JSON array).
func cmdParam(argv ...string) string {
	b, _ := json.Marshal(argv)
	return string(b)
}

func execResource(name string, params map[string]string) roles.Resource {
	r := roles.Resource{Name: name, Type: "exec", Params: params}
	r.Normalize()
	return r
}

// startExec starts r with a runner on cfg; the test stops it at its end.
func startExec(t *testing.T, cfg ExecConfig, r roles.Resource, env ...string) *execInstance {
	t.Helper()
	inst, err := NewExec(cfg).Start(context.Background(), r, env)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := inst.Stop(context.Background(), time.Second); err != nil {
			t.Errorf("stop at cleanup: %v", err)
		}
	})
	return inst.(*execInstance)
}

// eventually polls cond until it holds, failing the test after a generous
// deadline (a stall, not a slow machine).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not so after 30s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitClosed waits for ch to close, failing the test after a generous
// deadline.
func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("still not so after 30s: %s", what)
	}
}

// resourceProcs lists the live processes that carry resource name in
// their environment, wherever they are: in its group or escaped from it.
func resourceProcs(t *testing.T, name string) []proc {
	t.Helper()
	ps, err := procs(func(p proc) bool { return p.live() && hasEnv(p.pid, EnvResource+"="+name) })
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func readLog(t *testing.T, cfg ExecConfig, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cfg.LogDir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func records(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one saying %q", err, want)
	}
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// startTestAgent runs the test binary as a stand-in agent that starts the
// resource spec names; it returns the agent and the resource's process
// group.
func startTestAgent(t *testing.T, spec string) (*exec.Cmd, int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envTestAgent+"="+spec)
	line, stderr, err := firstLine(t, cmd)
	var pgid int
	if _, err2 := fmt.Sscanf(line, "pgid %d", &pgid); err != nil || err2 != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("test agent: %q %v %v: %s", line, err, err2, stderr.String())
	}
	return cmd, pgid
}

// firstLine starts cmd, killed when the test ends, and reads the first
// line it prints; stderr is what it wrote there meanwhile.
func firstLine(t *testing.T, cmd *exec.Cmd) (string, *bytes.Buffer, error) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	return line, &stderr, err
}
