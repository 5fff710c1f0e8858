package docker

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/backupset/offline"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// An authoritative restore across hosts: a backup taken inside a container
// onto the shared volume; the cluster changes; every container is stopped;
// the restore runs on node1's volume in a container of its own (refused
// while the stopped members cannot be told from cut-off ones, done with
// --force); node1 starts as a cluster of one at a new generation, then the
// two others come back and all three end with exactly the backup's state
// and the new generation.
func TestAuthoritativeRestoreWithTheOthersStopped(t *testing.T) {
	c := newCluster(t, "auth")
	h, err := c.open(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := h.SetValue(ctx(t), fmt.Sprintf("Apps/App%02d", i), wire.Uint32Value("Port", uint32(8000+i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.SetValue(ctx(t), "Apps/App00", wire.StringValue("Name", "before")); err != nil {
		t.Fatal(err)
	}
	oldGen := h.Info().Generation

	// The backup, taken on node2 onto the shared volume, as an operator
	// would (docker exec).
	out, errOut, code := c.exec(c.nodes[1], "backup", "create", "--to", "/backups", "--data-dir", "/data", "--json")
	if code != 0 {
		t.Fatalf("backup create in %s: exit %d: %s", c.nodes[1].name, code, errOut)
	}
	var res backup.Result
	jsonOf(t, out, &res)
	// A copy on the host, to know the backup's state.
	local := t.TempDir()
	c.docker("cp", c.nodes[1].container+":"+res.Path, local)
	hostCopy := filepath.Join(local, filepath.Base(res.Path))
	if _, errOut, code := c.hostCLI("backup", "verify", hostCopy); code != 0 {
		t.Fatalf("backup verify: exit %d: %s", code, errOut)
	}
	want, err := offline.Export(hostCopy)
	if err != nil {
		t.Fatal(err)
	}
	wantData := userData(string(want))
	if !strings.Contains(wantData, `"before"`) {
		t.Fatalf("the backup lacks what was written before it:\n%s", wantData)
	}

	// The cluster moves on.
	if _, err := h.SetValue(ctx(t), "Apps/App00", wire.StringValue("Name", "after")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.DeleteKey(ctx(t), "Apps/App01"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.SetValue(ctx(t), "Later/Key", wire.Uint32Value("v", 1)); err != nil {
		t.Fatal(err)
	}

	for _, n := range c.nodes {
		c.stop(n)
	}
	began := time.Now()
	n1 := c.nodes[0]
	// A stopped container's address answers nothing at all, as a cut-off
	// host's would: the restore cannot tell, and refuses without --force.
	_, errOut, code = c.oneShot(n1, "restore", res.Path, "--authoritative", "--data-dir", "/data", "--json")
	if code == 0 || !strings.Contains(errOut, "node2") || !strings.Contains(errOut, "node3") || !strings.Contains(errOut, "cannot be reached") {
		t.Fatalf("restore without --force: exit %d, want a refusal naming node2 and node3 as unreachable: %s", code, errOut)
	}
	out, errOut, code = c.oneShot(n1, "restore", res.Path, "--authoritative", "--force", "--data-dir", "/data", "--json")
	if code != 0 {
		t.Fatalf("restore --authoritative --force: exit %d: %s", code, errOut)
	}
	var rr struct {
		Applied    string `json:"applied"`
		Generation uint64 `json:"generation"`
	}
	jsonOf(t, out, &rr)
	if rr.Applied != "now" || rr.Generation <= oldGen {
		t.Fatalf("restore: %s", out)
	}
	t.Logf("restored on node1's volume: generation %d -> %d", oldGen, rr.Generation)

	c.start(n1)
	c.eventually("node1 leads a cluster of one at the new generation", 2*time.Minute, func() error {
		st, err := c.localStatus(n1)
		if err != nil || st.Generation != rr.Generation || st.RaftState != "Leader" {
			return fmt.Errorf("%+v %v", st, err)
		}
		return nil
	})
	c.start(c.nodes[2])
	c.start(c.nodes[1])
	info := c.waitAllUp()
	if info.Generation != rr.Generation {
		t.Fatalf("cluster at generation %d, want %d", info.Generation, rr.Generation)
	}
	for _, n := range c.nodes {
		c.eventually(n.name+" holds exactly the backup's state at the new generation", 2*time.Minute, func() error {
			st, err := c.localStatus(n)
			if err != nil {
				return err
			}
			if st.Generation != rr.Generation {
				return fmt.Errorf("at generation %d", st.Generation)
			}
			text, err := c.export(n, "")
			if err != nil {
				return err
			}
			if got := userData(text); got != wantData {
				return fmt.Errorf("state differs from the backup's:\n%s", got)
			}
			return nil
		})
	}
	t.Logf("restore to three nodes converged: %v", time.Since(began).Round(time.Millisecond))
	// The stale members moved their old state aside whole (database,
	// consensus log): nothing was deleted.
	for _, n := range c.nodes[1:] {
		dir := t.TempDir()
		c.docker("cp", n.container+":/data/aside", dir)
		for _, f := range []string{"clusdb", filepath.Join("raft", "wal")} {
			if m, _ := filepath.Glob(filepath.Join(dir, "aside", "*-stale-generation", f)); len(m) != 1 {
				t.Errorf("%s: its stale %s was not moved aside: %v", n.name, f, m)
			}
		}
	}
}

// userData is an export without the cluster's own subtree (identity,
// generation, members), which a restore rewrites: what clients wrote.
func userData(export string) string {
	var b strings.Builder
	skip := false
	for line := range strings.SplitSeq(export, "\n") {
		if rest, ok := strings.CutPrefix(line, "key "); ok {
			k := strings.ToLower(strings.Trim(rest, `"`))
			skip = k == strings.ToLower(hive.ReservedKey) || strings.HasPrefix(k, strings.ToLower(hive.ReservedKey)+"/")
		}
		if !skip {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
