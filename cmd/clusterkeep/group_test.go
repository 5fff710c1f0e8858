package main

import (
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
)

// A group whose owner stopped renewing says so, and when it fails over.
func TestGroupStatusTextNamesAnUnreachableOwner(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	var b strings.Builder
	groupStatusText(&b, []placement.GroupStatus{
		{Name: "site", Wanted: "online", State: "Online", Owner: "node2", OwnerUnreachable: true,
			OwnerLastHeard: now.Add(-2 * time.Second), OwnerLeaseEnds: now.Add(5 * time.Second)},
		{Name: "spare", Wanted: "online", State: "Online", Owner: "node3"},
	}, now)
	out := b.String()
	if !strings.Contains(out, "owner unreachable (last heard 2s ago); its lease ends 10:00:05Z (in 5s), then the group fails over") {
		t.Errorf("status text:\n%s", out)
	}
	if strings.Count(out, "unreachable") != 1 {
		t.Errorf("only site's owner is unreachable:\n%s", out)
	}
}
