// Package staging keeps a restore that is ready to be applied to a node's
// data directory, and applies it. A restore is first staged, complete and
// fsync'd, in DATA_DIR/restore-pending (made visible by a rename), then
// applied with the node service stopped: by the restore program when the
// service is not running, or by the service itself at its next start
// (RESTORE_AT_REBOOT). Every step of the apply can be repeated, so a
// restore killed at any point finishes when run again, and the service
// never starts on a mix of old and new files. Nothing old is deleted: it is
// moved aside under DATA_DIR/aside.
//
// It never reaches the network.
package staging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/clusterkeep/clusterkeep/internal/aside"
	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/staging/plan"
)

// Names inside a data directory.
const (
	PendingDir = plan.PendingDir
	planFile   = plan.File
	raftDir    = "raft"
	AsideDir   = aside.Dir
)

// Plan is what a staged restore will do (its file is internal/staging/plan's).
type Plan = plan.Plan

// Pending returns the plan staged in dataDir, or nil.
func Pending(dataDir string) (*Plan, error) { return plan.Pending(dataDir) }

// Stage writes the plan and the cluster database (read from clusdb, which
// may be nil) into dataDir's pending directory, replacing any staged
// before. The restore becomes pending only once everything is durable.
func Stage(dataDir string, p Plan, clusdb io.Reader) error {
	unlock, err := lock(dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	clearTemps(dataDir)
	tmp, err := os.MkdirTemp(dataDir, PendingDir+".tmp-")
	if err != nil {
		return fmt.Errorf("stage restore: %w", err)
	}
	defer os.RemoveAll(tmp)
	if clusdb != nil {
		if err := fsutil.WriteFileAtomic(filepath.Join(tmp, hive.FileName), clusdb); err != nil {
			return fmt.Errorf("stage restore: %w", err)
		}
		if err := hive.CheckFile(filepath.Join(tmp, hive.FileName)); err != nil {
			return fmt.Errorf("stage restore: the cluster database to restore: %w", err)
		}
		p.HasClusterDB = true
	}
	raw, _ := json.MarshalIndent(p, "", "  ")
	if err := fsutil.WriteFileAtomic(filepath.Join(tmp, planFile), bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("stage restore: %w", err)
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return err
	}
	final := filepath.Join(dataDir, PendingDir)
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("stage restore: %w", err)
	}
	return fsutil.SyncDir(dataDir)
}

// Apply applies the restore staged in dataDir, if any. The caller holds the
// node's service lock, and opens neither the hive nor raft before Apply
// returns. It returns the plan applied, or nil.
func Apply(dataDir string) (*Plan, error) {
	unlock, err := lock(dataDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	p, err := Pending(dataDir)
	if err != nil || p == nil {
		return nil, err
	}
	pending := filepath.Join(dataDir, PendingDir)
	if p.HasClusterDB {
		staged, live := filepath.Join(pending, hive.FileName), filepath.Join(dataDir, hive.FileName)
		if _, err := os.Stat(staged); err == nil {
			if err := hive.CheckFile(staged); err != nil {
				return nil, fmt.Errorf("apply restore: the staged database: %w", err)
			}
		} else if _, err := os.Stat(live); err != nil {
			return nil, fmt.Errorf("apply restore: the staged database is gone and none is in place: stage the restore again")
		}
	}
	kept := filepath.Join(dataDir, AsideDir, "restore-"+p.ID)
	if err := os.MkdirAll(kept, 0o700); err != nil {
		return nil, fmt.Errorf("apply restore: %w", err)
	}
	// Each move happens once: a repeated Apply finds it done.
	moves := [][2]string{}
	if p.HasClusterDB {
		moves = append(moves, [2]string{filepath.Join(dataDir, hive.FileName), filepath.Join(kept, hive.FileName)},
			[2]string{filepath.Join(pending, hive.FileName), filepath.Join(dataDir, hive.FileName)})
	}
	if p.Authoritative {
		moves = append([][2]string{{filepath.Join(dataDir, raftDir), filepath.Join(kept, raftDir)}}, moves...)
	}
	if err := copyIfMissing(noderegistry.Path(dataDir), filepath.Join(kept, noderegistry.FileName)); err != nil {
		return nil, fmt.Errorf("apply restore: keep the old registry: %w", err)
	}
	for _, m := range moves {
		if err := moveOnce(m[0], m[1]); err != nil {
			return nil, fmt.Errorf("apply restore: %w", err)
		}
	}
	if p.Authoritative && p.HasClusterDB {
		// A new consensus history starts at index 1 under the new
		// generation: the hive must not skip its entries as replays.
		h, err := hive.Open(filepath.Join(dataDir, hive.FileName), hive.Options{})
		if err != nil {
			return nil, fmt.Errorf("apply restore: %w", err)
		}
		err = h.ResetConsensus()
		h.Close()
		if err != nil {
			return nil, fmt.Errorf("apply restore: %w", err)
		}
	}
	if err := noderegistry.Save(dataDir, p.Identity); err != nil {
		return nil, fmt.Errorf("apply restore: %w", err)
	}
	if err := fsutil.SyncDir(dataDir); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(pending); err != nil {
		return nil, fmt.Errorf("apply restore: clear the staged restore: %w", err)
	}
	return p, fsutil.SyncDir(dataDir)
}

// moveOnce renames from to to unless that was done already: from is gone,
// or to exists (a run that died after this move, and maybe after the next
// one put the new file where from was).
func moveOnce(from, to string) error {
	if _, err := os.Stat(from); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(to); err == nil {
		return nil
	}
	if err := os.Rename(from, to); err != nil {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(to))
}

func copyIfMissing(from, to string) error {
	if _, err := os.Stat(to); err == nil {
		return nil
	}
	in, err := os.Open(from)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer in.Close()
	return fsutil.WriteFileAtomic(to, in)
}

// lock serializes staging and applying on a data directory, across
// processes (a restore command and the starting service).
func lock(dataDir string) (func(), error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dataDir, "restore.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock staged restore: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock staged restore: %w", err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// clearTemps removes what stagings that died left.
func clearTemps(dataDir string) {
	m, _ := filepath.Glob(filepath.Join(dataDir, PendingDir+".tmp-*"))
	for _, d := range m {
		os.RemoveAll(d)
	}
}
