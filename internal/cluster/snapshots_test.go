package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/hive"
)

// TestRestoredHiveResumesAtItsIndex: a node whose consensus log is gone and
// whose hive is a copy taken earlier (a wiped node restored from a backup
// set) starts where the copy stands in the log: the leader sends it only
// the entries after the copy, not the whole log nor the whole hive.
func TestRestoredHiveResumesAtItsIndex(t *testing.T) {
	base := t.TempDir()
	open := func(name string) *Service {
		cfg := fastConfig(t, filepath.Join(base, name), name)
		cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotInterval = 64, 200, 100*time.Millisecond
		return openWith(t, cfg)
	}
	a, b, c := formThree(t, "resume", open)
	write := func(from, to int) { t.Helper(); writeKeys(t, from, to, a, b) }
	write(0, 300)
	eventually(t, "c has every key", hasKeys(c, 300))

	// The copy, as a backup takes it: a read transaction of c's hive.
	copyPath := filepath.Join(base, "copy")
	at := copyHive(t, c, copyPath)
	if at.Index == 0 || at.Term == 0 || at.Config == nil {
		t.Fatalf("the hive does not know where it stands in the log: %+v", at)
	}

	c.Close()
	write(300, 340)

	dir := filepath.Join(base, "c")
	if err := os.RemoveAll(filepath.Join(dir, "raft")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(copyPath, filepath.Join(dir, hive.FileName)); err != nil {
		t.Fatal(err)
	}
	c = open("c")
	eventually(t, "c catches up from the log", hasKeys(c, 340))
	// c's new log starts after the copy: the leader sent it the entries
	// it lacked and none it had (without the copy's position it starts at
	// index 0, and is sent the whole log, or the whole hive once the log's
	// start is compacted away).
	if first, err := c.store.FirstIndex(); err != nil || first != at.Index+1 {
		t.Fatalf("c's log starts at %d (%v), want %d: the entry after the copy", first, err, at.Index+1)
	}
	if n := c.Stats().SnapshotsInstalled; n != 0 {
		t.Fatalf("c was sent the whole hive %d times; it needed only the entries after %d", n, at.Index)
	}
	// And it keeps up as a member: a later write reaches it.
	write(340, 341)
	eventually(t, "c takes new writes", hasKeys(c, 341))
}

// TestHiveNewerThanItsLogCatchesUp: a lagging node restored from a set
// newer than its own log, its raft directory kept, starts at the set's
// index and takes the entries after it. (The leader, which still holds
// the node's old place in the log, sends from there: the entries up to the
// set's index land in the log again, and are not applied twice.)
func TestHiveNewerThanItsLogCatchesUp(t *testing.T) {
	base := t.TempDir()
	open := func(name string) *Service { return openSvc(t, filepath.Join(base, name), name) }
	a, b, c := formThree(t, "ahead", open)
	write := func(from, to int) { t.Helper(); writeKeys(t, from, to, a, b) }
	write(0, 20)
	eventually(t, "c has k/19", func() error { _, err := c.Hive().GetValue("k/19", "v"); return err })
	c.Close()
	write(20, 60)
	// The set: a copy of the leader's hive, well past c's log.
	at := copyHive(t, leaderOf(t, a, b), filepath.Join(base, "c", hive.FileName))
	write(60, 70)
	c = open("c")
	eventually(t, "c takes the entries after the set", hasKeys(c, 70))
	if r, err := c.currentRaft(); err != nil {
		t.Fatal(err)
	} else if st := r.Stats(); st["last_snapshot_index"] != fmt.Sprint(at.Index) {
		t.Fatalf("c started at snapshot index %s, want the set's %d", st["last_snapshot_index"], at.Index)
	}
	if n := c.Stats().SnapshotsInstalled; n != 0 {
		t.Fatalf("c was sent the whole hive %d times", n)
	}
}

// formThree creates a cluster of three services opened by open and
// returns them, the first leading.
func formThree(t *testing.T, name string, open func(string) *Service) (a, b, c *Service) {
	t.Helper()
	a, b, c = open("a"), open("b"), open("c")
	if err := a.Create(ctx(t), name); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, a)
	join(t, a, b)
	join(t, a, c)
	return a, b, c
}

// writeKeys sets k/from … k/to-1 through whichever of svcs leads.
func writeKeys(t *testing.T, from, to int, svcs ...*Service) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := leaderOf(t, svcs...).Apply(ctx(t), hive.Txn{Ops: []hive.Op{hive.SetValue(fmt.Sprintf("k/%d", i), hive.Uint32Value("v", uint32(i)))}}); err != nil {
			t.Fatal(err)
		}
	}
}

// hasKeys holds once s's hive has k/0 … k/n-1 as writeKeys set them.
func hasKeys(s *Service, n int) func() error {
	return func() error {
		for i := range n {
			if v, err := s.Hive().GetValue(fmt.Sprintf("k/%d", i), "v"); err != nil || v.Uint32 != uint32(i) {
				return fmt.Errorf("k/%d: %+v %v", i, v, err)
			}
		}
		return nil
	}
}

// copyHive writes s's hive to path as a backup takes it (a read
// transaction) and returns where the copy stands in the log.
func copyHive(t *testing.T, s *Service, path string) hive.Position {
	t.Helper()
	snap, err := s.Hive().Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := snap.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return snap.Reader().Position()
}

// TestPositionIsForgottenForANewHistory: an authoritative restore's reset
// (and a cleared hive) leave no position, so raft starts them afresh.
func TestPositionIsForgottenForANewHistory(t *testing.T) {
	h, err := hive.Open(filepath.Join(t.TempDir(), hive.FileName), hive.Options{CommitInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Apply([]hive.Entry{{Index: 7, Term: 2, Mark: true, Config: []byte{1}}, {Index: 9, Term: 3, Txn: hive.Txn{Ops: []hive.Op{hive.SetValue("A", hive.Uint32Value("v", 1))}}}}); err != nil {
		t.Fatal(err)
	}
	if p := h.Position(); p.Index != 9 || p.Term != 3 || p.ConfigIndex != 7 || string(p.Config) != "\x01" {
		t.Fatalf("position %+v", p)
	}
	if err := h.ResetConsensus(); err != nil {
		t.Fatal(err)
	}
	if p := h.Position(); p.Index != 0 || p.Term != 0 || p.Config != nil || p.ConfigIndex != 0 {
		t.Fatalf("position after reset %+v", p)
	}
	if _, ok := snapshotMeta(h.Position()); ok {
		t.Fatal("a reset hive is offered as a snapshot")
	}
}
