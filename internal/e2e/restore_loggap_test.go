package e2e

import (
	"fmt"
	"strings"
	"testing"

	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// The restore command refuses, before anything changes, a backup older than
// the start of the node's kept consensus log: the node could not bring it
// forward.
func TestRestoreOfABackupOlderThanTheNodesLogIsRefusedByTheCommand(t *testing.T) {
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	path := takeBackup(t, lc, "node3")
	for i := range 3 {
		set(t, c, "A", "v", uint32(i))
	}
	n3 := lc.Nodes[2]
	if _, err := lc.Stop("node3", false); err != nil {
		t.Fatal(err)
	}
	last := tc.CompactLogHead(t, n3.DataDir)
	before := dirSums(t, n3.DataDir)
	_, errOut, code := cli(t, nil, "restore", path, "--data-dir", n3.DataDir)
	if code == 0 || !strings.Contains(errOut, "cannot bring the backup's hive forward") || !strings.Contains(errOut, fmt.Sprintf("starts at index %d", last)) || !strings.Contains(errOut, "nothing was changed") {
		t.Fatalf("restore of a backup older than the node's log: exit %d %s", code, errOut)
	}
	if after := dirSums(t, n3.DataDir); after != before {
		t.Fatalf("a refused restore changed the node's files: %v", changedFiles(before, after))
	}
}
