package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// stoppedBeforeStarted checks that resource name moved from node from to
// node to: its last run on from stopped before the runs after it, all on
// to, started. (A node that could not renew its lease on a loaded
// machine stops and starts its groups again: runs on one node may be
// several.)
func (e *rolesEnv) stoppedBeforeStarted(name, from, to string) {
	e.t.Helper()
	// A resource counts as running once its process is (it has no
	// check): its start line may come a moment after the status says so.
	tc.Eventually(e.t, name+" logged its start on "+to, func() error {
		runs := e.runsOf(name)
		if len(runs) > 0 && runs[len(runs)-1].Node == to {
			return nil
		}
		return fmt.Errorf("runs %s", describeRuns(runs))
	})
	runs := e.runsOf(name)
	last := -1
	for i, r := range runs {
		if r.Node == from {
			last = i
		}
	}
	ok := last >= 0 && last < len(runs)-1 && runs[last].How == "stop"
	for _, r := range runs[last+1:] {
		ok = ok && r.Node == to && runs[last].End.Before(r.Start)
	}
	if !ok {
		e.t.Fatalf("%s: runs %s; want it stopped on %s before it started on %s", name, describeRuns(runs), from, to)
	}
}

// The operator's move (to a node, and to the best other node), offline
// and online, and pause with and without drain; each moved group stops
// where it ran before it starts elsewhere.
func TestGroupOperatorMoveOnlineOfflinePauseAndDrain(t *testing.T) {
	e := newRolesEnv(t)
	e.resource("m")
	e.resource("p")
	e.resource("n")
	e.must("group", "create", "gm", "--resources", "m", "--preferred-owners", "node1", "--possible-owners", "node1,node3")
	e.must("group", "online", "gm", "--wait")
	e.waitGroup("gm", "online on node1", onlineOn("node1"))

	e.must("group", "move", "gm", "--node", "node3", "--wait")
	e.waitGroup("gm", "online on node3", onlineOn("node3"))
	e.stoppedBeforeStarted("m", "node1", "node3")
	// The best other node: node1, its only other possible owner.
	e.must("group", "move", "gm", "--wait")
	e.waitGroup("gm", "online on node1", onlineOn("node1"))
	e.stoppedBeforeStarted("m", "node3", "node1")

	e.must("group", "offline", "gm", "--wait")
	if runs := e.runsOf("m"); runs[len(runs)-1].How != "stop" {
		t.Fatalf("gm offline, but m: %s", describeRuns(runs))
	}
	e.must("group", "online", "gm", "--wait")
	e.waitGroup("gm", "online on node1", onlineOn("node1"))

	// Paused, node2 keeps what it runs and takes nothing new.
	e.must("group", "create", "gp", "--resources", "p", "--preferred-owners", "node2", "--wanted", "online")
	gp := e.waitGroup("gp", "online on node2", onlineOn("node2"))
	e.must("node", "pause", "node2")
	e.must("group", "create", "gn", "--resources", "n", "--preferred-owners", "node2,node3", "--wanted", "online")
	e.waitGroup("gn", "online on node3, node2 being paused", onlineOn("node3"))
	if st := e.statuses()["gp"]; st.Owner != "node2" || st.State != "Online" || st.Epoch != gp.Epoch {
		t.Fatalf("gp after node2 was paused: %+v; want it to stay on node2", st)
	}
	runs := e.runsOf("p")
	for _, r := range runs {
		if r.Node != "node2" {
			t.Fatalf("gp's resource after node2 was paused: %s; want it on node2 only", describeRuns(runs))
		}
	}
	if runs[len(runs)-1].How != "killed" {
		t.Fatalf("gp's resource after node2 was paused: %s; want it still running", describeRuns(runs))
	}
	e.refused("paused", "group", "move", "gn", "--node", "node2")

	// Drained, its groups move away.
	e.must("node", "pause", "node2", "--drain")
	st := e.waitGroup("gp", "moved off node2", func(s placement.GroupStatus) bool { return s.State == "Online" && s.Owner != "node2" })
	e.stoppedBeforeStarted("p", "node2", st.Owner)
	e.must("node", "resume", "node2")
	e.must("group", "move", "gn", "--node", "node2", "--wait")
	e.waitGroup("gn", "online on node2", onlineOn("node2"))
	e.stoppedBeforeStarted("n", "node3", "node2")

	// Bad input is refused, clearly, and changes nothing.
	e.resource("q")
	e.resource("free")
	e.must("group", "create", "goff", "--resources", "q", "--wanted", "offline")
	_, noSystemd := os.Stat("/run/systemd/system")
	if noSystemd != nil {
		// No node here runs systemd: a group of a unit is recorded, but
		// not brought online, nor created online.
		e.must("resource", "add", "unit", "--type", "systemd", "--unit", "web.service")
		e.must("resource", "add", "unit2", "--type", "systemd", "--unit", "web2.service")
		e.must("group", "create", "gsd", "--resources", "unit")
	}
	groups, status := e.must("group", "list", "--json"), e.must("group", "status", "--json")
	if noSystemd != nil {
		e.refused("cannot run systemd resources", "group", "online", "gsd")
		e.refused("cannot run systemd resources", "group", "create", "gsd2", "--resources", "unit2", "--wanted", "online")
	}
	e.refused("node9", "group", "move", "gm", "--node", "node9")
	e.refused("not among its possible owners", "group", "move", "gm", "--node", "node2")
	e.refused("offline", "group", "move", "goff")
	e.refused("runs on node1 already", "group", "move", "gm", "--node", "node1")
	for _, action := range []string{"move", "online", "offline"} {
		e.refused("no such group", "group", action, "nope")
	}
	e.refused("no resource named nosuch", "group", "create", "bad", "--resources", "nosuch")
	e.refused("already in group gm", "group", "create", "bad", "--resources", "m")
	e.refused("owner node9 is not a member", "group", "create", "bad", "--resources", "free", "--preferred-owners", "node9")
	e.refused("owner node9 is not a member", "group", "create", "bad", "--resources", "free", "--possible-owners", "node1,node9")
	e.refused("owner node9 is not a member", "group", "set", "gm", "--possible-owners", "node1,node9")
	if g, s := e.must("group", "list", "--json"), e.must("group", "status", "--json"); g != groups || s != status {
		t.Fatalf("a refusal changed the groups:\n%s\n%s\nwas:\n%s\n%s", g, s, groups, status)
	}

	// A group removed while online stops where it runs.
	e.must("group", "remove", "gn")
	tc.Eventually(t, "n stopped once gn was removed", func() error {
		if runs := e.runsOf("n"); runs[len(runs)-1].How != "stop" {
			return fmt.Errorf("runs %s", describeRuns(runs))
		}
		return nil
	})
	if _, ok := e.statuses()["gn"]; ok {
		t.Fatal("gn removed, but in the status")
	}
}

// A move the cluster refuses (no node can take the group) fails `group
// move --wait`; once a node can, the next move succeeds.
func TestGroupMoveAfterARefusedMove(t *testing.T) {
	e := newRolesEnv(t)
	e.resource("m")
	e.must("group", "create", "gm", "--resources", "m", "--preferred-owners", "node1", "--possible-owners", "node1,node3", "--wanted", "online")
	e.waitGroup("gm", "online on node1", onlineOn("node1"))
	e.must("node", "pause", "node3")
	e.refused("refused", "group", "move", "gm", "--wait")
	if st := e.statuses()["gm"]; st.Owner != "node1" || st.State != "Online" {
		t.Fatalf("after a refused move: %+v", st)
	}
	e.must("node", "resume", "node3")
	out, errOut, code := cli(t, e.env, "group", "move", "gm", "--node", "node3", "--wait")
	if code != 0 {
		t.Errorf("move to node3 once it can take the group: exit %d: %s%s", code, out, errOut)
	}
	e.waitGroup("gm", "online on node3", onlineOn("node3"))
	if st := e.statuses()["gm"]; strings.Contains(st.Reason, "refused") {
		t.Errorf("moved, but the status still says %q", st.Reason)
	}
}
