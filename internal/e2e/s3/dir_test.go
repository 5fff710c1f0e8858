package s3

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/backend"
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// Prune on a directory target: the policy's sets stay, an abandoned
// partial set goes, one whose writer may live stays, a directory that is
// not a set is left alone; when the newest set does not verify, the
// newest that does is kept too.
func TestPruneDirectoryTarget(t *testing.T) {
	nodes := tc.InProcessWith(t, 1, nil)
	env := []string{client.EnvCluster + "=" + nodes[0].API()}
	to := t.TempDir()
	var paths []string
	for range 4 {
		var res backup.Result
		jsonCLI(t, env, &res, "backup", "create", "--to", to, "--data-dir", t.TempDir())
		paths = append(paths, res.Path)
	}
	// A partial set of a running process (this one, writing it), one of
	// this host whose process is gone (named as this one's is, with
	// another process id), one whose host an older clusterkeep did not
	// record, and a directory that is no set.
	w, err := backend.NewDir(to).Begin(tc.Context(t), "y")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	livePartial := ""
	entries, _ := os.ReadDir(to)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".y.partial-"+strconv.Itoa(os.Getpid())+"@") {
			livePartial = filepath.Join(to, e.Name())
		}
	}
	if livePartial == "" {
		t.Fatalf("no partial directory of this process among %v", entries)
	}
	_, tag, _ := strings.Cut(strings.TrimPrefix(filepath.Base(livePartial), ".y.partial-"), "@")
	deadPartial := filepath.Join(to, ".x.partial-2147483646@"+tag)
	legacyPartial := filepath.Join(to, ".z.partial-2147483646-abc")
	for _, d := range []string{deadPartial, legacyPartial, filepath.Join(to, "notaset")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var pr backup.PruneResult
	jsonCLI(t, env, &pr, "backup", "prune", to, "--keep-last", "2")
	if len(pr.Kept) != 2 || pr.Kept[0].Path != paths[3] || pr.Kept[1].Path != paths[2] || len(pr.Removed) != 2 {
		t.Fatalf("prune: kept %+v removed %+v", pr.Kept, pr.Removed)
	}
	if len(pr.Unreadable) != 1 || !strings.Contains(pr.Unreadable[0], "notaset") {
		t.Fatalf("unreadable: %v", pr.Unreadable)
	}
	for _, p := range paths[:2] {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s is still there", p)
		}
	}
	if _, err := os.Stat(deadPartial); !os.IsNotExist(err) {
		t.Fatal("the abandoned partial set is still there")
	}
	for _, d := range []string{livePartial, legacyPartial, filepath.Join(to, "notaset")} {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("%s was removed: %v", d, err)
		}
	}
	// The newest set is damaged: it is kept by the policy, and the newest
	// that verifies is kept as well.
	db := filepath.Join(paths[3], "data", "writers")
	var clusdb string
	filepath.WalkDir(db, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == hive.FileName {
			clusdb = p
		}
		return nil
	})
	b, err := os.ReadFile(clusdb)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	os.WriteFile(clusdb, b, 0o600)
	jsonCLI(t, env, &pr, "backup", "prune", to, "--keep-last", "1")
	if len(pr.Kept) != 2 || len(pr.Removed) != 0 || len(pr.Verified) != 1 || pr.Verified[0] != paths[2] || len(pr.Unverified) != 1 {
		t.Fatalf("prune with the newest damaged: %+v", pr)
	}
	if got := strings.Join(pr.Kept[1].Reasons, "; "); got != "newest verified backup" {
		t.Fatalf("the older set is kept for %q", got)
	}
	// No rule: refused.
	if _, errOut, code := cli(t, env, "backup", "prune", to); code != 2 || !strings.Contains(errOut, "--keep-last") {
		t.Fatalf("prune without a rule: exit %d %s", code, errOut)
	}
}
