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

// A log of several segments starts at its first sealed segment's first
// entry, as raft-wal says.
func TestFirstIndexOfALogOfSeveralSegments(t *testing.T) {
	dataDir := t.TempDir()
	if err := os.MkdirAll(Dir(dataDir), 0o700); err != nil {
		t.Fatal(err)
	}
	w, err := wal.Open(Dir(dataDir), wal.WithSegmentSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 200; i++ {
		if err := w.StoreLogs([]*raft.Log{{Index: i, Term: 1, Type: raft.LogCommand, Data: make([]byte, 2048)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.DeleteRange(1, 40); err != nil {
		t.Fatal(err)
	}
	want, _ := w.FirstIndex()
	w.Close()
	segs, _ := os.ReadDir(Dir(dataDir))
	if len(segs) < 3 {
		t.Fatalf("the log has %d files, want several segments", len(segs))
	}
	if first, err := FirstIndex(dataDir); err != nil || first != want || want <= 1 {
		t.Fatalf("first index %d, %v; raft-wal says %d", first, err, want)
	}
}
