package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/localcluster"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// boltLogCommit is the last commit whose agents keep the raft log in
// raft-boltdb (DATA_DIR/raft/raft.db).
const boltLogCommit = "60d5f92fb836fc962e04ba9d037478e723a6595b"

// oldBinary is clusterkeep as built at commit: CK_OLD_BINARY when set, else
// built from the repository's history (git archive, go build). A clone
// without that commit (a shallow clone) cannot build it: the test is
// skipped, saying so.
func oldBinary(t *testing.T, commit string) string {
	t.Helper()
	if p := os.Getenv("CK_OLD_BINARY"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if out, err := exec.Command("git", "-C", root, "cat-file", "-e", commit+"^{commit}").CombinedOutput(); err != nil {
		t.Skipf("SKIPPED, NOT PASSED: commit %s is not in this clone (a shallow clone?), so the version before it cannot be built; "+
			"fetch the full history or set CK_OLD_BINARY to a clusterkeep built at that commit: %v %s", commit, err, out)
	}
	src := t.TempDir()
	archive := exec.Command("git", "-C", root, "archive", "--format=tar", commit)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	var archiveErr strings.Builder
	archive.Stderr = &archiveErr
	if err := archive.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("extract commit %s: %v %s", commit, err, out)
	}
	if err := archive.Wait(); err != nil {
		t.Fatalf("git archive %s: %v %s", commit, err, archiveErr.String())
	}
	bin := filepath.Join(t.TempDir(), "clusterkeep-"+commit[:7])
	build := exec.Command("go", "build", "-o", bin, "./cmd/clusterkeep")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build clusterkeep at %s: %v\n%s", commit, err, out)
	}
	return bin
}

// TestUpgradeFromTheBoltLogKeepsEverything: a cluster whose data
// directories were made by the version that kept the raft log in
// raft-boltdb, started again on this version, converts each node's log and
// keeps every key, the membership and the cluster, and takes new writes.
func TestUpgradeFromTheBoltLogKeepsEverything(t *testing.T) {
	old := oldBinary(t, boltLogCommit)
	ctx := tc.Context(t)
	tc.UseTrust(t)
	dir := t.TempDir()
	lc, err := localcluster.Up(ctx, dir, 3, old)
	if lc != nil {
		t.Cleanup(func() {
			for _, nd := range lc.Nodes {
				lc.Stop(nd.Name, true)
			}
			if t.Failed() {
				tc.DumpLogs(t, lc)
			}
		})
	}
	if err != nil {
		t.Fatalf("local up with the old version: %v", err)
	}
	c := tc.Open(t, lc.APIAddrs())
	const keys = 200
	for i := range keys {
		set(t, c, fmt.Sprintf("Upgrade/k%03d", i), "v", uint32(i+1))
	}
	before, err := c.GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One node crashes, the others stop cleanly: both leave their log in
	// raft-boltdb form.
	if _, err := lc.Stop("node3", true); err != nil {
		t.Fatal(err)
	}
	for _, nd := range lc.Nodes[:2] {
		if _, err := lc.Stop(nd.Name, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range lc.Nodes {
		if _, err := os.Stat(filepath.Join(nd.DataDir, "raft", "raft.db")); err != nil {
			t.Fatalf("%s: the old version left no raft.db: %v", nd.Name, err)
		}
	}

	lc, err = localcluster.Up(ctx, dir, 3, tc.Binary(t))
	if err != nil {
		t.Fatalf("local up with this version: %v", err)
	}
	for _, nd := range lc.Nodes {
		raftDir := filepath.Join(nd.DataDir, "raft")
		if _, err := os.Stat(filepath.Join(raftDir, "raft.db")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: raft.db still in place: %v", nd.Name, err)
		}
		for _, f := range []string{"raft.db.migrated", "wal"} {
			if _, err := os.Stat(filepath.Join(raftDir, f)); err != nil {
				t.Fatalf("%s: %v", nd.Name, err)
			}
		}
	}
	tc.Eventually(t, "three nodes Up", func() error { return allUp(ctx, c, 3) })
	after, err := c.GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.ID != before.ID || after.Name != before.Name || after.Generation != before.Generation || !sameNodes(before.Nodes, after.Nodes) {
		t.Fatalf("cluster was %+v, is %+v", before, after)
	}
	set(t, c, "Upgrade/after", "v", 7)
	for _, nd := range lc.Nodes {
		waitHolds(t, nd, "Upgrade/after", "v", 7)
		for i := range keys {
			if got, err := hiveOf(t, nd, fmt.Sprintf("Upgrade/k%03d", i), "v"); err != nil || got != uint32(i+1) {
				t.Fatalf("%s: key %d holds %d (%v)", nd.Name, i, got, err)
			}
		}
	}
	// A linearizable read through the cluster sees the writes made before.
	if v, err := c.GetValue(ctx, "Upgrade/k000", "v"); err != nil || v.Uint32 != 1 {
		t.Fatalf("read after the upgrade: %+v %v", v, err)
	}
}

// sameNodes reports whether two node lists name the same members.
func sameNodes(a, b []wire.NodeInfo) bool {
	ids := map[string]string{}
	for _, n := range a {
		ids[n.ID] = n.Name
	}
	if len(a) != len(b) {
		return false
	}
	for _, n := range b {
		if name, ok := ids[n.ID]; !ok || name != n.Name {
			return false
		}
	}
	return true
}
