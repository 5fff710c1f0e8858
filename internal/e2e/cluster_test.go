package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// staleValue reads a value from one node's own copy.
func staleValue(t *testing.T, nd localcluster.Node, key, name string) (wire.Value, error) {
	return client.Node(nd.API).GetValue(tc.Context(t), key, name, client.Stale())
}

func waitValue(t *testing.T, nd localcluster.Node, key, name string, want uint64) {
	t.Helper()
	tc.Eventually(t, fmt.Sprintf("%s holds %s/%s=%d", nd.Name, key, name, want), func() error {
		v, err := staleValue(t, nd, key, name)
		if err != nil {
			return err
		}
		if v.Uint64 != want {
			return fmt.Errorf("has %d", v.Uint64)
		}
		return nil
	})
}

func leader(t *testing.T, c *client.Cluster) string {
	t.Helper()
	var name string
	tc.Eventually(t, "a leader", func() error {
		info, err := c.GetClusterInformation(tc.Context(t))
		if err != nil {
			return err
		}
		if info.Leader == "" {
			return errors.New("no leader yet")
		}
		name = info.Leader
		return nil
	})
	return name
}

func TestThreeNodeClusterReplicatesSurvivesLeaderKillCatchesUpGrowsAndEvicts(t *testing.T) {
	lc := tc.Processes(t, 3)
	ctx := tc.Context(t)
	c := tc.Open(t, lc.APIAddrs())

	// Replication: a write through the cluster reaches every node's copy.
	if _, err := c.SetValue(ctx, "Apps/Web", wire.Uint64Value("N", 1)); err != nil {
		t.Fatal(err)
	}
	for _, nd := range lc.Nodes {
		waitValue(t, nd, "apps/web", "n", 1)
	}

	// The leader is killed; the other two elect a new one and take writes.
	dead := leader(t, c)
	if _, err := lc.Stop(dead, true); err != nil {
		t.Fatal(err)
	}
	for i := uint64(2); i <= 20; i++ {
		if _, err := c.SetValue(ctx, "Apps/Web", wire.Uint64Value("N", i)); err != nil {
			t.Fatalf("write %d after leader kill: %v", i, err)
		}
	}
	if now := leader(t, c); now == dead {
		t.Fatalf("killed node %s still reported leader", dead)
	}

	// The killed node restarts and catches up.
	if _, err := lc.Start(ctx, dead); err != nil {
		t.Fatal(err)
	}
	nd, _ := lc.Node(dead)
	waitValue(t, *nd, "Apps/Web", "N", 20)

	// A fourth node joins and receives the full state.
	n4, err := lc.Add(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitValue(t, *n4, "Apps/Web", "N", 20)
	tc.Eventually(t, "four nodes Up", func() error { return allUp(ctx, c, 4) })

	// The fourth node is evicted: it moves its cluster data aside, is no
	// longer a member, and the cluster goes on.
	if _, err := c.EvictNode(ctx, n4.Name); err != nil {
		t.Fatal(err)
	}
	tc.Eventually(t, "evicted node NotConfigured", func() error {
		st, err := client.GetNodeClusterState(n4.DataDir)
		if err != nil || st != client.NotConfigured {
			return fmt.Errorf("state %s: %v", st, err)
		}
		return nil
	})
	aside, _ := filepath.Glob(filepath.Join(n4.DataDir, "aside", "*-evicted", hive.FileName))
	if len(aside) != 1 {
		t.Fatalf("evicted node's data not moved aside: %v", aside)
	}
	info, err := c.GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range info.Nodes {
		if n.Name == n4.Name {
			t.Fatalf("evicted node still listed: %+v", info.Nodes)
		}
	}
	if _, err := c.SetValue(ctx, "Apps/Web", wire.Uint64Value("N", 21)); err != nil {
		t.Fatal(err)
	}
	// Evicting it again is refused: it is no member.
	if _, err := c.EvictNode(ctx, n4.Name); !errors.Is(err, client.ErrNodeNotFound) {
		t.Fatalf("second evict: %v", err)
	}
}

func allUp(ctx context.Context, c *client.Cluster, n int) error {
	info, err := c.GetClusterInformation(ctx)
	if err != nil {
		return err
	}
	up := 0
	for _, nd := range info.Nodes {
		if nd.State == wire.NodeUp {
			up++
		}
	}
	if up != n || len(info.Nodes) != n {
		return fmt.Errorf("%d of %d Up: %+v", up, len(info.Nodes), info.Nodes)
	}
	return nil
}

func TestOpenClusterContinuesWhenConnectedNodeStops(t *testing.T) {
	lc := tc.Processes(t, 3)
	ctx := tc.Context(t)
	first := lc.Nodes[0]
	// Opened through one node only, the handle learns every member.
	c := tc.Open(t, first.API)
	if got := len(c.Addrs()); got != 3 {
		t.Fatalf("handle knows %d addresses: %v", got, c.Addrs())
	}
	if c.Current() != first.API {
		t.Fatalf("handle talks to %s, not %s", c.Current(), first.API)
	}
	if _, err := c.SetValue(ctx, "K", wire.Uint32Value("V", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Stop(first.Name, false); err != nil {
		t.Fatal(err)
	}
	// Every kind of call goes on through another member.
	info, err := c.GetClusterInformation(ctx)
	if err != nil {
		t.Fatalf("cluster info after the node stopped: %v", err)
	}
	if info.Name != localcluster.ClusterName {
		t.Fatalf("cluster name %q", info.Name)
	}
	if _, err := c.SetValue(ctx, "K", wire.Uint32Value("V", 2)); err != nil {
		t.Fatalf("write after the node stopped: %v", err)
	}
	v, err := c.GetValue(ctx, "K", "V")
	if err != nil || v.Uint32 != 2 {
		t.Fatalf("read after the node stopped: %+v %v", v, err)
	}
	if c.Current() == first.API {
		t.Fatal("handle still talks to the stopped node")
	}
}

func TestGetNodeClusterStateOnRealDataDirectories(t *testing.T) {
	lc := tc.Processes(t, 3)
	ctx := tc.Context(t)

	empty := t.TempDir()
	if st, err := client.GetNodeClusterState(empty); err != nil || st != client.NotInstalled {
		t.Fatalf("empty dir: %s %v", st, err)
	}
	if st, err := client.GetNodeClusterState(filepath.Join(empty, "missing")); err != nil || st != client.NotInstalled {
		t.Fatalf("missing dir: %s %v", st, err)
	}
	if st, err := client.GetNodeClusterState(lc.Nodes[0].DataDir); err != nil || st != client.Running {
		t.Fatalf("running node: %s %v", st, err)
	}
	if _, err := lc.Stop(lc.Nodes[1].Name, true); err != nil {
		t.Fatal(err)
	}
	if st, err := client.GetNodeClusterState(lc.Nodes[1].DataDir); err != nil || st != client.NotRunning {
		t.Fatalf("killed node: %s %v", st, err)
	}
	// A node whose agent ran but never created nor joined a cluster.
	lone := &localcluster.Cluster{Dir: t.TempDir(), Binary: tc.Binary(t)}
	loneDir := filepath.Join(lone.Dir, "lone")
	cmd := agentProcess(t, "--data-dir", loneDir, "--name", "lone", "--api", tc.FreeAddr(t), "--raft", tc.FreeAddr(t))
	tc.Eventually(t, "lone agent wrote its registry", func() error {
		if _, err := os.Stat(filepath.Join(loneDir, "node.db")); err != nil {
			return err
		}
		return nil
	})
	if st, err := client.GetNodeClusterState(loneDir); err != nil || st != client.NotConfigured {
		t.Fatalf("node in no cluster: %s %v", st, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if st, err := client.GetNodeClusterState(loneDir); err != nil || st != client.NotConfigured {
		t.Fatalf("stopped node in no cluster: %s %v", st, err)
	}
	_ = ctx
}
