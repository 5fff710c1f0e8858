package restore_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/restore"
	"github.com/clusterkeep/clusterkeep/internal/staging"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// stoppedNodeWithBackup is a one-node cluster holding A/v=1 in its backup
// and A/v=2 after it, stopped; it returns the node's data directory and
// the set's path.
func stoppedNodeWithBackup(t *testing.T) (string, string) {
	t.Helper()
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	if _, err := c.SetValue(ctx, "A", wire.Uint32Value("v", 1)); err != nil {
		t.Fatal(err)
	}
	res, err := backup.Create(ctx, backup.Options{DataDir: nodes[0].Cfg.DataDir, To: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetValue(ctx, "A", wire.Uint32Value("v", 2)); err != nil {
		t.Fatal(err)
	}
	nodes[0].Stop()
	return nodes[0].Cfg.DataDir, res.Path
}

func valueOfA(t *testing.T, dataDir string) uint32 {
	t.Helper()
	h, err := hive.OpenReadOnly(filepath.Join(dataDir, hive.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	v, err := h.GetValue("A", "v")
	if err != nil {
		t.Fatal(err)
	}
	return v.Uint32
}

// A restore reads the set once into the data directory: it makes no
// temporary copy anywhere else. With TMPDIR naming a directory that does
// not exist, any temporary file would fail the restore.
func TestRestoreWritesNoTemporaryCopyOutsideTheDataDirectory(t *testing.T) {
	for _, o := range []restore.Options{{}, {Authoritative: true}, {Authoritative: true, Deep: true}} {
		t.Run(fmt.Sprintf("authoritative=%v,deep=%v", o.Authoritative, o.Deep), func(t *testing.T) {
			dataDir, path := stoppedNodeWithBackup(t)
			tmp := filepath.Join(t.TempDir(), "tmp")
			t.Setenv("TMPDIR", tmp)
			o.Path, o.DataDir = path, dataDir
			res, err := restore.Run(tc.Context(t), o)
			if err != nil {
				t.Fatalf("restore with TMPDIR %s missing: %v", tmp, err)
			}
			if res.Applied != "now" {
				t.Fatalf("restore applied %q, want now", res.Applied)
			}
			if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("TMPDIR %s: %v", tmp, err)
			}
			if got := valueOfA(t, dataDir); got != 1 {
				t.Fatalf("restored A/v=%d, want the backup's 1", got)
			}
			if left, _ := filepath.Glob(filepath.Join(dataDir, staging.PendingDir+"*")); len(left) > 0 {
				t.Fatalf("left in the data directory: %v", left)
			}
		})
	}
}

// One flipped byte in the stored database fails its checksum at the end of
// the stream: nothing becomes pending, and the node's files stay as they
// were.
func TestFlippedByteInTheStoredDatabaseIsRefusedWithNothingPending(t *testing.T) {
	dataDir, path := stoppedNodeWithBackup(t)
	stored := ""
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), hive.FileName) {
			stored = p
		}
		return nil
	})
	b, err := os.ReadFile(stored)
	if err != nil {
		t.Fatalf("the set's database: %v", err)
	}
	b[len(b)-len(b)/3] ^= 0x10
	if err := os.WriteFile(stored, b, 0o600); err != nil {
		t.Fatal(err)
	}
	before := files(t, dataDir)
	for _, o := range []restore.Options{{}, {Authoritative: true}, {Deep: true}} {
		o.Path, o.DataDir = path, dataDir
		_, err := restore.Run(tc.Context(t), o)
		if !errors.Is(err, backupset.ErrCorrupt) || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("%+v: got %v, want the set refused as corrupt", o, err)
		}
		if p, _ := staging.Pending(dataDir); p != nil {
			t.Fatalf("%+v: a restore is pending: %+v", o, p)
		}
		if after := files(t, dataDir); after != before {
			t.Fatalf("%+v: the data directory changed:\nbefore:\n%s\nafter:\n%s", o, before, after)
		}
	}
	if got := valueOfA(t, dataDir); got != 2 {
		t.Fatalf("the node's database holds A/v=%d, want its own 2", got)
	}
	// A data directory that was not there is refused before the set is
	// read, and not made.
	gone := filepath.Join(t.TempDir(), "gone")
	if _, err := restore.Run(tc.Context(t), restore.Options{Path: path, DataDir: gone}); !errors.Is(err, restore.ErrNoDataDir) {
		t.Fatalf("restore into a new directory: got %v", err)
	}
	if _, err := os.Stat(gone); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused restore made %s: %v", gone, err)
	}
}

// files lists a directory's files with their SHA-256, but the service's
// lock and logs.
func files(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasSuffix(p, ".log") || d.Name() == "service.lock" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, fmt.Sprintf("%s %x", rel, sha256.Sum256(b)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// An authoritative restore's command does not open the restored hive
// read-write (that would hold all of it in the command's memory): the reset
// of its consensus index is left to the service's start, which applies it
// before it opens anything.
func TestAuthoritativeRestoreLeavesTheConsensusResetToTheStart(t *testing.T) {
	dataDir, path := stoppedNodeWithBackup(t)
	applied := func() uint64 {
		h, err := hive.OpenReadOnly(filepath.Join(dataDir, hive.FileName))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		return h.Applied()
	}
	if _, err := restore.Run(tc.Context(t), restore.Options{Path: path, DataDir: dataDir, Authoritative: true}); err != nil {
		t.Fatal(err)
	}
	if applied() == 0 {
		t.Fatal("the restore command reset the consensus index (or the backup holds none)")
	}
	// What the service does first at its start.
	for range 2 {
		if p, err := staging.Apply(dataDir); err != nil || p != nil {
			t.Fatalf("apply at start: %+v %v", p, err)
		}
		if got := applied(); got != 0 {
			t.Fatalf("consensus index %d after the start's apply, want 0", got)
		}
	}
	if got := valueOfA(t, dataDir); got != 1 {
		t.Fatalf("restored A/v=%d, want the backup's 1", got)
	}
}
