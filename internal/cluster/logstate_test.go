package cluster

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/consensuslog"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The offline reads of a stopped node's log, against the log store the
// service writes: its range, and a note when its hive is behind it.
func TestUnappliedNoteComparesTheLogWithTheHive(t *testing.T) {
	dir := t.TempDir()
	if note := UnappliedNote(dir, 0); note != "" {
		t.Fatalf("a node without a log: %q", note)
	}
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	store, err := openLogStore(filepath.Join(dir, "raft"), hclog.NewNullLogger(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 5; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand})
	}
	if err := store.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	// Raft compacts the head of the log as it snapshots.
	if err := store.DeleteRange(1, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := consensuslog.FirstIndex(dir); !errors.Is(err, consensuslog.ErrInUse) {
		t.Fatalf("the first index of a log in use: %v, want %v", err, consensuslog.ErrInUse)
	}
	store.Close()
	if last, err := consensuslog.LastIndex(dir, 0); err != nil || last != 5 {
		t.Fatalf("last index %d, %v; want 5", last, err)
	}
	if first, err := consensuslog.FirstIndex(dir); err != nil || first != 3 {
		t.Fatalf("first index %d, %v; want 3", first, err)
	}
	if note := UnappliedNote(dir, 3); !strings.Contains(note, "up to index 5") || !strings.Contains(note, "up to 3") {
		t.Fatalf("hive behind its log: %q", note)
	}
	if note := UnappliedNote(dir, 5); note != "" {
		t.Fatalf("hive level with its log: %q", note)
	}
}
