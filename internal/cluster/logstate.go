package cluster

// What a stopped node's consensus log holds, read offline: the hive commits
// applied entries in groups, so the hive of a node that crashed may lack
// the last entries of its log until the node starts and replays them.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// LogLastIndex returns the index of the last entry above after in the
// consensus log of the stopped node whose data directory is dataDir: 0
// when it has none, or no log. It reads the log's segment files as they
// are, changing nothing (opening the log as raft does would recover and
// rewrite its tail); a log written by a version this one converts at start
// (raft-boltdb) is not read.
func LogLastIndex(dataDir string, after uint64) (uint64, error) {
	dir := filepath.Join(dataDir, "raft", walDir)
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

// UnappliedNote says, for an offline read of a stopped node's hive that has
// applied entries up to applied, whether the node's consensus log holds
// later entries; "" when it does not (or cannot tell).
func UnappliedNote(dataDir string, applied uint64) string {
	last, err := LogLastIndex(dataDir, applied)
	if err != nil || last <= applied {
		return ""
	}
	return fmt.Sprintf("the node's consensus log holds entries up to index %d, its hive has applied up to %d: "+
		"this offline read may miss changes the cluster committed (the node replays them when it starts)", last, applied)
}
