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
	"strings"
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
	lockFile   = "restore.lock"
	// resetFile marks a restored hive whose consensus index is still to
	// reset.
	resetFile = "consensus-reset"
	AsideDir  = aside.Dir
)

// Plan is what a staged restore will do (its file is internal/staging/plan's).
type Plan = plan.Plan

// Pending returns the plan staged in dataDir, or nil.
func Pending(dataDir string) (*Plan, error) { return plan.Pending(dataDir) }

// Workspace is a restore being staged: a temporary directory inside the
// data directory, so on its file system, where the restore's files are
// written once and checked, then made pending by a rename (Commit): they
// reach their place by renames alone, never by a copy. Until Commit, and
// after Close without it, nothing of the restore is pending. It holds the
// data directory's staging lock until Commit or Close.
type Workspace struct {
	dataDir, dir string
	// created: Begin made the data directory, and Close without Commit
	// removes it again.
	created bool
	// newLock: Begin made the lock file, which Close without Commit
	// removes (a restore refused leaves nothing behind).
	newLock   bool
	unlock    func()
	committed bool
}

// Begin starts staging a restore in dataDir, replacing what stagings that
// died left (a restore already pending stays so until Commit).
func Begin(dataDir string) (*Workspace, error) {
	_, err := os.Stat(dataDir)
	created := errors.Is(err, os.ErrNotExist)
	_, err = os.Stat(filepath.Join(dataDir, lockFile))
	newLock := errors.Is(err, os.ErrNotExist)
	unlock, err := lock(dataDir)
	if err != nil {
		return nil, err
	}
	clearTemps(dataDir)
	tmp, err := os.MkdirTemp(dataDir, PendingDir+".tmp-")
	if err != nil {
		unlock()
		return nil, fmt.Errorf("stage restore: %w", err)
	}
	return &Workspace{dataDir: dataDir, dir: tmp, created: created, newLock: newLock, unlock: unlock}, nil
}

// Dir is the workspace's directory.
func (w *Workspace) Dir() string { return w.dir }

// DatabasePath is where the cluster database to restore is written.
func (w *Workspace) DatabasePath() string { return filepath.Join(w.dir, hive.FileName) }

// Commit makes the workspace the data directory's pending restore, with the
// plan, replacing any staged before; the database, if written, must be
// durable already. The restore is pending only once the plan and the
// directory are durable too.
func (w *Workspace) Commit(p Plan) error {
	if w.committed || w.unlock == nil {
		return fmt.Errorf("stage restore: the workspace is closed")
	}
	_, err := os.Stat(w.DatabasePath())
	p.HasClusterDB = err == nil
	raw, _ := json.MarshalIndent(p, "", "  ")
	if err := fsutil.WriteFileAtomic(filepath.Join(w.dir, planFile), bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("stage restore: %w", err)
	}
	if err := fsutil.SyncDir(w.dir); err != nil {
		return err
	}
	// A restore whose apply began and was killed is finished first: a new
	// plan would set the rest of the old state aside in a folder of its
	// own, leaving the old database and its consensus log apart.
	if old, err := Pending(w.dataDir); err != nil {
		return fmt.Errorf("stage restore: %w", err)
	} else if old != nil && begun(w.dataDir, old) {
		if err := applyPlan(w.dataDir, old); err != nil {
			return fmt.Errorf("stage restore: finish the restore %s a killed run began: %w", old.ID, err)
		}
	}
	final := filepath.Join(w.dataDir, PendingDir)
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	if err := os.Rename(w.dir, final); err != nil {
		return fmt.Errorf("stage restore: %w", err)
	}
	w.committed = true
	w.unlock()
	w.unlock = nil
	return fsutil.SyncDir(w.dataDir)
}

// Close ends the workspace: without Commit, its directory is removed (and
// the data directory, if Begin made it), so that nothing changed.
func (w *Workspace) Close() {
	if !w.committed {
		os.RemoveAll(w.dir)
		// A refused restore leaves the data directory as it found it.
		if w.created || w.newLock {
			os.Remove(filepath.Join(w.dataDir, lockFile))
		}
		if w.created {
			os.Remove(w.dataDir)
		}
	}
	if w.unlock != nil {
		w.unlock()
		w.unlock = nil
	}
}

// Stage writes the plan and the cluster database (read from clusdb, which
// may be nil, and checked whole) into dataDir's pending directory,
// replacing any staged before. The restore becomes pending only once
// everything is durable.
func Stage(dataDir string, p Plan, clusdb io.Reader) error {
	w, err := Begin(dataDir)
	if err != nil {
		return err
	}
	defer w.Close()
	if clusdb != nil {
		if err := fsutil.WriteFileAtomic(w.DatabasePath(), clusdb); err != nil {
			return fmt.Errorf("stage restore: %w", err)
		}
		if err := hive.CheckFile(w.DatabasePath()); err != nil {
			return fmt.Errorf("stage restore: the cluster database to restore: %w", err)
		}
	}
	return w.Commit(p)
}

// Apply applies the restore staged in dataDir, if any, and finishes one
// that ApplyFiles left. The caller holds the node's service lock, and opens
// neither the hive nor raft before Apply returns. It returns the plan
// applied, or nil.
func Apply(dataDir string) (*Plan, error) { return apply(dataDir, true) }

// ApplyFiles is Apply that does not open the restored hive: the reset of
// an authoritative restore's consensus index is left to the next Apply,
// which the service runs at its start before it opens anything. A
// read-write open of the hive visits every page (bbolt rebuilds its free
// list through its mmap): in the restore command it would hold the whole
// hive in memory, for a step the service's own start does as it opens the
// hive anyway.
func ApplyFiles(dataDir string) (*Plan, error) { return apply(dataDir, false) }

func apply(dataDir string, finish bool) (*Plan, error) {
	unlock, err := lock(dataDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// A workspace holds the lock while it lives: one seen here is of a
	// staging that died, and its partial copy goes.
	clearTemps(dataDir)
	p, err := Pending(dataDir)
	if err == nil && p != nil {
		err = applyPlan(dataDir, p)
	}
	if err != nil {
		return nil, err
	}
	if finish {
		if err := resetConsensus(dataDir); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// resetConsensus resets the consensus index of the hive an authoritative
// restore put in place, if that is still to do: a new consensus history
// starts at index 1 under the new generation, and the hive must not skip
// its entries as replays.
func resetConsensus(dataDir string) error {
	marker := filepath.Join(dataDir, resetFile)
	if _, err := os.Stat(marker); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db := filepath.Join(dataDir, hive.FileName)
	if _, err := os.Stat(db); err == nil {
		h, err := hive.Open(db, hive.Options{})
		if err != nil {
			return fmt.Errorf("apply restore: %w", err)
		}
		err = h.ResetConsensus()
		h.Close()
		if err != nil {
			return fmt.Errorf("apply restore: %w", err)
		}
	}
	if err := os.Remove(marker); err != nil {
		return fmt.Errorf("apply restore: %w", err)
	}
	return fsutil.SyncDir(dataDir)
}

func applyPlan(dataDir string, p *Plan) error {
	pending := filepath.Join(dataDir, PendingDir)
	if p.HasClusterDB {
		staged, live := filepath.Join(pending, hive.FileName), filepath.Join(dataDir, hive.FileName)
		// The staged database was checked when it was staged, then made
		// durable: it is not read again here (the whole file would be,
		// for nothing). Gone, it was applied already by a run that died.
		if _, err := os.Stat(staged); err != nil {
			if _, err := os.Stat(live); err != nil {
				return fmt.Errorf("apply restore: the staged database is gone and none is in place: stage the restore again")
			}
		}
	}
	kept := keptDir(dataDir, p)
	if err := os.MkdirAll(kept, 0o700); err != nil {
		return fmt.Errorf("apply restore: %w", err)
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
		return fmt.Errorf("apply restore: keep the old registry: %w", err)
	}
	for _, m := range moves {
		if err := moveOnce(m[0], m[1]); err != nil {
			return fmt.Errorf("apply restore: %w", err)
		}
	}
	// The hive's consensus index is reset by resetConsensus, after the
	// plan: the marker is durable, or gone with the hive it was left for,
	// before the plan is.
	switch marker := filepath.Join(dataDir, resetFile); {
	case p.Authoritative && p.HasClusterDB:
		if err := fsutil.WriteFileAtomic(marker, strings.NewReader(p.ID)); err != nil {
			return fmt.Errorf("apply restore: %w", err)
		}
	case p.HasClusterDB:
		if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("apply restore: %w", err)
		}
	}
	if err := noderegistry.Save(dataDir, p.Identity); err != nil {
		return fmt.Errorf("apply restore: %w", err)
	}
	if err := fsutil.SyncDir(dataDir); err != nil {
		return err
	}
	if err := os.RemoveAll(pending); err != nil {
		return fmt.Errorf("apply restore: clear the staged restore: %w", err)
	}
	return fsutil.SyncDir(dataDir)
}

// keptDir is where applying p sets the node's old files aside.
func keptDir(dataDir string, p *Plan) string {
	return filepath.Join(dataDir, AsideDir, "restore-"+p.ID)
}

// begun reports whether applying p began: its folder aside exists.
func begun(dataDir string, p *Plan) bool {
	_, err := os.Stat(keptDir(dataDir, p))
	return err == nil
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
	f, err := os.OpenFile(filepath.Join(dataDir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
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
