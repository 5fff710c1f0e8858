package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"golang.org/x/sys/unix"
)

// onSmallDisk moves the stopped node's data directory onto a tmpfs of size
// (CI runs the tests as root).
func onSmallDisk(t *testing.T, nd localcluster.Node, size string) {
	t.Helper()
	orig := nd.DataDir + ".orig"
	if err := os.Rename(nd.DataDir, orig); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(nd.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", nd.DataDir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("mounting a tmpfs needs root (CI runs the tests as root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(nd.DataDir, unix.MNT_DETACH) })
	if out, err := exec.Command("cp", "-a", orig+"/.", nd.DataDir+"/").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
}

// fill writes a file into dir until its file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			return path
		}
	}
}

// A follower's data disk fills during writes: the cluster keeps taking
// them; the follower stops, saying why, rather than serve on as if what it
// applied were stored; once space is freed and it starts again it catches
// up, its files whole, and no acknowledged write is lost. (Under systemd the
// restart is the unit's: Restart=on-failure, no start limit.)
func TestAFollowersDiskFillsDuringWrites(t *testing.T) {
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	set(t, c, "A", "v", 1)
	n3 := lc.Nodes[2]
	if _, err := lc.Stop("node3", false); err != nil {
		t.Fatal(err)
	}
	onSmallDisk(t, n3, "96m")
	if _, err := lc.Start(tc.Context(t), "node3"); err != nil {
		t.Fatal(err)
	}
	waitHolds(t, n3, "A", "v", 1)
	filler := fill(t, n3.DataDir)
	const writes = 300
	last := bytes.Repeat([]byte{7}, 4096)
	for i := range writes {
		v := wire.BinaryValue("v", bytes.Repeat([]byte{byte(i)}, 4096))
		if i == writes-1 {
			v = wire.BinaryValue("v", last)
		}
		if _, err := c.SetValue(tc.Context(t), "B", v); err != nil {
			t.Fatalf("write %d with a follower's disk full: %v", i, err)
		}
	}
	set(t, c, "A", "v", 2)
	if lc.Running("node3") {
		t.Log("node3 runs on with its disk full (its log's preallocated segment still had room)")
	} else {
		b, _ := os.ReadFile(n3.Log)
		if !strings.Contains(string(b), "no space left on device") || !strings.Contains(string(b), "cannot store what it applied") {
			t.Fatalf("node3 stopped without saying why; its log ends:\n%s", tail(b, 2000))
		}
	}
	os.Remove(filler)
	if !lc.Running("node3") {
		if _, err := lc.Start(tc.Context(t), "node3"); err != nil {
			t.Fatal(err)
		}
	}
	waitHolds(t, n3, "A", "v", 2)
	for _, nd := range lc.Nodes {
		tc.Eventually(t, nd.Name+" holds the last acknowledged write", func() error {
			v, err := client.Node(nd.API).GetValue(tc.Context(t), "B", "v", client.Stale())
			if err != nil || !bytes.Equal(v.Binary, last) {
				return errors.New("not yet")
			}
			return nil
		})
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// A node's hive cut short while it was down is detected as the node starts:
// it refuses to start, saying so, rather than serve damaged data (or die of
// a bus error reading past the file's end); the cluster goes on, and the
// node restored from a backup set catches up.
func TestANodeWhoseHiveWasCutShortRefusesToStart(t *testing.T) {
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	for i := range 8 {
		if _, err := c.SetValue(tc.Context(t), fmt.Sprintf("Blobs/b%d", i), wire.BinaryValue("d", bytes.Repeat([]byte{byte(i)}, 1<<20))); err != nil {
			t.Fatal(err)
		}
	}
	path := takeBackup(t, lc, "node3")
	n3 := lc.Nodes[2]
	if _, err := lc.Stop("node3", false); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(n3.DataDir, hive.FileName)
	h, err := hive.OpenReadOnly(db)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	used := snap.Size()
	snap.Close()
	h.Close()
	if err := os.Truncate(db, used/2); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Start(tc.Context(t), "node3"); err == nil {
		t.Fatal("node3 started on a hive cut short")
	}
	if b, _ := os.ReadFile(n3.Log); !strings.Contains(string(b), "cut short") || strings.Contains(string(b), "SIGBUS") {
		t.Fatalf("node3 did not say its hive was cut short; its log ends:\n%s", tail(b, 2000))
	}
	set(t, c, "A", "v", 3)
	if _, errOut, code := cli(t, nil, "restore", path, "--data-dir", n3.DataDir); code != 0 {
		t.Fatalf("restore of node3: %s", errOut)
	}
	if _, err := lc.Start(tc.Context(t), "node3"); err != nil {
		t.Fatal(err)
	}
	waitHolds(t, n3, "A", "v", 3)
}

// A node's consensus log whose tail was torn while it was down (its last
// written bytes zeroed, as a write the disk never finished) is repaired:
// the node starts, drops the torn entries and gets them again from its
// peers; no acknowledged write is lost.
func TestANodeWhoseLogTailWasTornCatchesUp(t *testing.T) {
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	for i := range 50 {
		set(t, c, "A", "v", uint32(i))
	}
	n3 := lc.Nodes[2]
	waitHolds(t, n3, "A", "v", 49)
	if _, err := lc.Stop("node3", false); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(n3.DataDir, "raft", "wal", "*.wal"))
	if len(segs) == 0 {
		t.Fatal("node3 has no log segment")
	}
	tailSeg := segs[len(segs)-1]
	b, err := os.ReadFile(tailSeg)
	if err != nil {
		t.Fatal(err)
	}
	end := len(bytes.TrimRight(b, "\x00"))
	if end < 256 {
		t.Fatalf("node3's last segment holds %d bytes", end)
	}
	f, err := os.OpenFile(tailSeg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 200), int64(end-200)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	set(t, c, "A", "v", 100)
	if _, err := lc.Start(tc.Context(t), "node3"); err != nil {
		t.Fatal(err)
	}
	waitHolds(t, n3, "A", "v", 100)
	tc.Eventually(t, "three nodes Up", func() error { return allUp(tc.Context(t), c, 3) })
}
