package e2e

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

// The owner's agent killed: its resources die with it, each group comes
// online on its next preferred owner once the lost node's lease expired,
// and when the node returns each group fails back as its policy says,
// stopped where it runs before it starts on the returning node.
func TestGroupFailsOverWhenItsOwnerIsKilledAndFailsBackPerPolicy(t *testing.T) {
	e := newRolesEnv(t)
	// Windows two hours from their edges: the minutes the test takes
	// cannot cross one.
	now := time.Now().UTC()
	hm := func(d time.Duration) string { return now.Add(d).Format("15:04") }
	policies := []struct {
		group    string
		flags    []string
		failback bool
	}{
		{"never", []string{"--failback", "never"}, false},
		{"immediately", []string{"--failback", "immediately"}, true},
		{"inwindow", []string{"--failback", "window", "--failback-window", hm(-2*time.Hour) + "-" + hm(2*time.Hour)}, true},
		{"outwindow", []string{"--failback", "window", "--failback-window", hm(2*time.Hour) + "-" + hm(4*time.Hour)}, false},
	}
	for _, p := range policies {
		e.resource("r-" + p.group)
		e.must(append([]string{"group", "create", p.group, "--resources", "r-" + p.group, "--preferred-owners", "node2,node3", "--wanted", "online"}, p.flags...)...)
	}
	for _, p := range policies {
		e.waitGroup(p.group, "online on node2", onlineOn("node2"))
	}

	if _, err := e.lc.Stop("node2", true); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for _, p := range policies {
		st := e.waitGroup(p.group, "failed over to node3", onlineOn("node3"))
		if st.Failovers != 1 || !strings.Contains(st.LastFailure, "node2") {
			t.Errorf("%s after the failover: failovers %d, last failure %q; want 1 and node2's loss", p.group, st.Failovers, st.LastFailure)
		}
	}
	// The agent's death killed its resources: nothing of node2 lived on
	// (a beat is 20 ms; 100 ms is for the kill to reach them).
	for _, l := range e.lines() {
		if l.Node == "node2" && l.At.After(killed.Add(100*time.Millisecond)) {
			t.Errorf("%s %s on node2 at %s, %s after its agent was killed", l.Event, l.Name, l.At.Format("15:04:05.000"), l.At.Sub(killed))
		}
	}
	epochs := map[string]uint64{}
	for name, st := range e.statuses() {
		epochs[name] = st.Epoch
	}

	if _, err := e.lc.Start(tc.Context(t), "node2"); err != nil {
		t.Fatal(err)
	}
	for _, p := range policies {
		if p.failback {
			e.waitGroup(p.group, "failed back to node2", func(s placement.GroupStatus) bool {
				return onlineOn("node2")(s) && s.Epoch > epochs[p.group]
			})
		}
	}
	// The decisions that failed those back were taken with the others':
	// those stay where they are, untouched.
	for _, p := range policies {
		if p.failback {
			continue
		}
		st := e.statuses()[p.group]
		if st.Owner != "node3" || st.State != "Online" || st.Epoch != epochs[p.group] {
			t.Errorf("%s (failback %s) after node2 returned: %+v; want it to stay online on node3 (epoch %d)", p.group, p.flags[1], st, epochs[p.group])
		}
		runs := e.runsOf("r-" + p.group)
		if last := runs[len(runs)-1]; last.Node != "node3" {
			t.Errorf("%s: runs %s; want it to stay on node3", p.group, describeRuns(runs))
		}
	}
	for _, p := range policies {
		if !p.failback {
			continue
		}
		// Stopped on node3 before it started on node2 again.
		e.stoppedBeforeStarted("r-"+p.group, "node3", "node2")
	}
}

func describeRuns(runs []tc.Run) string {
	var parts []string
	for _, r := range runs {
		parts = append(parts, fmt.Sprintf("%s %s..%s (%s)", r.Node, r.Start.Format("15:04:05.000"), r.End.Format("15:04:05.000"), r.How))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// A resource that keeps failing is restarted on its node up to its
// restart limit, then its group fails over to the next preferred owner;
// past the failover threshold the group stays offline, saying why, until
// an operator brings it online.
func TestGroupRestartsAFailingResourceToItsLimitThenFailsOverThenIsHeldAtTheThreshold(t *testing.T) {
	e := newRolesEnv(t)
	e.resourceWith("flaky", []string{"--restart-limit", "2"}, "-exit-after", "300ms")
	e.must("group", "create", "fragile", "--resources", "flaky", "--preferred-owners", "node2,node3", "--failover-threshold", "1", "--wanted", "online")

	// While it runs, the status shows the restarts and the last failure
	// of the resource.
	var seen *placement.GroupStatus
	held := e.waitGroup("fragile", "held offline", func(s placement.GroupStatus) bool {
		for _, r := range s.Resources {
			if r.Restarts > 0 && r.LastFailure != "" && seen == nil {
				seen = &s
			}
		}
		return s.State == "Failed" && s.Held != "" && s.Owner == ""
	})
	// Three failures (runs that exited) on node2, the first run and two
	// restarts, then three on node3, then none: held. (Runs a node stops
	// because it could not renew its lease are not failures.)
	runs := e.runsOf("flaky")
	exits := map[string]int{}
	for i, r := range runs {
		if r.How == "exit" {
			exits[r.Node]++
		}
		if r.Node == "node1" || i > 0 && r.Node == "node2" && runs[i-1].Node == "node3" {
			t.Fatalf("runs %s; want node2's, then node3's", describeRuns(runs))
		}
	}
	if exits["node2"] != 3 || exits["node3"] != 3 {
		t.Fatalf("runs %s; want three that exited on node2, then three on node3", describeRuns(runs))
	}
	if held.Owner != "" || held.Failovers != 2 || held.FailoverThreshold != 1 ||
		!strings.Contains(held.Reason, "threshold 1") || !strings.Contains(held.Held, "threshold 1") ||
		!strings.Contains(held.LastFailure, "node3") || !strings.Contains(held.LastFailure, "restart limit 2") {
		t.Fatalf("held status %+v", held)
	}
	if seen == nil {
		t.Error("no status showed the resource's restarts and last failure while it ran")
	} else if r := seen.Resources[0]; r.Name != "flaky" || !strings.Contains(r.LastFailure, "exited") || r.LastFailureAt.IsZero() {
		t.Errorf("resource status while it ran: %+v", r)
	}

	// `group online` clears the threshold and starts it again.
	var back placement.GroupStatus
	if err := json.Unmarshal([]byte(e.must("group", "online", "fragile", "--json")), &back); err != nil {
		t.Fatal(err)
	}
	if back.Held != "" || back.Failovers != 0 {
		t.Errorf("group online did not clear the threshold: %+v", back)
	}
	tc.Eventually(t, "fragile started again after group online", func() error {
		if n := e.starts("flaky"); n["node2"]+n["node3"]+n["node1"] <= 6 {
			return fmt.Errorf("starts %v", n)
		}
		return nil
	})
}

// The owner killed is the leader, which held every lease: the new leader
// knows none of them, waits out the longest one any leader granted, then
// fails the group over; it fails back once the old leader returns.
func TestGroupFailsOverWhenItsOwnerIsTheLeaderAndIsKilled(t *testing.T) {
	e := newRolesEnv(t)
	e.resource("r")
	e.must("group", "create", "g", "--resources", "r", "--preferred-owners", "node1,node2", "--failback", "immediately", "--wanted", "online")
	e.waitGroup("g", "online on node1", onlineOn("node1"))
	info := tc.Open(t, e.lc.APIAddrs()).Info()
	if info.Leader != "node1" {
		t.Skipf("node1 does not lead (%s does): this test kills the leader", info.Leader)
	}
	if _, err := e.lc.Stop("node1", true); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	st := e.waitGroup("g", "failed over to node2", onlineOn("node2"))
	if !strings.Contains(st.LastFailure, "node1") {
		t.Errorf("after the failover: last failure %q; want node1's loss", st.LastFailure)
	}
	for _, l := range e.lines() {
		if l.Node == "node1" && l.At.After(killed.Add(100*time.Millisecond)) {
			t.Errorf("%s %s on node1 at %s, %s after its agent was killed", l.Event, l.Name, l.At.Format("15:04:05.000"), l.At.Sub(killed))
		}
	}
	if _, err := e.lc.Start(tc.Context(t), "node1"); err != nil {
		t.Fatal(err)
	}
	e.waitGroup("g", "failed back to node1", onlineOn("node1"))
	e.stoppedBeforeStarted("r", "node2", "node1")
}

// Failback is for an owner that returns. A group that failed over
// because its resource kept failing on its preferred owner, a node that
// never left, stays where it now runs well, even with failback
// immediately: moving it back would only fail it again, until the
// failover threshold held it offline although another node runs it.
func TestGroupThatFailedOverForAFailureDoesNotFailBackToTheNodeItFailedOn(t *testing.T) {
	e := newRolesEnv(t)
	script := `if [ "$CLUSTERKEEP_NODE" = node2 ]; then exec "$0" -log "$1" -name r -exit-after 300ms; fi; exec "$0" -log "$1" -name r`
	argv, _ := json.Marshal([]string{"sh", "-c", script, e.res, e.log})
	e.must("resource", "add", "r", "--start", string(argv), "--monitor-interval", "500ms", "--monitor-timeout", "400ms", "--stop-timeout", "2s", "--restart-limit", "0")
	e.must("group", "create", "g", "--resources", "r", "--preferred-owners", "node2,node3", "--failback", "immediately", "--wanted", "online")
	g := e.waitGroup("g", "failed over to node3 (or held)", func(s placement.GroupStatus) bool { return onlineOn("node3")(s) || s.Held != "" })
	if g.Held != "" {
		t.Fatalf("g held offline although node3 runs it well: %+v; runs %s", g, describeRuns(e.runsOf("r")))
	}
	// A later group brought online is decided on after g's failback
	// would have been.
	e.resource("marker")
	e.must("group", "create", "marker", "--resources", "marker", "--wanted", "online")
	e.waitGroup("marker", "online", func(s placement.GroupStatus) bool { return s.State == "Online" && s.OwnerReport == "Online" })
	if st := e.statuses()["g"]; st.Owner != "node3" || st.Epoch != g.Epoch || st.State != "Online" {
		t.Errorf("g after failing over from node2 for a failure: %s on %s (%s), epoch %d (was %d); want it to stay online on node3",
			st.State, st.Owner, st.Reason, st.Epoch, g.Epoch)
	}
	if n := e.starts("r"); n["node2"] != 1 {
		t.Errorf("r started %d times on node2; want once (it failed there, and failed over)", n["node2"])
	}
}

// `group online --wait` brings back a group the failover threshold held
// offline (threshold 0: no automatic failover), once what failed is
// repaired.
func TestGroupOnlineWaitBringsBackAHeldGroup(t *testing.T) {
	e := newRolesEnv(t)
	broken := filepath.Join(t.TempDir(), "broken")
	check, _ := json.Marshal([]string{"sh", "-c", `test ! -e "$0"`, broken})
	e.resourceWith("h", []string{"--check", string(check), "--restart-limit", "0"})
	e.must("group", "create", "hg", "--resources", "h", "--preferred-owners", "node2", "--failover-threshold", "0", "--wanted", "online")
	e.waitGroup("hg", "online on node2", onlineOn("node2"))
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	held := e.waitGroup("hg", "held offline", func(s placement.GroupStatus) bool { return s.State == "Failed" && s.Held != "" && s.Owner == "" })
	if !strings.Contains(held.Reason, "automatic failover is off") {
		t.Errorf("held: %+v; want the reason to say automatic failover is off", held)
	}
	if n := e.starts("h"); n["node2"] != 1 || len(n) != 1 {
		t.Errorf("h started %v; want once, on node2 (no restart, no failover)", n)
	}
	os.Remove(broken)
	out, errOut, code := cli(t, e.env, "group", "online", "hg", "--wait")
	if code != 0 {
		t.Errorf("group online --wait of the held group: exit %d: %s%s", code, out, errOut)
	}
	e.waitGroup("hg", "online again", func(s placement.GroupStatus) bool { return s.State == "Online" && s.OwnerReport == "Online" })
}
