package restore_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/consensuslog"
	"github.com/clusterkeep/clusterkeep/internal/restore"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// A non-authoritative restore of a backup older than the start of the
// node's kept consensus log (raft compacted the entries after the backup)
// is refused before anything changes, naming both indexes: the service
// could not bring that hive forward.
func TestRestoreOfABackupOlderThanTheNodesLogIsRefused(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	dataDir := nodes[0].Cfg.DataDir
	res, err := backup.Create(ctx, backup.Options{DataDir: dataDir, To: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.SetValue(ctx, "A", wire.Uint32Value("v", uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	nodes[0].Stop()
	last := tc.CompactLogHead(t, dataDir)
	before := files(t, dataDir)
	_, err = restore.Run(ctx, restore.Options{Path: res.Path, DataDir: dataDir, LogStart: consensuslog.Start})
	if !errors.Is(err, restore.ErrLogGap) || !strings.Contains(err.Error(), fmt.Sprintf("starts at index %d", last)) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("restore of a backup older than the log: %v, want %v naming index %d", err, restore.ErrLogGap, last)
	}
	if after := files(t, dataDir); after != before {
		t.Fatalf("a refused restore changed %s", filepath.Base(dataDir))
	}
}
