package e2e

import (
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/consensuslog"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	wal "github.com/hashicorp/raft-wal"
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
	// Compact the log's head as raft does after a snapshot.
	w, err := wal.Open(consensuslog.Dir(n3.DataDir), wal.WithSegmentSize(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := w.FirstIndex()
	last, _ := w.LastIndex()
	if err := w.DeleteRange(first, last-1); err != nil {
		t.Fatal(err)
	}
	w.Close()
	before := dirSums(t, n3.DataDir)
	_, errOut, code := cli(t, nil, "restore", path, "--data-dir", n3.DataDir)
	if code == 0 || !strings.Contains(errOut, "cannot bring the backup's hive forward") || !strings.Contains(errOut, "nothing was changed") {
		t.Fatalf("restore of a backup older than the node's log: exit %d %s", code, errOut)
	}
	if after := dirSums(t, n3.DataDir); after != before {
		t.Fatalf("a refused restore changed the node's files: %v", changedFiles(before, after))
	}
}
