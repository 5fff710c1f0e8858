package consensuslog

import (
	"os"
	"testing"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
)

// A node with no log, or a log never written to, holds no entry; the range
// of one written to and compacted is read as raft sees it.
func TestFirstIndexOfNoLogAnEmptyOneAndACompactedOne(t *testing.T) {
	dataDir := t.TempDir()
	if first, err := FirstIndex(dataDir); err != nil || first != 0 {
		t.Fatalf("no log: %d, %v", first, err)
	}
	if err := os.MkdirAll(Dir(dataDir), 0o700); err != nil {
		t.Fatal(err)
	}
	w, err := wal.Open(Dir(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if first, err := FirstIndex(dataDir); err != nil || first != 0 {
		t.Fatalf("an empty log: %d, %v", first, err)
	}
	if w, err = wal.Open(Dir(dataDir)); err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte("x")})
	}
	if err := w.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := w.DeleteRange(1, 12); err != nil {
		t.Fatal(err)
	}
	want, _ := w.FirstIndex()
	w.Close()
	if first, err := FirstIndex(dataDir); err != nil || first != want || want != 13 {
		t.Fatalf("a compacted log: %d, %v; raft-wal says %d, want 13", first, err, want)
	}
	if last, err := LastIndex(dataDir, 0); err != nil || last != 20 {
		t.Fatalf("last index %d, %v; want 20", last, err)
	}
}
