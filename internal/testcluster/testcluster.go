// Package testcluster starts real clusterkeep agents for tests: as separate
// processes of the real binary (built once per test run) through
// localcluster, or in-process on loopback ports for tests run under the race
// detector. Tests never copy this code.
package testcluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/agent"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
)

// built is a program built once per test process.
type built struct {
	once sync.Once
	path string
	err  error
}

// build builds the package pkg (relative to the module) into a
// temporary file named name, once, with extra environment env.
func (b *built) build(t testing.TB, pkg, name string, env ...string) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "clusterkeep-"+name+"-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

var clusterkeepBin, resourceBin built

// Binary builds cmd/clusterkeep once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	UseTrust(t)
	return clusterkeepBin.build(t, "./cmd/clusterkeep", "clusterkeep")
}

// ResourceBinary builds the test resource (internal/testcluster/ckres)
// once per test process and returns its path: a static binary, so it runs
// in the project's FROM-scratch containers too.
func ResourceBinary(t testing.TB) string {
	t.Helper()
	return resourceBin.build(t, "./internal/testcluster/ckres", "ckres", "CGO_ENABLED=0")
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Processes starts a local cluster of n agent processes in a temporary
// directory and stops it (SIGKILL for any left) when the test ends. On
// failure the agents' logs are printed.
func Processes(t testing.TB, n int) *localcluster.Cluster {
	t.Helper()
	return ProcessesWith(t, n)
}

// ProcessesWith is Processes with extra flags for every agent.
func ProcessesWith(t testing.TB, n int, agentArgs ...string) *localcluster.Cluster {
	t.Helper()
	dir := t.TempDir()
	c, err := localcluster.UpWith(Context(t), dir, n, Binary(t), agentArgs)
	if c == nil {
		t.Fatalf("local up: %v", err)
	}
	t.Cleanup(func() {
		for _, nd := range c.Nodes {
			c.Stop(nd.Name, true)
		}
		if t.Failed() {
			DumpLogs(t, c)
		}
	})
	if err != nil {
		t.Fatalf("local up: %v", err)
	}
	return c
}

// DumpLogs prints the tail of every agent's log.
func DumpLogs(t testing.TB, c *localcluster.Cluster) {
	for _, nd := range c.Nodes {
		b, _ := os.ReadFile(nd.Log)
		lines := strings.Split(string(b), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("--- %s log (tail) ---\n%s", nd.Name, strings.Join(lines, "\n"))
	}
}

// Context is a context bounded well inside the test timeout.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Open opens the cluster through the given addresses.
func Open(t testing.TB, addrs ...string) *client.Cluster {
	t.Helper()
	UseTrust(t)
	c, err := client.OpenCluster(Context(t), addrs...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Eventually polls cond until it returns nil or a minute passes.
func Eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// FreeAddr returns a loopback address with a free port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	a, err := localcluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return a[0]
}

// Node is an in-process agent that can be stopped and started again on
// the same addresses and data directory.
type Node struct {
	t     testing.TB
	Cfg   agent.Config
	Agent *agent.Agent
}

// Init sets the node's test; a Node built by hand calls it before Start.
func (n *Node) Init(t testing.TB) { n.t = t }

// Start (re)starts the node.
func (n *Node) Start() {
	n.t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := agent.Start(Context(n.t), n.Cfg, log, io.Discard)
	if err != nil {
		n.t.Fatalf("start %s: %v", n.Cfg.Name, err)
	}
	n.Agent = a
}

// Stop closes the node gracefully.
func (n *Node) Stop() {
	if n.Agent != nil {
		n.Agent.Close()
		n.Agent = nil
	}
}

// API is the node's API address.
func (n *Node) API() string { return n.Cfg.API }

// InProcess starts n agents in this process, the first creating the
// cluster, and waits until all are Up.
func InProcess(t testing.TB, n int) []*Node { return InProcessWith(t, n, nil) }

// InProcessWith is InProcess with each node's configuration changed by
// mutate before it starts.
func InProcessWith(t testing.TB, n int, mutate func(i int, cfg *agent.Config)) []*Node {
	t.Helper()
	tr := UseTrust(t)
	dir := t.TempDir()
	var nodes []*Node
	for i := range n {
		cfg := agent.Config{DataDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)), Name: fmt.Sprintf("n%d", i+1),
			API: FreeAddr(t), Raft: FreeAddr(t), HeartbeatTimeout: "300ms", ElectionTimeout: "300ms", LeaderLease: "150ms",
			JoinToken: tr.JoinToken}
		if i == 0 {
			cfg.Create = "inproc"
			cfg.AdminToken, cfg.CACert, cfg.CAKey = tr.AdminToken, tr.CACert, tr.CAKey
		} else {
			cfg.Join = []string{nodes[0].API()}
		}
		if mutate != nil {
			mutate(i, &cfg)
		}
		nd := &Node{t: t, Cfg: cfg}
		nd.Start()
		t.Cleanup(nd.Stop)
		nodes = append(nodes, nd)
	}
	c := Open(t, nodes[0].API())
	Eventually(t, "all nodes up", func() error {
		info, err := c.GetClusterInformation(Context(t))
		if err != nil {
			return err
		}
		up := 0
		for _, nd := range info.Nodes {
			if nd.State == "Up" {
				up++
			}
		}
		if up != n {
			return fmt.Errorf("%d of %d up: %+v", up, n, info.Nodes)
		}
		return nil
	})
	return nodes
}
