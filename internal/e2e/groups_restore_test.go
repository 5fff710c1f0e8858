package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// restoredGroups records groups A (online on node2) and B (offline), backs
// the cluster up, then takes A offline and brings B and a new group C
// (on node2) online; it stops every agent and restores the backup
// authoritatively on node1. It returns the restored generation and when
// the restore was made.
func restoredGroups(t *testing.T) (*rolesEnv, uint64, time.Time) {
	e := newRolesEnv(t)
	e.resource("a")
	e.resource("b")
	e.must("group", "create", "A", "--resources", "a", "--preferred-owners", "node2,node1", "--wanted", "online")
	e.must("group", "create", "B", "--resources", "b", "--preferred-owners", "node3")
	e.waitGroup("A", "online on node2", onlineOn("node2"))
	var bk backup.Result
	if err := json.Unmarshal([]byte(e.must("backup", "create", "--to", t.TempDir(), "--data-dir", t.TempDir(), "--json")), &bk); err != nil {
		t.Fatal(err)
	}

	// Since the backup: A offline, B online, C created and online.
	e.must("group", "offline", "A", "--wait")
	e.must("group", "online", "B", "--wait")
	e.resource("c")
	e.must("group", "create", "C", "--resources", "c", "--preferred-owners", "node2", "--wanted", "online")
	e.waitGroup("C", "online on node2", onlineOn("node2"))

	e.stoppedIndexes = appliedIndexes(e)
	for _, nd := range e.lc.Nodes {
		if _, err := e.lc.Stop(nd.Name, false); err != nil {
			t.Fatal(err)
		}
	}
	restored := time.Now()
	m, errOut, code := restoreCLI(t, e.lc, bk.Path, "--authoritative", "--data-dir", e.lc.Nodes[0].DataDir, "--force")
	gen, _ := m["generation"].(float64)
	if code != 0 || m["applied"] != "now" || gen <= 1 {
		t.Fatalf("restore: %v %s", m, errOut)
	}
	return e, uint64(gen), restored
}

// checkRestoredGroups checks that the cluster runs what the backup of
// restoredGroups describes, once every node is up at the restored
// generation: C is gone and runs nowhere, A runs (on node2, its restored
// placement, unless node2 came up after the leader gave up waiting for
// it) and ran nowhere else since the restore, B is offline. Neither b nor
// c starts after quiet (nor after the nodes converged).
func checkRestoredGroups(e *rolesEnv, gen uint64, restored, quiet time.Time) {
	t := e.t
	t.Helper()
	c := tc.Open(t, e.lc.APIAddrs())
	tc.Eventually(t, "three nodes Up", func() error { return allUp(tc.Context(t), c, 3) })
	for _, nd := range e.lc.Nodes {
		tc.Eventually(t, nd.Name+" at the restored generation", func() error {
			if g := generationOf(t, nd); g != gen {
				return fmt.Errorf("generation %d", g)
			}
			return nil
		})
	}
	if converged := time.Now(); converged.After(quiet) {
		quiet = converged
	}

	var groups []struct{ Name string }
	if err := json.Unmarshal([]byte(e.must("group", "list", "--json")), &groups); err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || groups[0].Name != "A" || groups[1].Name != "B" {
		t.Fatalf("groups after the restore: %+v; want A and B", groups)
	}
	t.Logf("after convergence: %s", appliedIndexes(e))
	a := e.waitGroup("A", "online", func(s placement.GroupStatus) bool { return s.State == "Online" && s.OwnerReport == "Online" })
	t.Logf("A after the restore: %s on %s (%s; last failure %q)", a.State, a.Owner, a.Reason, a.LastFailure)
	if a.Owner != "node2" && !strings.Contains(a.LastFailure, "node node2 was lost") {
		t.Errorf("A online on %s, not where its restored placement says (node2), and not because node2 was lost: %+v", a.Owner, a)
	}
	e.waitGroup("B", "offline", func(s placement.GroupStatus) bool { return s.State == "Offline" && s.Owner == "" })

	for _, l := range e.lines() {
		if l.At.After(quiet) && l.Event == "start" && (l.Name == "b" || l.Name == "c") {
			t.Errorf("%s started on %s at %s, after %s", l.Name, l.Node, l.At.Format("15:04:05.000"), quiet.Format("15:04:05.000"))
		}
	}
	tc.Eventually(t, "nothing of b and c runs", func() error {
		for _, r := range e.runs() {
			if (r.Name == "b" || r.Name == "c") && r.How == "killed" && time.Since(r.End) < time.Second {
				return fmt.Errorf("%s on %s alive at %s", r.Name, r.Node, r.End.Format("15:04:05.000"))
			}
		}
		return nil
	})
	var aRuns []string
	for _, r := range e.runsOf("a") {
		if r.Start.After(restored) {
			aRuns = append(aRuns, r.Node)
		}
	}
	if len(aRuns) == 0 || aRuns[len(aRuns)-1] != a.Owner {
		t.Errorf("a's runs since the restore on %v; want it running on %s", aRuns, a.Owner)
	}
}

// An authoritative restore to a backup with another group configuration,
// the restored node started first: the cluster ends up running what the
// backup describes, and nothing the backup does not describe ran since.
func TestGroupsAfterAnAuthoritativeRestoreAreWhatTheBackupDescribes(t *testing.T) {
	e, gen, restored := restoredGroups(t)
	for _, n := range []string{"node1", "node2", "node3"} {
		if _, err := e.lc.Start(tc.Context(t), n); err != nil {
			t.Fatal(err)
		}
	}
	checkRestoredGroups(e, gen, restored, restored)
}

// The same restore, the stale members started first: they run what their
// old state says (they cannot know better) until they meet the restored
// node; once the cluster has converged it runs what the backup
// describes.
func TestGroupsAfterAnAuthoritativeRestoreWithTheStaleMembersStartedFirst(t *testing.T) {
	e, gen, restored := restoredGroups(t)
	t.Logf("before the restore: %s", e.stoppedIndexes)
	for _, n := range []string{"node2", "node3"} {
		if _, err := e.lc.Start(tc.Context(t), n); err != nil {
			t.Fatal(err)
		}
	}
	tc.Eventually(t, "the stale members run B and C again", func() error {
		for _, want := range []string{"b node3", "c node2"} {
			found := false
			for _, l := range e.lines() {
				found = found || l.At.After(restored) && l.Event == "alive" && l.Name+" "+l.Node == want
			}
			if !found {
				return fmt.Errorf("%s not alive since the restore", want)
			}
		}
		return nil
	})
	if _, err := e.lc.Start(tc.Context(t), "node1"); err != nil {
		t.Fatal(err)
	}
	checkRestoredGroups(e, gen, restored, time.Time{})
}

// appliedIndexes says which index each node's database has applied (the
// resource manager acts on placements only once it applied its grant's).
func appliedIndexes(e *rolesEnv) string {
	var nodes struct {
		Nodes []wire.NodeInfo `json:"nodes"`
	}
	json.Unmarshal([]byte(e.must("node", "list", "--json")), &nodes)
	var parts []string
	for _, n := range nodes.Nodes {
		parts = append(parts, fmt.Sprintf("%s applied %d", n.Name, n.Applied))
	}
	return strings.Join(parts, ", ")
}
