package main

import (
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// The members' table names every member's role, followers included, as
// the dashboard does.
func TestNodeTableNamesEveryRole(t *testing.T) {
	var b strings.Builder
	nodeTable(&b, []wire.NodeInfo{
		{Name: "node1", State: wire.NodeUp, Leader: true, Voter: true},
		{Name: "node2", State: wire.NodeUp, Voter: true},
		{Name: "node3", State: wire.NodeDown, Voter: true},
		{Name: "node4", State: wire.NodeJoining},
	})
	want := map[string]string{"node1": "leader", "node2": "follower", "node3": "follower", "node4": "non-voter"}
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 3 || want[f[0]] != f[2] {
			t.Errorf("row %q: want role %s in the third column\n%s", line, want[f[0]], b.String())
		}
		delete(want, f[0])
	}
	if len(want) > 0 {
		t.Errorf("rows missing for %v:\n%s", want, b.String())
	}
}
