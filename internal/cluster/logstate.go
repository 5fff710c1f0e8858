package cluster

// What a stopped node's consensus log holds, read offline: the hive commits
// applied entries in groups, so the hive of a node that crashed may lack
// the last entries of its log until the node starts and replays them.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// LogLastIndex returns the index of the last entry in the consensus log of
// the stopped node whose data directory is dataDir: 0 when it has no log,
// or a log store this function does not read.
func LogLastIndex(dataDir string) (uint64, error) {
	path := filepath.Join(dataDir, "raft", "raft.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if err != nil {
		return 0, fmt.Errorf("read consensus log %s: %w", path, err)
	}
	defer db.Close()
	var last uint64
	err = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("logs")); b != nil {
			if k, _ := b.Cursor().Last(); len(k) == 8 {
				last = binary.BigEndian.Uint64(k)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read consensus log %s: %w", path, err)
	}
	return last, nil
}

// UnappliedNote says, for an offline read of a stopped node's hive that has
// applied entries up to applied, whether the node's consensus log holds
// later entries; "" when it does not (or cannot tell).
func UnappliedNote(dataDir string, applied uint64) string {
	last, err := LogLastIndex(dataDir)
	if err != nil || last <= applied {
		return ""
	}
	return fmt.Sprintf("the node's consensus log holds entries up to index %d, its hive has applied up to %d: "+
		"this offline read may miss changes the cluster committed (the node replays them when it starts)", last, applied)
}
