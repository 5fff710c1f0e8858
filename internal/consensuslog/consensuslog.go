// Package consensuslog reads the consensus log of a stopped node offline
// (raft-wal's segment files and its meta database, DATA_DIR/raft/wal),
// changing nothing: which entries it holds. Opening the log as raft does
// would recover and rewrite its tail; the cluster service does that itself.
// The offline commands and the restore program, which never link the
// service, read the log here (the restore program through the command,
// as it links no consensus code itself).
package consensuslog

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Dir is where the node at dataDir keeps its consensus log.
func Dir(dataDir string) string { return filepath.Join(dataDir, "raft", "wal") }

// ErrInUse means a running node service holds the log.
var ErrInUse = errors.New("the consensus log is in use by a running node service")

// FirstIndex returns the index of the first entry the log of the stopped
// node at dataDir holds: 0 when it holds none, or there is no log. A log
// whose head was compacted starts after the entries it dropped.
func FirstIndex(dataDir string) (uint64, error) {
	dir := Dir(dataDir)
	path := filepath.Join(dir, metadb.FileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	if errors.Is(err, berrors.ErrTimeout) {
		return 0, fmt.Errorf("read consensus log %s: %w", dir, ErrInUse)
	}
	if err != nil {
		return 0, fmt.Errorf("read consensus log %s: %w", dir, err)
	}
	defer db.Close()
	var state types.PersistentState
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(metadb.MetaBucket))
		if b == nil {
			return nil
		}
		raw := b.Get([]byte(metadb.MetaKey))
		if raw == nil {
			return nil
		}
		return json.Unmarshal(raw, &state)
	})
	if err != nil {
		return 0, fmt.Errorf("read consensus log %s: its segment list: %w", dir, err)
	}
	if len(state.Segments) == 0 {
		return 0, nil
	}
	seg := slices.MinFunc(state.Segments, func(a, b types.SegmentInfo) int { return cmp.Compare(a.BaseIndex, b.BaseIndex) })
	if !seg.SealTime.IsZero() {
		return seg.MinIndex, nil // a sealed segment holds entries
	}
	// The first segment is the one being written, and the only one: made
	// and never written to, it holds no entry. The read stops at its first
	// entry (an upper bound would drop the entries of the batch it ends in).
	found := false
	err = segment.NewFiler(dir, fs.New()).DumpLogs(max(seg.MinIndex, 1)-1, 0, func(_ types.SegmentInfo, e types.LogEntry) (bool, error) {
		found = true
		return false, nil
	})
	if err != nil || !found {
		return 0, wrapRead(dir, err)
	}
	return seg.MinIndex, nil
}

func wrapRead(dir string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("read consensus log %s: %w", dir, err)
}

// Start is FirstIndex for a restore: 0 also when the node's running
// service holds the log (the service checks its log against its hive as
// it starts).
func Start(dataDir string) (uint64, error) {
	first, err := FirstIndex(dataDir)
	if errors.Is(err, ErrInUse) {
		return 0, nil
	}
	return first, err
}

// LastIndex returns the index of the last entry above after in the log of
// the stopped node at dataDir: 0 when it has none, or no log. It reads the
// segment files as they are; a log written by a version the service
// converts at start (raft-boltdb) is not read.
func LastIndex(dataDir string, after uint64) (uint64, error) {
	dir := Dir(dataDir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	var last uint64
	err := segment.NewFiler(dir, fs.New()).DumpLogs(after, 0, func(_ types.SegmentInfo, e types.LogEntry) (bool, error) {
		last = max(last, e.Index)
		return true, nil
	})
	if err != nil {
		return 0, fmt.Errorf("read consensus log %s: %w", dir, err)
	}
	return last, nil
}
