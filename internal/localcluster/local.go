// Package localcluster starts, stops and reports a cluster of agents on
// loopback, each a real background process with its own data directory,
// for trying clusterkeep on one machine and for tests. Its state file
// (local.json) records each node's addresses and process id.
//
// It manages processes only; it never reads or writes a node's data.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/security"
)

// StateFile is the file in the cluster directory describing the nodes.
const StateFile = "local.json"

// ClusterName is the name of the cluster `local up` creates.
const ClusterName = "local"

// Node is one local node.
type Node struct {
	Name    string `json:"name"`
	API     string `json:"api"`
	Raft    string `json:"raft"`
	DataDir string `json:"data_dir"`
	Log     string `json:"log"`
	PID     int    `json:"pid,omitempty"`
	// Join is the API address the node joins at its first start.
	Join string `json:"join,omitempty"`
}

// Files of a local cluster's secrets in its directory (0600): the agents
// get them through their environment, the operator through the exports
// `local up` prints.
const (
	JoinTokenFile  = "join-token"
	AdminTokenFile = "admin-token"
	CAFile         = "ca.pem"
)

// Cluster is a local cluster's directory and nodes.
type Cluster struct {
	Dir    string `json:"dir"`
	Binary string `json:"binary"`
	Nodes  []Node `json:"nodes"`
	// AgentArgs are extra flags every agent is started with.
	AgentArgs []string `json:"agent_args,omitempty"`

	mu sync.Mutex // nodes may be started and stopped concurrently
}

// Node finds a node by name.
func (c *Cluster) Node(name string) (*Node, error) {
	var names []string
	for i := range c.Nodes {
		if strings.EqualFold(c.Nodes[i].Name, name) {
			return &c.Nodes[i], nil
		}
		names = append(names, c.Nodes[i].Name)
	}
	return nil, fmt.Errorf("no node %q in the local cluster (nodes: %s)", name, strings.Join(names, ", "))
}

// APIAddrs lists the nodes' API addresses, comma-separated.
func (c *Cluster) APIAddrs() string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.API)
	}
	return strings.Join(a, ",")
}

// FreePorts returns n loopback addresses whose ports are free now.
func FreePorts(n int) ([]string, error) {
	var out []string
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	// Below Linux's ephemeral range (32768 and up), so that the outgoing
	// connections and ":0" listeners of other programs, which take ports
	// from that range at any moment, cannot take a node's port while it is
	// down or before it first starts.
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000 {
			return nil, errors.New("no free port found between 20000 and 32000")
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000)))
		if err != nil {
			continue
		}
		lns = append(lns, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// Up creates a cluster of n nodes in dir (or starts the stopped nodes of
// the one there) and waits until every node is Up. binary is the
// clusterkeep executable; it is copied into dir/bin so the cluster keeps
// working whatever happens to the original.
func Up(ctx context.Context, dir string, n int, binary string) (*Cluster, error) {
	return UpWith(ctx, dir, n, binary, nil)
}

// UpWith is Up whose agents, when it creates the cluster, get agentArgs as
// extra flags (kept in the state file for every later start).
func UpWith(ctx context.Context, dir string, n int, binary string, agentArgs []string) (*Cluster, error) {
	return UpSaying(ctx, dir, n, binary, agentArgs, func(string) {})
}

// UpSaying is UpWith that tells say what it is doing, a line at a time,
// for an operator who would otherwise wait on a silent command.
func UpSaying(ctx context.Context, dir string, n int, binary string, agentArgs []string, say func(string)) (*Cluster, error) {
	if n < 1 || n > 9 {
		return nil, fmt.Errorf("local up: --nodes must be 1 to 9, not %d", n)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	c, err := Load(dir)
	if err != nil {
		say(fmt.Sprintf("creating a local cluster of %d nodes in %s", n, dir))
		if c, err = create(dir, n, binary, agentArgs); err != nil {
			return nil, err
		}
	} else if err := copyExecutable(binary, c.Binary); err != nil {
		// Nodes started from now on run the binary `up` was called with.
		return nil, fmt.Errorf("local up: copy %s: %w", binary, err)
	}
	for i := range c.Nodes {
		nd := &c.Nodes[i]
		if c.alive(nd) {
			say(fmt.Sprintf("%s already runs (pid %d)", nd.Name, nd.PID))
			continue
		}
		how := "joins " + nd.Join
		if nd.Join == "" {
			how = fmt.Sprintf("creates cluster %q", ClusterName)
		}
		say(fmt.Sprintf("starting %s (API %s, data %s; it %s; log %s)", nd.Name, nd.API, nd.DataDir, how, nd.Log))
		if err := c.start(nd); err != nil {
			return nil, err
		}
		if i == 0 {
			// The first node creates the cluster; the others join it.
			if err := c.waitRunning(ctx, nd); err != nil {
				return nil, err
			}
			if err := c.keepCA(nd); err != nil {
				return nil, err
			}
		}
	}
	say("waiting until every node is Up")
	return c, c.WaitAllUp(ctx)
}

func create(dir string, n int, binary string, agentArgs []string) (*Cluster, error) {
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return nil, fmt.Errorf("local up: %w", err)
	}
	bin := filepath.Join(dir, "bin", "clusterkeep")
	if err := copyExecutable(binary, bin); err != nil {
		return nil, fmt.Errorf("local up: copy %s: %w", binary, err)
	}
	ports, err := FreePorts(2 * n)
	if err != nil {
		return nil, fmt.Errorf("local up: find free ports: %w", err)
	}
	// The agents' own environment variables win, as they would for the
	// agent: a caller that set them chose the cluster's secrets.
	for f, env := range map[string]string{JoinTokenFile: "CLUSTERKEEP_JOIN_TOKEN", AdminTokenFile: "CLUSTERKEEP_ADMIN_TOKEN"} {
		secret := os.Getenv(env)
		if secret == "" {
			if secret, err = security.NewSecret(); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(secret+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("local up: %w", err)
		}
	}
	c := &Cluster{Dir: dir, Binary: bin, AgentArgs: agentArgs}
	nodes := make([]Node, 0, n)
	for i := range n {
		name := fmt.Sprintf("node%d", i+1)
		nd := Node{Name: name, API: ports[2*i], Raft: ports[2*i+1], DataDir: filepath.Join(dir, name),
			Log: filepath.Join(dir, name+".log")}
		if i > 0 {
			nd.Join = ports[0]
		}
		nodes = append(nodes, nd)
	}
	return c, c.update(func(d *Cluster) { *d = Cluster{Dir: dir, Binary: bin, AgentArgs: agentArgs, Nodes: nodes} })
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// args are the agent's flags for a node.
func (c *Cluster) args(nd *Node) []string {
	a := []string{"agent", "--data-dir", nd.DataDir, "--name", nd.Name, "--api", nd.API, "--raft", nd.Raft,
		"--heartbeat-timeout", "500ms", "--election-timeout", "500ms", "--leader-lease", "250ms"}
	if nd.Join == "" {
		a = append(a, "--create", ClusterName)
	} else {
		a = append(a, "--join", nd.Join)
	}
	return append(a, c.AgentArgs...)
}

func (c *Cluster) start(nd *Node) error {
	logf, err := os.OpenFile(nd.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("start %s: %w", nd.Name, err)
	}
	defer logf.Close()
	env, err := c.secretsEnv()
	if err != nil {
		return fmt.Errorf("start %s: %w", nd.Name, err)
	}
	cmd := exec.Command(c.Binary, c.args(nd)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", nd.Name, err)
	}
	go cmd.Wait() // reap it if it dies while we run
	return c.setPID(nd, cmd.Process.Pid)
}

// alive reports whether the node's recorded process runs.
func (c *Cluster) alive(nd *Node) bool {
	if nd.PID <= 0 {
		return false
	}
	if err := syscall.Kill(nd.PID, 0); err != nil {
		return false
	}
	// A recycled pid is not our agent: check its command line.
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(nd.PID) + "/cmdline")
	return err != nil || strings.Contains(string(cmdline), nd.DataDir)
}

// Running reports whether the named node's process runs.
func (c *Cluster) Running(name string) bool {
	nd, err := c.Node(name)
	return err == nil && c.alive(nd)
}

// Start starts one stopped node and waits until its service runs.
func (c *Cluster) Start(ctx context.Context, name string) (*Node, error) {
	nd, err := c.Launch(name)
	if err != nil {
		return nd, err
	}
	return nd, c.waitRunning(ctx, nd)
}

// Launch starts one stopped node and returns at once.
func (c *Cluster) Launch(name string) (*Node, error) {
	nd, err := c.Node(name)
	if err != nil {
		return nil, err
	}
	if c.alive(nd) {
		return nd, fmt.Errorf("node %s already runs (pid %d)", nd.Name, nd.PID)
	}
	return nd, c.start(nd)
}

// Stop stops one node: SIGTERM and, after 10 seconds, SIGKILL; with kill,
// SIGKILL at once (a crash).
func (c *Cluster) Stop(name string, kill bool) (*Node, error) {
	nd, err := c.Node(name)
	if err != nil {
		return nil, err
	}
	if !c.alive(nd) {
		return nd, fmt.Errorf("node %s is not running", nd.Name)
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	syscall.Kill(nd.PID, sig)
	deadline := time.Now().Add(10 * time.Second)
	for c.alive(nd) {
		if time.Now().After(deadline) {
			syscall.Kill(nd.PID, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nd, c.setPID(nd, 0)
}

// Down stops every node.
func (c *Cluster) Down() error {
	var errs []error
	for _, nd := range c.Nodes {
		if c.alive(&nd) {
			if _, err := c.Stop(nd.Name, false); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// NodeStatus is one line of `local status`.
type NodeStatus struct {
	Node
	Process string                  `json:"process"` // running or stopped
	State   client.NodeClusterState `json:"node_cluster_state"`
}

// Status reports each node's process and node cluster state.
func (c *Cluster) Status(ctx context.Context) []NodeStatus {
	var out []NodeStatus
	for _, nd := range c.Nodes {
		ns := NodeStatus{Node: nd, Process: "stopped"}
		if c.alive(&nd) {
			ns.Process = "running"
		} else {
			ns.PID = 0
		}
		st, err := client.GetNodeState(ctx, nd.DataDir)
		if err == nil {
			ns.State = st.State
		}
		out = append(out, ns)
	}
	return out
}

// secretsEnv gives an agent the cluster's join and admin tokens.
func (c *Cluster) secretsEnv() ([]string, error) {
	join, err := client.ReadTokenFile(filepath.Join(c.Dir, JoinTokenFile))
	if err != nil {
		return nil, err
	}
	admin, err := client.ReadTokenFile(filepath.Join(c.Dir, AdminTokenFile))
	if err != nil {
		return nil, err
	}
	return []string{"CLUSTERKEEP_JOIN_TOKEN=" + join, "CLUSTERKEEP_ADMIN_TOKEN=" + admin}, nil
}

// Credentials are what a client of this cluster trusts and proves: the
// authority (copied to DIR/ca.pem once the first node made it) and the
// admin token.
func (c *Cluster) Credentials() (client.Credentials, error) {
	var cr client.Credentials
	var err error
	if cr.CA, err = client.LoadCA(filepath.Join(c.Dir, CAFile)); err != nil {
		return cr, err
	}
	cr.Token, err = client.ReadTokenFile(filepath.Join(c.Dir, AdminTokenFile))
	return cr, err
}

// Env is the environment a client process of this cluster needs.
func (c *Cluster) Env() []string {
	return []string{client.EnvCluster + "=" + c.APIAddrs(), client.EnvCA + "=" + filepath.Join(c.Dir, CAFile),
		client.EnvTokenFile + "=" + filepath.Join(c.Dir, AdminTokenFile)}
}

// keepCA copies the authority a running node holds to DIR/ca.pem.
func (c *Cluster) keepCA(nd *Node) error {
	b, err := os.ReadFile(filepath.Join(nd.DataDir, security.Dir, security.CAFile))
	if err != nil {
		return fmt.Errorf("read the cluster's authority from %s: %w", nd.Name, err)
	}
	return os.WriteFile(filepath.Join(c.Dir, CAFile), b, 0o644)
}

func (c *Cluster) waitRunning(ctx context.Context, nd *Node) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		st, err := client.GetNodeState(ctx, nd.DataDir)
		if err == nil && st.State == client.Running {
			return nil
		}
		if !c.alive(nd) {
			return fmt.Errorf("node %s exited as it started; see %s", nd.Name, nd.Log)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s did not come up (state %s); see %s", nd.Name, st.State, nd.Log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitAllUp waits until the cluster reports every node Up.
func (c *Cluster) WaitAllUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last string
	for {
		cr, err := c.Credentials()
		if err != nil {
			return err
		}
		cl, err := client.OpenClusterWith(ctx, []string{c.APIAddrs()}, client.WithRetryWindow(2*time.Second), client.WithCredentials(cr))
		if err == nil {
			info := cl.Info()
			up := 0
			var states []string
			for _, n := range info.Nodes {
				if n.State == "Up" || n.State == "Paused" {
					up++
				}
				states = append(states, n.Name+"="+string(n.State))
			}
			if up == len(c.Nodes) && info.Leader != "" {
				return nil
			}
			last = strings.Join(states, " ")
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local cluster in %s not up: %s", c.Dir, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Add starts one more node that joins the cluster, and waits until it runs.
func (c *Cluster) Add(ctx context.Context) (*Node, error) {
	ports, err := FreePorts(2)
	if err != nil {
		return nil, err
	}
	join := ""
	for i := range c.Nodes {
		if c.alive(&c.Nodes[i]) {
			join = c.Nodes[i].API
			break
		}
	}
	if join == "" {
		return nil, fmt.Errorf("add node: no node of the local cluster runs")
	}
	name := fmt.Sprintf("node%d", len(c.Nodes)+1)
	c.Nodes = append(c.Nodes, Node{Name: name, API: ports[0], Raft: ports[1], DataDir: filepath.Join(c.Dir, name),
		Log: filepath.Join(c.Dir, name+".log"), Join: join})
	nd := &c.Nodes[len(c.Nodes)-1]
	if err := c.start(nd); err != nil {
		return nil, err
	}
	return nd, c.waitRunning(ctx, nd)
}
