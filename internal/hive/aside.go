package hive

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/clusterkeep/clusterkeep/internal/fsutil"
)

// MoveAside moves the hive's file, as it is, to dst (renamed, never copied:
// a copy of a large hive would cost its size again in writes) and goes on
// with a new, empty hive in its place. On an error before the rename the
// hive is unchanged. Watchers see ErrCompacted.
func (h *Hive) MoveAside(dst string) error {
	if h.readOnly {
		return fmt.Errorf("move aside: hive %s opened read-only", h.path)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.db == nil {
		return fmt.Errorf("move hive %s aside: %w", h.path, ErrClosed)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("move hive %s aside: %w", h.path, err)
	}
	// The pending group is committed first: the copy aside holds every
	// entry applied (and the hive is unchanged if that fails).
	h.txMu.Lock()
	err := h.commitLocked()
	h.txMu.Unlock()
	if err != nil {
		return fmt.Errorf("move hive %s aside: %w", h.path, err)
	}
	if err := h.db.Close(); err != nil {
		return fmt.Errorf("move hive %s aside: close: %w", h.path, err)
	}
	h.db = nil
	moveErr := os.Rename(h.path, dst)
	if moveErr == nil {
		moveErr = fsutil.SyncDir(filepath.Dir(dst))
	}
	if moveErr == nil {
		moveErr = fsutil.SyncDir(filepath.Dir(h.path))
	}
	// Whichever file is in place now (the old one if the rename failed, a
	// new empty one if it did not), the hive stays open on it.
	db, err := h.openDB(false)
	if err != nil {
		return fmt.Errorf("move hive %s aside: reopen: %w", h.path, err)
	}
	h.db = db
	h.watch.setFloor(h.seqLocked())
	if moveErr != nil {
		return fmt.Errorf("move hive %s aside to %s: %w", h.path, dst, moveErr)
	}
	return nil
}
