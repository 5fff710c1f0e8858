package restore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/restore"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"golang.org/x/sys/unix"
)

// smallDisk mounts a tmpfs of size bytes for the test (CI runs as root).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("mounting a tmpfs needs root (CI runs the tests as root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// A restore onto a file system too small for the backup's database is
// refused before anything is written there, saying how much it needs; on
// one large enough the same restore goes through.
func TestRestoreOntoADiskTooSmallIsRefusedFirst(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	for i := range 6 {
		if _, err := c.SetValue(ctx, fmt.Sprintf("Blobs/b%d", i), wire.BinaryValue("d", make([]byte, 1<<20))); err != nil {
			t.Fatal(err)
		}
	}
	res, err := backup.Create(ctx, backup.Options{DataDir: nodes[0].Cfg.DataDir, To: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	nodes[0].Stop()
	small := filepath.Join(smallDisk(t, "4m"), "n1")
	if err := os.Mkdir(small, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = restore.Run(ctx, restore.Options{Path: res.Path, DataDir: small, Node: "n1"})
	if !errors.Is(err, restore.ErrNoSpace) || !strings.Contains(err.Error(), small) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("restore onto a 4 MiB disk: %v, want %v naming %s", err, restore.ErrNoSpace, small)
	}
	if entries, _ := os.ReadDir(small); len(entries) != 0 {
		t.Fatalf("a refused restore wrote %d entries", len(entries))
	}
	large := filepath.Join(smallDisk(t, "64m"), "n1")
	if err := os.Mkdir(large, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Run(ctx, restore.Options{Path: res.Path, DataDir: large, Node: "n1"}); err != nil {
		t.Fatalf("restore onto a 64 MiB disk: %v", err)
	}
}
