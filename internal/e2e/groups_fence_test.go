package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// An owner whose agent stops being scheduled (frozen: SIGSTOP here; a
// long pause of the machine or the process in life) renews no lease and
// so cannot fence itself, while its resources, processes of their own,
// run on. The leader starts the group elsewhere once the lease expired:
// the frozen node's resources must be gone by then, or the group runs
// on two nodes at once.
func TestGroupNeverRunsTwiceWhenItsOwnersAgentIsFrozen(t *testing.T) {
	e := newRolesEnv(t)
	e.resource("r")
	e.must("group", "create", "g", "--resources", "r", "--preferred-owners", "node2,node3", "--wanted", "online")
	e.waitGroup("g", "online on node2", onlineOn("node2"))
	nd, err := e.lc.Node("node2")
	if err != nil {
		t.Fatal(err)
	}
	pid := nd.PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(thaw)
	e.waitGroup("g", "failed over to node3", onlineOn("node3"))
	// Thawed, the agent finds its lease expired and stops what it runs.
	thaw()
	tc.Eventually(t, "r stopped on node2", func() error {
		for _, r := range e.runsOf("r") {
			if r.Node == "node2" && r.How == "killed" && time.Since(r.End) < time.Second {
				return fmt.Errorf("r on node2 alive at %s", r.End.Format("15:04:05.000"))
			}
		}
		return nil
	})
	if o := tc.Overlaps(e.runs(), "r"); len(o) > 0 {
		t.Errorf("r ran on node2, whose agent was frozen, while it ran on node3: %v", o)
	}
}
