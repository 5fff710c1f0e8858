package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/aside"
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
	"github.com/clusterkeep/clusterkeep/internal/staging"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// takeBackup backs the cluster up on the named node (any when empty).
func takeBackup(t *testing.T, lc *localcluster.Cluster, node string) string {
	t.Helper()
	res, err := backup.Create(tc.Context(t), backup.Options{DataDir: t.TempDir(), Cluster: []string{lc.APIAddrs()}, To: filepath.Join(lc.Dir, "backups"), Node: node})
	if err != nil {
		t.Fatal(err)
	}
	return res.Path
}

func set(t *testing.T, c *client.Cluster, key, name string, v uint32) {
	t.Helper()
	if _, err := c.SetValue(tc.Context(t), key, wire.Uint32Value(name, v)); err != nil {
		t.Fatal(err)
	}
}

// restoreCLI runs `clusterkeep restore` and returns its JSON result.
func restoreCLI(t *testing.T, lc *localcluster.Cluster, args ...string) (map[string]any, string, int) {
	t.Helper()
	out, errOut, code := cli(t, []string{client.EnvCluster + "=" + lc.APIAddrs()}, append([]string{"restore", "--json"}, args...)...)
	var m map[string]any
	json.Unmarshal([]byte(out), &m)
	return m, errOut, code
}

// hiveOf reads one node's own copy of a value (0 when missing).
func hiveOf(t *testing.T, nd localcluster.Node, key, name string) (uint32, error) {
	v, err := client.Node(nd.API).GetValue(tc.Context(t), key, name, client.Stale())
	if err != nil {
		return 0, err
	}
	return v.Uint32, nil
}

func waitHolds(t *testing.T, nd localcluster.Node, key, name string, want uint32) {
	t.Helper()
	tc.Eventually(t, fmt.Sprintf("%s holds %s/%s=%d", nd.Name, key, name, want), func() error {
		got, err := hiveOf(t, nd, key, name)
		if want == 0 {
			if err == nil {
				return fmt.Errorf("still has %d", got)
			}
			return nil
		}
		if err != nil || got != want {
			return fmt.Errorf("has %d (%v)", got, err)
		}
		return nil
	})
}

func generationOf(t *testing.T, nd localcluster.Node) uint64 {
	st, err := client.GetNodeState(tc.Context(t), nd.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	return st.Generation
}

func TestNonAuthoritativeRestoreOfAWipedNode(t *testing.T) {
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	set(t, c, "A", "v", 1)
	path := takeBackup(t, lc, "node3")
	set(t, c, "A", "v", 2)
	set(t, c, "B", "v", 3)
	n3 := lc.Nodes[2]
	// While node3 runs, no directory gets its identity.
	elsewhere := t.TempDir()
	if _, errOut, code := restoreCLI(t, lc, path, "--data-dir", elsewhere, "--node", "node3"); code == 0 || !strings.Contains(errOut, "node3 runs at "+n3.API) {
		t.Fatalf("restore of a running node's identity: exit %d %s", code, errOut)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("a refused restore wrote %d entries: %v", len(entries), names)
	}
	// node3's disk dies.
	lc.Stop("node3", true)
	os.RemoveAll(n3.DataDir)
	// A typo, or no --data-dir where the default does not exist: refused,
	// naming the directory, which is not created.
	typo := filepath.Join(lc.Dir, "nod3")
	for _, run := range []func() (map[string]any, string, int){
		func() (map[string]any, string, int) { return restoreCLI(t, lc, path, "--data-dir", typo) },
		func() (map[string]any, string, int) {
			out, errOut, code := cli(t, []string{client.EnvCluster + "=" + lc.APIAddrs(), "CLUSTERKEEP_DATA_DIR=" + typo}, "restore", path)
			return map[string]any{"out": out}, errOut, code
		},
	} {
		if _, errOut, code := run(); code == 0 || !strings.Contains(errOut, typo) || !strings.Contains(errOut, "does not exist") {
			t.Fatalf("restore into a directory that does not exist: exit %d %s", code, errOut)
		}
		if _, err := os.Stat(typo); !os.IsNotExist(err) {
			t.Fatalf("a refused restore created %s", typo)
		}
	}
	// An empty directory: the operator says which node it is for, one the
	// backup was taken on.
	if err := os.Mkdir(n3.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for node, want := range map[string]string{"": "--node", "node9": "not a member", "node1": "taken on node3"} {
		args := []string{path, "--data-dir", n3.DataDir}
		if node != "" {
			args = append(args, "--node", node)
		}
		if _, errOut, code := restoreCLI(t, lc, args...); code == 0 || !strings.Contains(errOut, want) {
			t.Fatalf("restore into an empty directory with --node %q: exit %d %s", node, code, errOut)
		}
		if entries, _ := os.ReadDir(n3.DataDir); len(entries) != 0 {
			t.Fatalf("a refused restore (--node %q) wrote %d entries", node, len(entries))
		}
	}
	m, errOut, code := restoreCLI(t, lc, path, "--data-dir", n3.DataDir, "--node", "node3")
	if code != 0 || m["applied"] != "now" || m["node"] != "node3" {
		t.Fatalf("restore: %v %s", m, errOut)
	}
	if _, err := lc.Start(tc.Context(t), "node3"); err != nil {
		t.Fatal(err)
	}
	// It is the same member again, and holds what the cluster committed
	// after the backup.
	waitHolds(t, n3, "A", "v", 2)
	waitHolds(t, n3, "B", "v", 3)
	tc.Eventually(t, "three nodes Up", func() error { return allUp(tc.Context(t), c, 3) })
}

func TestAuthoritativeRestoreIsRefusedWhileMembersRunOrCannotBeReached(t *testing.T) {
	lc := tc.Processes(t, 3)
	path := takeBackup(t, lc, "")
	n1 := lc.Nodes[0]
	// The node runs: its hive and log are its own to write (its group
	// commits land when they do); what the restore command could write
	// beside them (a staged restore, aside copies, the registry) is checked.
	running := []string{hive.FileName, "raft"}
	before := dirSums(t, n1.DataDir, running...)
	_, errOut, code := restoreCLI(t, lc, path, "--authoritative", "--data-dir", n1.DataDir)
	if code == 0 || !strings.Contains(errOut, "node2") || !strings.Contains(errOut, "node3") || !strings.Contains(errOut, "running") {
		t.Fatalf("refusal naming the running members: exit %d %s", code, errOut)
	}
	if after := dirSums(t, n1.DataDir, running...); after != before {
		t.Fatalf("a refused restore changed the node's files: %q", changedFiles(before, after))
	}
	// node2 stopped, node3 answers nothing at all (a host that is cut off).
	lc.Down()
	l, err := net.Listen("tcp", lc.Nodes[2].API)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // accepted, never answered
		}
	}()
	_, errOut, code = restoreCLI(t, lc, path, "--authoritative", "--data-dir", n1.DataDir)
	if code == 0 || !strings.Contains(errOut, "node3") || !strings.Contains(errOut, "cannot be reached") || !strings.Contains(errOut, "--force") {
		t.Fatalf("refusal naming the unreachable member: exit %d %s", code, errOut)
	}
	if strings.Contains(errOut, "node2 (") {
		t.Fatalf("the stopped member was named: %s", errOut)
	}
	m, errOut, code := restoreCLI(t, lc, path, "--authoritative", "--force", "--data-dir", n1.DataDir)
	if code != 0 || m["applied"] != "now" {
		t.Fatalf("--force: %v %s", m, errOut)
	}
}

// backupThenDown takes a backup holding A=1, writes A=2 and C=9 after it,
// and stops the cluster; it returns the backup's path.
func backupThenDown(t *testing.T, lc *localcluster.Cluster, c *client.Cluster) string {
	t.Helper()
	set(t, c, "A", "v", 1)
	path := takeBackup(t, lc, "")
	set(t, c, "A", "v", 2)
	set(t, c, "C", "v", 9)
	if err := lc.Down(); err != nil {
		t.Fatal(err)
	}
	return path
}

// The steps of an authoritative restore on node1, the cluster stopped; it
// returns the restored generation.
func authoritativeSetup(t *testing.T, lc *localcluster.Cluster, c *client.Cluster) uint64 {
	t.Helper()
	path := backupThenDown(t, lc, c)
	m, errOut, code := restoreCLI(t, lc, path, "--authoritative", "--data-dir", lc.Nodes[0].DataDir)
	gen, _ := m["generation"].(float64)
	if code != 0 || m["applied"] != "now" || gen <= 1 {
		t.Fatalf("restore: %v %s", m, errOut)
	}
	return uint64(gen)
}

// checkConverged checks that every node serves the restored state at gen,
// and that each stale member (node2 and node3 unless named) kept its old
// state aside.
func checkConverged(t *testing.T, lc *localcluster.Cluster, c *client.Cluster, gen uint64, stale ...localcluster.Node) {
	t.Helper()
	if stale == nil {
		stale = lc.Nodes[1:]
	}
	tc.Eventually(t, "three nodes Up", func() error { return allUp(tc.Context(t), c, 3) })
	for _, nd := range lc.Nodes {
		waitHolds(t, nd, "A", "v", 1)
		waitHolds(t, nd, "C", "v", 0)
		if g := generationOf(t, nd); g != gen {
			t.Fatalf("%s at generation %d", nd.Name, g)
		}
		// Raft's snapshots of the restored state hold the secrets.
		checkPrivate(t, nd.DataDir)
	}
	// The stale members' state is kept aside whole, moved as it was
	// (database, consensus log, which holds the later writes even where
	// they were not applied yet), listed with its size.
	for _, nd := range stale {
		for _, f := range []string{"clusdb", "raft/wal"} {
			if m, _ := filepath.Glob(filepath.Join(nd.DataDir, "aside", "*-stale-generation", f)); len(m) != 1 {
				t.Fatalf("%s: stale %s not moved aside: %v", nd.Name, f, m)
			}
		}
		var list []aside.Copy
		out, errOut, code := cli(t, nil, "aside", "list", "--data-dir", nd.DataDir, "--json")
		if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
			t.Fatalf("%s: aside list: exit %d: %s %s", nd.Name, code, errOut, out)
		}
		if len(list) != 1 || list[0].Reason != "stale-generation" || list[0].Bytes == 0 {
			t.Fatalf("%s: aside list: %+v, want one stale-generation copy", nd.Name, list)
		}
	}
}

// asideHolds reports whether any of the nodes' copies set aside for a stale
// generation holds key, read offline with --data-dir as any stopped node's
// database.
func asideHolds(t *testing.T, nodes []localcluster.Node, key string) bool {
	t.Helper()
	for _, nd := range nodes {
		m, _ := filepath.Glob(filepath.Join(nd.DataDir, "aside", "*-stale-generation"))
		for _, dir := range m {
			if _, _, code := cli(t, nil, "config", "get", key, "v", "--data-dir", dir); code == 0 {
				return true
			}
		}
	}
	return false
}

func TestAuthoritativeRestoreConvergesInAnyOrder(t *testing.T) {
	for _, order := range [][]string{{"node2", "node3"}, {"node3", "node2"}, nil} {
		name := "together"
		if order != nil {
			name = strings.Join(order, "-then-")
		}
		t.Run(name, func(t *testing.T) {
			lc := tc.Processes(t, 3)
			c := tc.Open(t, lc.APIAddrs())
			gen := authoritativeSetup(t, lc, c)
			if _, err := lc.Start(tc.Context(t), "node1"); err != nil {
				t.Fatal(err)
			}
			waitHolds(t, lc.Nodes[0], "A", "v", 1)
			tc.Eventually(t, "restored node leads a cluster of one", func() error {
				info, err := client.Node(lc.Nodes[0].API).GetClusterInformation(tc.Context(t))
				if err != nil || info.Generation != gen || info.Leader != "node1" {
					return fmt.Errorf("%+v %v", info, err)
				}
				return nil
			})
			if order != nil {
				for _, n := range order {
					if _, err := lc.Start(tc.Context(t), n); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				var wg sync.WaitGroup
				for _, n := range []string{"node2", "node3"} {
					wg.Add(1)
					go func() { defer wg.Done(); lc.Start(tc.Context(t), n) }()
				}
				wg.Wait()
			}
			checkConverged(t, lc, c, gen)
		})
	}
}

func TestStaleMajorityCannotOverwriteTheRestoredState(t *testing.T) {
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	gen := authoritativeSetup(t, lc, c)
	// The two stale members come up first, elect a leader and take writes.
	for _, n := range []string{"node2", "node3"} {
		if _, err := lc.Start(tc.Context(t), n); err != nil {
			t.Fatal(err)
		}
	}
	stale := tc.Open(t, lc.Nodes[1].API, lc.Nodes[2].API)
	set(t, stale, "W", "v", 5)
	// Then the restored node starts: the restored state wins.
	if _, err := lc.Start(tc.Context(t), "node1"); err != nil {
		t.Fatal(err)
	}
	checkConverged(t, lc, c, gen)
	for _, nd := range lc.Nodes {
		waitHolds(t, nd, "W", "v", 0)
	}
	// The stale leader applied the write before acknowledging it: it is in
	// the state that leader moved aside.
	if !asideHolds(t, lc.Nodes[1:], "W") {
		t.Fatal("the stale majority's write is not kept in the moved-aside data")
	}
	// The operator removes the copies no longer wanted, with one command.
	for _, nd := range lc.Nodes[1:] {
		if _, errOut, code := cli(t, nil, "aside", "remove", "--all", "--data-dir", nd.DataDir); code != 0 {
			t.Fatalf("%s: aside remove --all: %s", nd.Name, errOut)
		}
		if m, _ := filepath.Glob(filepath.Join(nd.DataDir, "aside", "*")); len(m) != 0 {
			t.Fatalf("%s: still kept aside after remove --all: %v", nd.Name, m)
		}
	}
}

func TestStagedRestoreIsAppliedAtTheNextStart(t *testing.T) {
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	set(t, c, "A", "v", 1)
	path := takeBackup(t, lc, "node3")
	set(t, c, "A", "v", 2)
	n3 := lc.Nodes[2]
	m, errOut, code := restoreCLI(t, lc, path, "--data-dir", n3.DataDir)
	if code != 0 || !strings.Contains(fmt.Sprint(m["applied"]), "next start") {
		t.Fatalf("staged restore: %v %s", m, errOut)
	}
	st, _ := client.GetNodeState(tc.Context(t), n3.DataDir)
	if st.RestorePending == "" {
		t.Fatalf("state does not show the pending restore: %+v", st)
	}
	info, _ := c.GetClusterInformation(tc.Context(t))
	if !strings.Contains(fmt.Sprint(info.Nodes), st.RestorePending) {
		t.Fatalf("cluster info does not show the pending restore: %+v", info.Nodes)
	}
	lc.Stop("node3", false)
	if _, err := lc.Start(tc.Context(t), "node3"); err != nil {
		t.Fatal(err)
	}
	if p, _ := staging.Pending(n3.DataDir); p != nil {
		t.Fatal("restore still pending after the start")
	}
	if aside, _ := filepath.Glob(filepath.Join(n3.DataDir, "aside", "restore-*", "clusdb")); len(aside) != 1 {
		t.Fatalf("old database not moved aside: %v", aside)
	}
	waitHolds(t, n3, "A", "v", 2)
}

func TestKeyRestore(t *testing.T) {
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	set(t, c, "Apps/Web", "Port", 80)
	set(t, c, "Apps/Web/Tls", "On", 1)
	set(t, c, "Apps/Db", "Port", 5432)
	path := takeBackup(t, lc, "")
	set(t, c, "Apps/Web", "Port", 81)
	set(t, c, "Apps/Web/Extra", "X", 1)
	c.DeleteKey(tc.Context(t), "Apps/Web/Tls")
	set(t, c, "Apps/Db", "Port", 6000)
	m, errOut, code := restoreCLI(t, lc, path, "--key", "apps/web")
	if code != 0 || m["kind"] != "key" {
		t.Fatalf("key restore: %v %s", m, errOut)
	}
	var buf bytes.Buffer
	c.Export(tc.Context(t), "Apps", &buf)
	got := buf.String()
	for _, want := range []string{"key \"Apps/Web\"\nvalue \"Port\" uint32 80", "key \"Apps/Web/Tls\"\nvalue \"On\" uint32 1", "value \"Port\" uint32 6000"} {
		if !strings.Contains(got, want) {
			t.Fatalf("after --key restore, missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Extra") {
		t.Fatalf("subtree not restored exactly:\n%s", got)
	}
	if _, errOut, code := restoreCLI(t, lc, path, "--key", "Nope"); code == 0 || !strings.Contains(errOut, "not in the backup") {
		t.Fatalf("missing key: %s", errOut)
	}
	if _, errOut, code := restoreCLI(t, lc, path, "--key", "Cluster/Nodes"); code == 0 || !strings.Contains(errOut, "outside") {
		t.Fatalf("reserved key: %s", errOut)
	}
}

// dirSums fingerprints the files of a directory: one line per file, its
// path and SHA-256, sorted by path. The files and directories named in
// skip, at the top of dir, are left out.
func dirSums(t *testing.T, dir string, skip ...string) string {
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(dir, p); err == nil && slices.Contains(skip, rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".log") || filepath.Base(p) == "service.lock" {
			return nil
		}
		data, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "%s %x\n", p, sha256.Sum256(data))
		return nil
	})
	return b.String()
}

// changedFiles lists the lines of after that before does not hold.
func changedFiles(before, after string) []string {
	had := map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		had[l] = true
	}
	var changed []string
	for _, l := range strings.Split(after, "\n") {
		if !had[l] {
			changed = append(changed, l)
		}
	}
	return changed
}

func TestTamperedOrTruncatedBackupIsRefusedBeforeAnythingChanges(t *testing.T) {
	lc := tc.Processes(t, 3)
	path := takeBackup(t, lc, "")
	lc.Down()
	n1 := lc.Nodes[0]
	before := dirSums(t, n1.DataDir)
	var db string
	filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if filepath.Base(p) == "clusdb" {
			db = p
		}
		return nil
	})
	orig, _ := os.ReadFile(db)
	for name, corrupt := range map[string]func(){
		"tampered":  func() { b := append([]byte(nil), orig...); b[len(b)/2] ^= 1; os.WriteFile(db, b, 0o600) },
		"truncated": func() { os.WriteFile(db, orig[:len(orig)/3], 0o600) },
	} {
		corrupt()
		for _, args := range [][]string{{path, "--data-dir", n1.DataDir}, {path, "--authoritative", "--data-dir", n1.DataDir}} {
			_, errOut, code := restoreCLI(t, lc, args...)
			if code == 0 || !strings.Contains(errOut, "does not verify") {
				t.Fatalf("%s backup, %v: exit %d %s", name, args, code, errOut)
			}
		}
		if after := dirSums(t, n1.DataDir); after != before {
			t.Fatalf("%s backup changed the node's files", name)
		}
	}
}

// A restore killed at any moment leaves the node with its old state or the
// new one; the same command run again finishes the job.
func TestRestoreKilledAtAnyMomentFinishesWhenRunAgain(t *testing.T) {
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	for i := range 16 {
		if _, err := c.SetValue(tc.Context(t), fmt.Sprintf("Blobs/b%d", i), wire.BinaryValue("d", bytes.Repeat([]byte{byte(i)}, 1<<20))); err != nil {
			t.Fatal(err)
		}
	}
	set(t, c, "A", "v", 1)
	path := takeBackup(t, lc, "node3")
	set(t, c, "A", "v", 2)
	n3 := lc.Nodes[2]
	lc.Stop("node3", false)
	pristine := filepath.Join(t.TempDir(), "node3")
	if out, err := exec.Command("cp", "-a", n3.DataDir, pristine).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	oldSum := fileSum(filepath.Join(pristine, hive.FileName))
	var newSum string
	filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if filepath.Base(p) == hive.FileName {
			newSum = fileSum(p)
		}
		return nil
	})
	killCommandAtMoments(t, pristine, n3.DataDir, oldSum, newSum, "restore", path, "--data-dir", n3.DataDir)
	h, err := hive.OpenReadOnly(filepath.Join(n3.DataDir, hive.FileName))
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.GetValue("A", "v")
	h.Close()
	if err != nil || v.Uint32 != 1 {
		t.Fatalf("restored database holds A=%d (%v), want the backup's 1", v.Uint32, err)
	}
	if _, err := lc.Start(tc.Context(t), "node3"); err != nil {
		t.Fatal(err)
	}
	waitHolds(t, n3, "A", "v", 2)
}

// killCommandAtMoments runs the command args on dataDir, reset to pristine
// each time, and kills it after each of a series of moments. Whatever the
// moment, the node's database is whole and is the old one (oldSum) or the
// new one (newSum); the same command run again to its end finishes the job.
func killCommandAtMoments(t *testing.T, pristine, dataDir, oldSum, newSum string, args ...string) {
	t.Helper()
	for _, after := range []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 45 * time.Millisecond, 50 * time.Millisecond, 55 * time.Millisecond, 60 * time.Millisecond, 80 * time.Millisecond, 150 * time.Millisecond} {
		os.RemoveAll(dataDir)
		if out, err := exec.Command("cp", "-a", pristine, dataDir).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		cmd := exec.Command(tc.Binary(t), args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(after)
		cmd.Process.Kill()
		cmd.Wait()
		// A kill between the moves of an apply leaves no database in
		// place, only a pending restore that the next run or start
		// finishes; any database in place is whole.
		p, _ := staging.Pending(dataDir)
		db := filepath.Join(dataDir, hive.FileName)
		state := "none, a restore pending"
		if _, err := os.Stat(db); err == nil || p == nil {
			if err := hive.CheckFile(db); err != nil {
				t.Fatalf("killed after %v: the node's database: %v", after, err)
			}
			switch fileSum(db) {
			case oldSum:
				state = "old"
			case newSum:
				state = "new"
			default:
				t.Fatalf("killed after %v: the node's database is neither the old one nor the new one", after)
			}
		}
		t.Logf("killed after %v: the node holds the %s state; a restore pending: %v", after, state, p != nil)
		if _, errOut, code := cli(t, nil, args...); code != 0 {
			t.Fatalf("killed after %v: run again: %s", after, errOut)
		}
		if p, _ := staging.Pending(dataDir); p != nil {
			t.Fatalf("killed after %v: restore still pending after the re-run", after)
		}
		if fileSum(db) != newSum {
			t.Fatalf("killed after %v: after the re-run the node does not hold the backup's database", after)
		}
	}
}

func fileSum(p string) string {
	b, _ := os.ReadFile(p)
	return fmt.Sprintf("%x", sha256.Sum256(b))
}
