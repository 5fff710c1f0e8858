package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backend"
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/retention"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// Prune on a directory shared with other hosts touches no set that is not
// complete unless its writer is certainly gone: a set this process is
// writing, one written on another host whose writer's heartbeat is recent,
// one an older clusterkeep wrote without naming its host, all stay, files
// and all; only a partial of this host whose process is gone and one of
// another host silent for longer than the partial age go. A dry run
// removes nothing.
func TestPruneTouchesNoIncompleteSetWhoseWriterMayLive(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	to := t.TempDir()
	var paths []string
	for range 2 {
		res := create(t, backup.Options{DataDir: t.TempDir(), Cluster: []string{nodes[0].API()}, To: to})
		paths = append(paths, res.Path)
	}

	// A set this process is writing, with a file in it.
	w, err := backend.NewDir(to).Begin(context.Background(), "being-written")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	obj, err := w.Create("data/part")
	if err != nil {
		t.Fatal(err)
	}
	obj.Write([]byte("half a backup"))
	if err := obj.Commit(); err != nil {
		t.Fatal(err)
	}
	var live string
	entries, _ := os.ReadDir(to)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".being-written.partial-") {
			live = e.Name()
		}
	}
	if live == "" {
		t.Fatalf("no partial directory among %v", entries)
	}
	// Its name says PID@HOST@MACHINE: the same with a process that is gone
	// is this host's abandoned partial.
	tag := strings.TrimPrefix(live, ".being-written.partial-")
	tag = tag[:strings.LastIndex(tag, "-")]
	pid, rest, _ := strings.Cut(tag, "@")
	if pid != strconv.Itoa(os.Getpid()) {
		t.Fatalf("the partial %s does not name this process (%d)", live, os.Getpid())
	}
	fresh, stale := time.Now().Add(-time.Minute), time.Now().Add(-7*time.Hour)
	partial := func(name string, mod time.Time) string {
		t.Helper()
		p := filepath.Join(to, name)
		if err := os.MkdirAll(filepath.Join(p, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(p, "data", "f"), []byte("x"), 0o600)
		os.Chtimes(p, mod, mod)
		return name
	}
	deadHere := partial(".a.partial-2147483646@"+rest+"-1", fresh)
	elsewhereFresh := partial(".b.partial-2147483646@other-host@0123456789ab-1", fresh)
	elsewhereStale := partial(".c.partial-2147483646@other-host@0123456789ab-1", stale)
	legacy := partial(".d.partial-2147483646-1", stale)
	kept := []string{live, elsewhereFresh, legacy}
	removed := []string{deadHere, elsewhereStale}

	prune := func(dry bool) *backup.PruneResult {
		t.Helper()
		res, err := backup.Prune(ctx, backup.PruneOptions{Target: to, Policy: retention.Policy{Last: 1}, DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := prune(true)
	// A dry run says what it would remove, and removes nothing.
	if !res.DryRun || len(res.Removed) != 1 || res.Removed[0].Path != paths[0] {
		t.Fatalf("dry run: would remove %+v, want %s", res.Removed, paths[0])
	}
	for _, n := range append(slices.Concat(kept, removed), filepath.Base(paths[0])) {
		if _, err := os.Stat(filepath.Join(to, n, "data")); err != nil {
			t.Fatalf("a dry run removed %s: %v", n, err)
		}
	}
	res = prune(false)
	if len(res.Removed) != 1 || res.Removed[0].Path != paths[0] || len(res.Kept) != 1 || res.Kept[0].Path != paths[1] {
		t.Fatalf("prune: kept %+v, removed %+v", res.Kept, res.Removed)
	}
	partials := map[string]backup.PrunedPartial{}
	for _, p := range res.Partials {
		partials[p.ID] = p
	}
	for _, n := range kept {
		if p := partials[n]; p.Removed || p.Abandoned {
			t.Errorf("%s: %+v", n, p)
		}
		if _, err := os.Stat(filepath.Join(to, n, "data")); err != nil {
			t.Errorf("prune touched %s, whose writer may live: %v", n, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(to, live, "data", "part")); err != nil || string(b) != "half a backup" {
		t.Errorf("the set being written changed: %q %v", b, err)
	}
	for _, n := range removed {
		if p := partials[n]; !p.Removed {
			t.Errorf("%s was not removed: %+v", n, p)
		}
		if _, err := os.Stat(filepath.Join(to, n)); !os.IsNotExist(err) {
			t.Errorf("%s is still there", n)
		}
	}
	// The set being written completes, and is a set like any other.
	if err := w.Commit([]byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(to, "being-written", "data", "part")); err != nil {
		t.Fatal(err)
	}
}
