package staging

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func holds(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != want {
		t.Fatalf("%s holds %q (%v), want %q", path, b, err, want)
	}
}

func stage(t *testing.T, dataDir, id, db string) {
	t.Helper()
	w, err := Begin(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	write(t, w.DatabasePath(), db)
	if err := w.Commit(Plan{ID: id, Authoritative: true, Identity: noderegistry.Identity{NodeID: "n1", NodeName: "node1", ClusterID: "c", Generation: 2}}); err != nil {
		t.Fatal(err)
	}
}

// A restore staged over one whose apply was killed half way finishes the old
// one first: the node's old database and its consensus log are kept aside
// together, not split between two folders.
func TestARestoreStagedOverABegunOneFinishesItFirst(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, hive.FileName), "old database")
	write(t, filepath.Join(dir, raftDir, "wal"), "old log")
	if err := noderegistry.Save(dir, noderegistry.Identity{NodeID: "n1", NodeName: "node1", ClusterID: "c", Generation: 1}); err != nil {
		t.Fatal(err)
	}
	stage(t, dir, "one", "first restore")
	// The apply of "one" is killed after its first move: the log is aside,
	// the old database still in place.
	kept := filepath.Join(dir, AsideDir, "restore-one")
	if err := os.MkdirAll(kept, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, raftDir), filepath.Join(kept, raftDir)); err != nil {
		t.Fatal(err)
	}
	stage(t, dir, "two", "second restore")
	holds(t, filepath.Join(kept, raftDir, "wal"), "old log")
	holds(t, filepath.Join(kept, hive.FileName), "old database")
	if p, err := ApplyFiles(dir); err != nil || p == nil || p.ID != "two" {
		t.Fatalf("apply: %+v %v", p, err)
	}
	holds(t, filepath.Join(dir, hive.FileName), "second restore")
	holds(t, filepath.Join(dir, AsideDir, "restore-two", hive.FileName), "first restore")
	if p, err := Pending(dir); err != nil || p != nil {
		t.Fatalf("still pending: %+v %v", p, err)
	}
}

// A restore staged over one that never began applying replaces it.
func TestARestoreStagedOverAnUnbegunOneReplacesIt(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, hive.FileName), "old database")
	stage(t, dir, "one", "first restore")
	stage(t, dir, "two", "second restore")
	if _, err := os.Stat(filepath.Join(dir, AsideDir, "restore-one")); !os.IsNotExist(err) {
		t.Fatalf("the replaced restore was applied: %v", err)
	}
	if p, err := ApplyFiles(dir); err != nil || p == nil || p.ID != "two" {
		t.Fatalf("apply: %+v %v", p, err)
	}
	holds(t, filepath.Join(dir, hive.FileName), "second restore")
	holds(t, filepath.Join(dir, AsideDir, "restore-two", hive.FileName), "old database")
}
