package testcluster

import (
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/consensuslog"
	wal "github.com/hashicorp/raft-wal"
)

// CompactLogHead drops every entry but the last from the consensus log of
// the stopped node at dataDir, as raft does after a snapshot, and returns
// the index of the entry left.
func CompactLogHead(t testing.TB, dataDir string) uint64 {
	t.Helper()
	w, err := wal.Open(consensuslog.Dir(dataDir), wal.WithSegmentSize(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	first, _ := w.FirstIndex()
	last, _ := w.LastIndex()
	if err := w.DeleteRange(first, last-1); err != nil {
		t.Fatal(err)
	}
	return last
}
