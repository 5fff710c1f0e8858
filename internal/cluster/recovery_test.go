package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/hashicorp/raft"
)

// TestAHiveItsLogCannotBringForwardIsRefused: a hive that stands before the
// entry preceding the log's first one is refused at start (raft would have
// to apply entries the log no longer holds); one that stands there, or
// later, or a node with no log, starts.
func TestAHiveItsLogCannotBringForwardIsRefused(t *testing.T) {
	h, err := hive.Open(filepath.Join(t.TempDir(), hive.FileName), hive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	s := &Service{hive: h}
	store := raft.NewInmemStore()
	if err := s.checkLogReaches(store); err != nil {
		t.Fatalf("a node with no log: %v", err)
	}
	for i := uint64(10); i <= 12; i++ {
		if err := store.StoreLog(&raft.Log{Index: i, Term: 1, Type: raft.LogCommand}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.checkLogReaches(store); !errors.Is(err, ErrLogGap) {
		t.Fatalf("a hive at 0 beside a log from 10: %v, want %v", err, ErrLogGap)
	}
	if _, err := h.Apply([]hive.Entry{{Index: 9, Term: 1, Mark: true}}); err != nil {
		t.Fatal(err)
	}
	if err := s.checkLogReaches(store); err != nil {
		t.Fatalf("a hive at 9 beside a log from 10: %v", err)
	}
}

// TestAnInstalledSnapshotLeftOverIsDropped: a snapshot whose state file was
// renamed into the hive by an install stopped before it dropped the rest is
// removed at start; a whole one is kept.
func TestAnInstalledSnapshotLeftOverIsDropped(t *testing.T) {
	raftDir := t.TempDir()
	whole, installed := filepath.Join(raftDir, snapshotDir, "2-10-1"), filepath.Join(raftDir, snapshotDir, "2-12-2")
	for _, d := range []string{whole, installed} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "meta.json"), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(whole, snapshotStateFile), []byte("hive"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := dropInstalledSnapshots(raftDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(installed); !os.IsNotExist(err) {
		t.Fatalf("the snapshot without its state file is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(whole, snapshotStateFile)); err != nil {
		t.Fatalf("the whole snapshot is gone: %v", err)
	}
	if err := dropInstalledSnapshots(t.TempDir()); err != nil {
		t.Fatalf("a node with no snapshots: %v", err)
	}
}

// TestAMemberJoiningARestoredClusterRenamesTheHiveIn: a cluster restored
// authoritatively starts its history at its hive, so a member that joins
// it is sent the hive as a snapshot; raft's store holds it as received,
// and it is renamed in as the member's hive, not written a second time.
func TestAMemberJoiningARestoredClusterRenamesTheHiveIn(t *testing.T) {
	base := t.TempDir()
	a := openSvc(t, filepath.Join(base, "a"), "a")
	if err := a.Create(ctx(t), "restored"); err != nil {
		t.Fatal(err)
	}
	writeKeys(t, 0, 20, a)
	a.Close()
	// What an authoritative restore leaves: the hive at a new history,
	// no consensus log, the node to start as a cluster of one.
	h, err := hive.Open(filepath.Join(base, "a", hive.FileName), hive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ResetConsensus(); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if err := os.RemoveAll(filepath.Join(base, "a", "raft")); err != nil {
		t.Fatal(err)
	}
	if _, err := noderegistry.Update(filepath.Join(base, "a"), func(i *noderegistry.Identity) error {
		i.Generation, i.Bootstrap = 2, true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	a = openSvc(t, filepath.Join(base, "a"), "a")
	leaderOf(t, a)
	b := openSvc(t, filepath.Join(base, "b"), "b")
	join(t, a, b)
	eventually(t, "b holds the restored keys", hasKeys(b, 20))
	if st := b.Stats(); st.SnapshotsInstalled != 1 || st.SnapshotsCopied != 0 {
		t.Fatalf("b installed %d snapshots, %d of them copied into its hive; want one, renamed in", st.SnapshotsInstalled, st.SnapshotsCopied)
	}
	if m, _ := filepath.Glob(filepath.Join(base, "b", "raft", snapshotDir, "*")); len(m) != 0 {
		t.Fatalf("b keeps the snapshot it installed: %v", m)
	}
}
