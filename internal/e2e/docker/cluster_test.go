package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// The ports every agent listens on inside its container.
const (
	apiPort  = "7400"
	raftPort = "7401"
)

// cluster is three agents in containers of this run. Each container sits
// on two private networks: the peer network, whose addresses the agents
// advertise and the host's clients use, and which a test cuts a node off;
// and an internal watch network that is never cut, through which the host
// still reaches a cut-off node's API (to see its own view and to send it
// writes). The watch network is internal: a node cut off the peer network
// has no route left to its peers.
type cluster struct {
	t       *testing.T
	name    string // the cluster's name and the prefix of every docker object
	peerNet string
	peerPfx string // "10.x.y." of the peer network
	watch   string
	watchPf string
	backups string // the volume every node mounts at /backups
	nodes   []*node
	// The cluster's secrets, chosen by the test, and its authority as the
	// host sees it (copied out of node1 once it made it).
	joinToken, adminToken string
	caFile                string
	creds                 client.Credentials
	opts                  clusterOpts
}

// clusterOpts add to every node's container: bind mounts (docker -v
// arguments) and agent flags.
type clusterOpts struct {
	mounts    []string
	agentArgs []string
}

// node is one agent's container.
type node struct {
	i         int
	name      string // node1, node2, node3: the agent's node name
	container string
	volume    string // mounted at /data
	peerIP    string
	watchIP   string
}

// API is the node's advertised API address (peer network).
func (n *node) API() string { return n.peerIP + ":" + apiPort }

// WatchAPI is the node's API address on the watch network.
func (n *node) WatchAPI() string { return n.watchIP + ":" + apiPort }

// ctx is a context for one docker or API step, bounded well inside the
// test's timeout.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return c
}

func requireDocker(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip("container suite not run: " + skipReason)
	}
}

// newCluster creates the networks, volumes and containers of a three-node
// cluster named after tag, starts it (node1 creates, node2 and node3 join)
// and waits until all three are Up. Everything is removed when the test
// ends, whatever happened; on failure the agents' logs are printed first.
func newCluster(t *testing.T, tag string) *cluster {
	t.Helper()
	return newClusterWith(t, tag, clusterOpts{})
}

// newClusterWith is newCluster with more for every container.
func newClusterWith(t *testing.T, tag string, opts clusterOpts) *cluster {
	t.Helper()
	requireDocker(t)
	start := time.Now()
	c := &cluster{t: t, name: "cke2e-" + runID + "-" + tag, caFile: filepath.Join(t.TempDir(), "ca.pem"), opts: opts}
	t.Cleanup(c.teardown)
	var err error
	if c.joinToken, err = security.NewSecret(); err != nil {
		t.Fatal(err)
	}
	if c.adminToken, err = security.NewSecret(); err != nil {
		t.Fatal(err)
	}
	if c.peerNet, c.peerPfx, err = c.network("peer", false); err != nil {
		t.Fatal(err)
	}
	if c.watch, c.watchPf, err = c.network("watch", true); err != nil {
		t.Fatal(err)
	}
	c.backups = c.name + "-backups"
	c.docker("volume", "create", "--label", runLabel+"="+runID, c.backups)
	for i := range 3 {
		n := &node{i: i, name: fmt.Sprintf("node%d", i+1), container: fmt.Sprintf("%s-node%d", c.name, i+1),
			volume: fmt.Sprintf("%s-node%d-data", c.name, i+1), peerIP: fmt.Sprintf("%s%d", c.peerPfx, 10+i),
			watchIP: fmt.Sprintf("%s%d", c.watchPf, 10+i)}
		c.nodes = append(c.nodes, n)
		c.docker("volume", "create", "--label", runLabel+"="+runID, n.volume)
		create := []string{"create", "--name", n.container, "--hostname", n.name, "--label", runLabel + "=" + runID,
			"--network", c.peerNet, "--ip", n.peerIP, "-v", n.volume + ":/data", "-v", c.backups + ":/backups"}
		for _, m := range opts.mounts {
			create = append(create, "-v", m)
		}
		c.docker(append(append(create, image), c.agentCommand(n)...)...)
		c.docker("network", "connect", "--ip", n.watchIP, c.watch, n.container)
	}
	c.start(c.nodes[0])
	c.eventually("node1 made the cluster's authority", time.Minute, func() error {
		if _, err := docker(ctx(t), "cp", c.nodes[0].container+":/data/tls/ca.pem", c.caFile); err != nil {
			return err
		}
		ca, err := client.LoadCA(c.caFile)
		if err != nil {
			return err
		}
		c.creds = client.Credentials{CA: ca, Token: c.adminToken}
		// The backup library opens its handles with the defaults.
		client.SetDefaultCredentials(c.creds)
		return nil
	})
	c.eventually("node1 leads the new cluster", time.Minute, func() error {
		st, err := c.localStatus(c.nodes[0])
		if err != nil || st.RaftState != "Leader" {
			return fmt.Errorf("%+v %v", st, err)
		}
		return nil
	})
	c.start(c.nodes[1])
	c.start(c.nodes[2])
	c.waitAllUp()
	t.Logf("cluster %s: three containers Up after %v", c.name, time.Since(start).Round(time.Millisecond))
	return c
}

// agentCommand is node n's agent command line: the one place it is made.
// The creator makes the test's tokens the cluster's; the others join with
// the join token.
func (c *cluster) agentCommand(n *node) []string {
	args := []string{"agent", "--data-dir", "/data", "--name", n.name,
		"--api", "0.0.0.0:" + apiPort, "--api-advertise", n.API(),
		"--raft", "0.0.0.0:" + raftPort, "--raft-advertise", n.peerIP + ":" + raftPort,
		"--heartbeat-timeout", "500ms", "--election-timeout", "500ms", "--leader-lease", "250ms",
		"--join-token", c.joinToken}
	args = append(args, c.opts.agentArgs...)
	if n.i == 0 {
		return append(args, "--create", c.name, "--admin-token", c.adminToken)
	}
	return append(args, "--join", c.nodes[0].API())
}

// clientOptions are the options of every cluster handle the suite opens:
// the cluster's authority (docker cp'd out of node1) and the admin token.
func (c *cluster) clientOptions() []client.Option {
	return []client.Option{client.WithRetryWindow(20 * time.Second), client.WithCredentials(c.creds)}
}

// cliArgs is a clusterkeep command line: the global flags every command of
// the suite gets, then args. inContainer says where the command runs, so
// that files the flags name (the CA certificate, once there is one) are
// given as that side sees them.
func (c *cluster) cliArgs(inContainer bool, args ...string) []string {
	g := []string{"--timeout", "90s"}
	switch {
	case c.adminToken == "":
		// A cluster the suite did not make (compose's): in a container,
		// the node's own files and socket serve.
	case inContainer:
		g = append(g, "--ca", "/data/tls/ca.pem", "--token", c.adminToken)
	default:
		g = append(g, "--ca", c.caFile, "--token", c.adminToken)
	}
	return append(g, args...)
}

// open opens the cluster through every node's advertised API address.
func (c *cluster) open(ctx context.Context) (*client.Cluster, error) {
	var addrs []string
	for _, n := range c.nodes {
		addrs = append(addrs, n.API())
	}
	return client.OpenClusterWith(ctx, addrs, c.clientOptions()...)
}

// nodeClient is a handle on one node through the watch network: it never
// fails over, and it still reaches a node cut off the peer network. (The
// watch address is not in the node's certificate; clients check a node by
// the cluster's authority, not by host name.)
func (c *cluster) nodeClient(n *node) *client.Cluster {
	return client.Node(n.WatchAPI(), client.WithCredentials(c.creds))
}

// localStatus asks a node for its own view, through the watch network.
func (c *cluster) localStatus(n *node) (wire.LocalStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return client.LocalStatus(ctx, n.WatchAPI(), client.WithCredentials(c.creds))
}

// backupOptions are the backup program's options for a backup taken from
// the host (which is no node: it is found through the cluster's addresses).
func (c *cluster) backupOptions(to string) backup.Options {
	var addrs []string
	for _, n := range c.nodes {
		addrs = append(addrs, n.API())
	}
	return backup.Options{DataDir: c.t.TempDir(), Cluster: []string{strings.Join(addrs, ",")}, To: to}
}

// hostCLI runs the clusterkeep binary on the host.
func (c *cluster) hostCLI(args ...string) (string, string, int) {
	c.t.Helper()
	out, errOut, code, err := run(ctx(c.t), binary, c.cliArgs(false, args...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out, errOut, code
}

// exec runs clusterkeep inside a node's container (docker exec).
func (c *cluster) exec(n *node, args ...string) (string, string, int) {
	c.t.Helper()
	out, errOut, code, err := run(ctx(c.t), "docker", append([]string{"exec", n.container, "/clusterkeep"}, c.cliArgs(true, args...)...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out, errOut, code
}

// oneShot runs clusterkeep in a new container of the image on the peer
// network with a node's volumes (its service stopped), and removes it.
func (c *cluster) oneShot(n *node, args ...string) (string, string, int) {
	c.t.Helper()
	dargs := []string{"run", "--rm", "--label", runLabel + "=" + runID, "--network", c.peerNet,
		"-v", n.volume + ":/data", "-v", c.backups + ":/backups", image}
	out, errOut, code, err := run(ctx(c.t), "docker", append(dargs, c.cliArgs(true, args...)...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out, errOut, code
}

// docker runs a docker command that must succeed.
func (c *cluster) docker(args ...string) string {
	c.t.Helper()
	out, err := docker(ctx(c.t), args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// network creates a private network of this cluster on a free /24: the
// nodes get fixed addresses below .128 (they keep them across restarts and
// reconnections), anything else docker hands out lies above.
func (c *cluster) network(what string, internal bool) (name, prefix string, err error) {
	name = c.name + "-" + what
	for range 30 {
		prefix = fmt.Sprintf("10.%d.%d.", 200+rand.IntN(50), rand.IntN(256))
		args := []string{"network", "create", "--label", runLabel + "=" + runID,
			"--subnet", prefix + "0/24", "--ip-range", prefix + "128/25"}
		if internal {
			args = append(args, "--internal")
		}
		if _, err = docker(ctx(c.t), append(args, name)...); err == nil {
			return name, prefix, nil
		}
		if !strings.Contains(err.Error(), "overlap") {
			return "", "", err
		}
	}
	return "", "", fmt.Errorf("no free subnet for network %s: %w", name, err)
}

// teardown prints the agents' logs if the test failed, then removes the
// containers, networks and volumes.
func (c *cluster) teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if c.t.Failed() {
		for _, n := range c.nodes {
			out, errOut, _, _ := run(ctx, "docker", "logs", "--tail", "60", n.container)
			c.t.Logf("--- %s (%s) log, tail ---\n%s%s", n.name, n.container, out, errOut)
		}
	}
	var ctrs, vols []string
	for _, n := range c.nodes {
		ctrs, vols = append(ctrs, n.container), append(vols, n.volume)
	}
	if len(ctrs) > 0 {
		docker(ctx, append([]string{"rm", "-f", "-v"}, ctrs...)...)
	}
	for _, net := range []string{c.peerNet, c.watch} {
		if net != "" {
			docker(ctx, "network", "rm", net)
		}
	}
	if c.backups != "" {
		vols = append(vols, c.backups)
	}
	docker(ctx, append([]string{"volume", "rm", "-f"}, vols...)...)
}

// The containers' life.

func (c *cluster) start(n *node) { c.docker("start", n.container) }

// stop stops a container gracefully (SIGTERM, then SIGKILL after 10s).
func (c *cluster) stop(n *node) { c.docker("stop", "-t", "10", n.container) }

// kill stops a container with SIGKILL: a crash.
func (c *cluster) kill(n *node) { c.docker("kill", n.container) }

func (c *cluster) restart(n *node) { c.docker("restart", "-t", "10", n.container) }

// cut disconnects a node from the peer network: it can no longer reach its
// peers, nor they it; the host still sees it on the watch network.
func (c *cluster) cut(n *node) {
	c.docker("network", "disconnect", c.peerNet, n.container)
	c.t.Logf("%s cut off the peer network", n.name)
}

// heal reconnects a cut-off node with its own address.
func (c *cluster) heal(n *node) {
	c.docker("network", "connect", "--ip", n.peerIP, c.peerNet, n.container)
	c.t.Logf("%s reconnected", n.name)
}

// Waiting and looking.

// eventually polls cond until it returns nil or the deadline passes. The
// deadline is generous: it only stops a test that would otherwise hang.
func (c *cluster) eventually(what string, d time.Duration, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not after %v: %v", what, d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// info asks the cluster for its information through any node.
func (c *cluster) info() (wire.ClusterInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := c.open(ctx)
	if err != nil {
		return wire.ClusterInfo{}, err
	}
	return h.GetClusterInformation(ctx)
}

// waitAllUp waits until the cluster has a leader and three Up members.
func (c *cluster) waitAllUp() wire.ClusterInfo {
	c.t.Helper()
	var info wire.ClusterInfo
	c.eventually("three nodes Up", 2*time.Minute, func() error {
		var err error
		if info, err = c.info(); err != nil {
			return err
		}
		return allUp(info)
	})
	return info
}

func allUp(info wire.ClusterInfo) error {
	up := 0
	for _, n := range info.Nodes {
		if n.State == wire.NodeUp {
			up++
		}
	}
	if up != 3 || len(info.Nodes) != 3 || info.Leader == "" {
		return fmt.Errorf("leader %q, %d of %d Up: %+v", info.Leader, up, len(info.Nodes), info.Nodes)
	}
	return nil
}

// byName finds a node by its node name.
func (c *cluster) byName(name string) *node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no node named %q", name)
	return nil
}

// leader is the node the cluster names its leader.
func (c *cluster) leader() *node {
	c.t.Helper()
	info := c.waitAllUp()
	return c.byName(info.Leader)
}

// export reads a node's own copy of the subtree at path (a stale read, so
// that it is that node's state and not the leader's).
func (c *cluster) export(n *node, path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := c.nodeClient(n).Export(ctx, path, &buf, client.Stale()); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// keysOf lists the keys an export holds, lower-cased.
func keysOf(export string) (map[string]bool, error) {
	ops, err := hive.ParseExport(strings.NewReader(export))
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for _, op := range ops {
		if op.Kind == hive.OpCreateKey {
			keys[strings.ToLower(op.Key)] = true
		}
	}
	return keys, nil
}

// jsonOf decodes a command's JSON output.
func jsonOf(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
}
