package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// The states a member of the restored cluster may be seen in after a kill:
// its old state (A=2, and C=9 unless its log holds C still to apply), the
// restored one (A=1, no C), or, between the move of a stale state aside and
// the receipt of the restored hive, none.
const (
	oldState      = "old"
	restoredState = "restored"
	noState       = "none"
)

// offlineState reads which state the stopped node at dataDir holds; a mix of
// the old state and the restored one fails the test.
func offlineState(t *testing.T, name, dataDir string) string {
	t.Helper()
	db := filepath.Join(dataDir, hive.FileName)
	if _, err := os.Stat(db); errors.Is(err, os.ErrNotExist) {
		return noState
	}
	if err := hive.CheckFile(db); err != nil {
		t.Fatalf("%s: the database is damaged: %v", name, err)
	}
	h, err := hive.OpenReadOnly(db)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer h.Close()
	a, aErr := h.GetValue("A", "v")
	_, cErr := h.GetValue("C", "v")
	switch {
	case aErr == nil && a.Uint32 == 2:
		return oldState
	case aErr == nil && a.Uint32 == 1 && cErr != nil:
		return restoredState
	case aErr != nil && cErr != nil:
		return noState
	}
	t.Fatalf("%s: the database mixes the old state and the restored one: A=%d (%v), C present: %v", name, a.Uint32, aErr, cErr == nil)
	return ""
}

// runKilledAfter starts the node and kills it (SIGKILL) once after has
// passed since its start, whatever it was doing by then.
func runKilledAfter(t *testing.T, lc *localcluster.Cluster, name string, after time.Duration) {
	t.Helper()
	if _, err := lc.Launch(name); err != nil {
		t.Fatal(err)
	}
	time.Sleep(after)
	if _, err := lc.Stop(name, true); err != nil {
		t.Logf("%s after %v: %v", name, after, err)
	}
}

// killWhen starts the node and kills it (SIGKILL) as soon as at holds of its
// data directory.
func killWhen(t *testing.T, lc *localcluster.Cluster, name string, at func(dataDir string) bool) {
	t.Helper()
	nd, err := lc.Launch(name)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if at(nd.DataDir) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the moment to kill it never came", name)
		}
	}
	if _, err := lc.Stop(name, true); err != nil {
		t.Fatal(err)
	}
}

// An authoritative restore survives a kill -9 at any point: of the restore
// command, of the restored node as it starts its new history, of a stale
// member as it moves its state aside and receives the restored hive, and of
// the restored node while a member is receiving it. After each kill every
// member holds its old state or the restored one, never a mix; running the
// same command again, or starting the node again, finishes the job; and the
// stale members never win.
func TestAuthoritativeRestoreKilledAtAnyMomentFinishes(t *testing.T) {
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	// A hive of some MiB, so that each step takes long enough to be hit.
	for i := range 16 {
		if _, err := c.SetValue(tc.Context(t), fmt.Sprintf("Blobs/b%d", i), wire.BinaryValue("d", make([]byte, 1<<20))); err != nil {
			t.Fatal(err)
		}
	}
	path := backupThenDown(t, lc, c)
	n1 := lc.Nodes[0]
	pristine := filepath.Join(t.TempDir(), "node1")
	if out, err := exec.Command("cp", "-a", n1.DataDir, pristine).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	var newSum string
	filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if filepath.Base(p) == hive.FileName {
			newSum = fileSum(p)
		}
		return nil
	})

	// The restore command, killed at any moment and run again.
	killCommandAtMoments(t, pristine, n1.DataDir, fileSum(filepath.Join(pristine, hive.FileName)), newSum,
		"restore", path, "--authoritative", "--data-dir", n1.DataDir)
	gen := generationOf(t, n1)

	// The restored node, killed as it starts its new consensus history.
	for _, after := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond} {
		runKilledAfter(t, lc, "node1", after)
		if s := offlineState(t, "node1", n1.DataDir); s != restoredState {
			t.Fatalf("node1 killed after %v as it started the restored cluster: it holds the %s state", after, s)
		}
	}
	if _, err := lc.Start(tc.Context(t), "node1"); err != nil {
		t.Fatal(err)
	}
	waitHolds(t, n1, "A", "v", 1)

	// Each stale member, killed at moments of its move aside and of its
	// receipt of the restored hive, then started again; node3 while the
	// restored node is killed too.
	for _, nd := range lc.Nodes[1:] {
		for _, after := range []time.Duration{300 * time.Millisecond, 700 * time.Millisecond, 1200 * time.Millisecond, 2 * time.Second} {
			leaderKilled := make(chan struct{})
			if nd.Name == "node3" && after == 1200*time.Millisecond {
				go func() {
					defer close(leaderKilled)
					time.Sleep(after - 200*time.Millisecond)
					lc.Stop("node1", true)
				}()
			} else {
				close(leaderKilled)
			}
			runKilledAfter(t, lc, nd.Name, after)
			<-leaderKilled
			s := offlineState(t, nd.Name, nd.DataDir)
			t.Logf("%s killed after %v: it holds the %s state", nd.Name, after, s)
			if s != restoredState && s != oldState && !asideHolds(t, []localcluster.Node{nd}, "A") {
				t.Fatalf("%s killed after %v: its old state is neither in place nor kept aside: %s", nd.Name, after, dirSums(t, nd.DataDir))
			}
			if !lc.Running("node1") {
				if st := offlineState(t, "node1", n1.DataDir); st != restoredState {
					t.Fatalf("node1, killed while %s started: it holds the %s state", nd.Name, st)
				}
				if _, err := lc.Start(tc.Context(t), "node1"); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := lc.Start(tc.Context(t), nd.Name); err != nil {
			t.Fatal(err)
		}
	}
	checkConverged(t, lc, c, gen)
}

// A stale member killed after it set its old state aside, and before the
// restored cluster added it, rejoins at its next start: node1, whose flags
// say --create, does not make a cluster of its own; node3, killed as it
// starts to set its state aside, finishes the move and rejoins.
func TestAStaleMemberKilledBeforeItRejoinedRejoinsAtItsNextStart(t *testing.T) {
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	path := backupThenDown(t, lc, c)
	n2 := lc.Nodes[1]
	m, errOut, code := restoreCLI(t, lc, path, "--authoritative", "--data-dir", n2.DataDir)
	gen, _ := m["generation"].(float64)
	if code != 0 {
		t.Fatalf("restore: %v %s", m, errOut)
	}
	if _, err := lc.Start(tc.Context(t), "node2"); err != nil {
		t.Fatal(err)
	}
	waitHolds(t, n2, "A", "v", 1)
	moments := map[string]func(string) bool{
		// Its old database is set aside.
		"node1": func(dir string) bool {
			m, _ := filepath.Glob(filepath.Join(dir, "aside", "*-stale-generation", hive.FileName))
			return len(m) > 0
		},
		// It recorded whom to rejoin through; nothing moved yet.
		"node3": func(dir string) bool { _, err := os.Stat(filepath.Join(dir, cluster.JoiningFile)); return err == nil },
	}
	for _, name := range []string{"node1", "node3"} {
		killWhen(t, lc, name, moments[name])
		nd, _ := lc.Node(name)
		id, _ := noderegistry.Load(nd.DataDir)
		_, err := os.Stat(filepath.Join(nd.DataDir, cluster.JoiningFile))
		t.Logf("%s killed: in cluster %q at generation %d, its join recorded: %v", name, id.ClusterID, id.Generation, err == nil)
		if _, err := lc.Start(tc.Context(t), name); err != nil {
			t.Fatal(err)
		}
	}
	checkConverged(t, lc, c, uint64(gen), lc.Nodes[0], lc.Nodes[2])
	for _, nd := range lc.Nodes {
		if _, err := os.Stat(filepath.Join(nd.DataDir, cluster.JoiningFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: the record of its join is still there once it joined (%v)", nd.Name, err)
		}
	}
}
