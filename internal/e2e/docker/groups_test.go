package docker

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// A group's owner cut off from the quorum, as a follower and as the
// leader: it stops the group's resource before its lease expires (it
// fences itself), the majority starts the group on another node only after
// that, and the shared log every run of the resource writes to shows no
// moment at which the group ran on two nodes.
func TestGroupOwnerCutOffNeverRunsTwice(t *testing.T) {
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	res := tc.ResourceBinary(t)
	c := newClusterWith(t, "fence", clusterOpts{
		mounts:    []string{shared + ":/shared", res + ":/ckres:ro"},
		agentArgs: []string{"--group-lease", "3s", "--group-lease-margin", "1s", "--group-lease-renew", "250ms"},
	})
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := c.clusterCLI(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	start, _ := json.Marshal([]string{"/ckres", "-log", "/shared/runs.log", "-name", "svc"})
	must("resource", "add", "svc", "--start", string(start), "--monitor-interval", "500ms", "--monitor-timeout", "400ms")
	leader := c.leader()
	var follower *node
	for _, n := range c.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	must("group", "create", "g", "--resources", "svc", "--preferred-owners", follower.name, "--wanted", "online")
	c.waitGroupOnline("g", follower.name, "")

	// Round 1: the owner is a follower. Round 2: the group moved to the
	// leader, which is then cut off.
	for round, n := range []*node{follower, nil} {
		if n == nil {
			n = c.leader()
			if st := c.waitGroupOnline("g", "", ""); st.Owner != n.name {
				must("group", "move", "g", "--node", n.name, "--wait")
			}
			c.waitGroupOnline("g", n.name, "")
		}
		cut := time.Now()
		c.cut(n)
		moved := c.waitGroupOnline("g", "", n.name)
		t.Logf("round %d: %s (owner, %s) cut off; the group came online on %s after %v",
			round+1, n.name, map[bool]string{true: "leader", false: "follower"}[n == leader], moved.Owner, time.Since(cut).Round(100*time.Millisecond))
		// The cut-off node stopped the resource by itself.
		c.eventually(n.name+" stopped its run", time.Minute, func() error {
			for _, r := range c.runs(shared) {
				if r.Node == n.name && r.How == "stop" && r.End.After(cut) {
					return nil
				}
			}
			return fmt.Errorf("no stop of %s's run after the cut", n.name)
		})
		c.heal(n)
		c.waitAllUp()
	}
	runs := c.runs(shared)
	if bad := tc.Overlaps(runs, "svc"); len(bad) > 0 {
		t.Fatalf("the group ran on two nodes at once:\n%s", strings.Join(bad, "\n"))
	}
	for _, r := range runs {
		t.Logf("run of svc on %s: %s .. %s (%s)", r.Node, r.Start.Format("15:04:05.000"), r.End.Format("15:04:05.000"), r.How)
	}
	if len(runs) < 3 {
		t.Fatalf("%d runs in the log; want at least three (first owner, after each cut)", len(runs))
	}
}

// waitGroupOnline waits until group is Online on node (any node when ""),
// other than not (when not "").
func (c *cluster) waitGroupOnline(group, node, not string) placement.GroupStatus {
	c.t.Helper()
	var last placement.GroupStatus
	c.eventually("group "+group+" online", 2*time.Minute, func() error {
		out, errOut, code := c.clusterCLI("group", "status", "--json")
		if code != 0 {
			return fmt.Errorf("group status: %s", errOut)
		}
		var list []placement.GroupStatus
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		for _, s := range list {
			if s.Name != group {
				continue
			}
			last = s
			if s.State == "Online" && (node == "" || s.Owner == node) && (not == "" || s.Owner != not) {
				return nil
			}
		}
		return fmt.Errorf("last status %+v", last)
	})
	return last
}

// clusterCLI runs the clusterkeep CLI on the host against the cluster's
// peer addresses.
func (c *cluster) clusterCLI(args ...string) (string, string, int) {
	c.t.Helper()
	var addrs []string
	for _, n := range c.nodes {
		addrs = append(addrs, n.API())
	}
	return c.hostCLI(append([]string{"--cluster", strings.Join(addrs, ",")}, args...)...)
}

// runs reads the shared log of the test resource.
func (c *cluster) runs(shared string) []tc.Run {
	c.t.Helper()
	rl, err := tc.ReadResourceLog(filepath.Join(shared, "runs.log"))
	if err != nil {
		c.t.Fatal(err)
	}
	return rl.Runs(50 * time.Millisecond)
}
