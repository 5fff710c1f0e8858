package backup_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"golang.org/x/sys/unix"
)

// A backup whose target fills up mid-set fails with an error naming the
// target; no partial set is listed or left there, and the cluster goes on
// taking writes.
func TestBackupOntoAFullTargetFailsWithNoPartialSet(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	for i := range 6 {
		// Random-looking bytes, which compression does not shrink.
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte((j*7919 + i*104729) >> 3)
		}
		if _, err := c.SetValue(ctx, fmt.Sprintf("Blobs/b%d", i), wire.BinaryValue("d", b)); err != nil {
			t.Fatal(err)
		}
	}
	target := t.TempDir()
	if err := unix.Mount("tmpfs", target, "tmpfs", 0, "size=2m,mode=0700"); err != nil {
		t.Skipf("mounting a tmpfs needs root (CI runs the tests as root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(target, unix.MNT_DETACH) })
	_, err := backup.Create(ctx, backup.Options{DataDir: nodes[0].Cfg.DataDir, To: target})
	if err == nil || !strings.Contains(err.Error(), target) {
		t.Fatalf("backup onto a full target: %v, want an error naming %s", err, target)
	}
	t.Logf("the backup says: %v", err)
	if sets, errs := backupset.List(target); len(sets) != 0 || len(errs) != 0 {
		t.Fatalf("after the failed backup the target lists %d sets (%v)", len(sets), errs)
	}
	if entries, _ := os.ReadDir(target); len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("the failed backup left %v in the target", names)
	}
	if _, err := c.SetValue(ctx, "After", wire.Uint32Value("v", 1)); err != nil {
		t.Fatalf("a write after the failed backup: %v", err)
	}
}
