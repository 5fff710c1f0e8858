package cluster

// Bringing the hive level with consensus after a restore or a crash.

import (
	"context"
	"fmt"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/hashicorp/raft"
)

// sealRestoredState makes the restored hive the start of the new
// consensus history: this node records itself as it is today, then takes
// a consensus snapshot and drops the log before it, so that every member
// that joins receives the whole restored state as that snapshot (the log
// of the new history does not hold it).
func (s *Service) sealRestoredState() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := s.WaitLeader(ctx)
		if err == nil {
			self := s.self()
			txn := hive.Txn{Ops: append(nodeRecordOps(self), hive.SetValue(namePath(self.Name), hive.StringValue("Id", self.ID)))}
			if _, err = s.applySystem(ctx, txn); err == nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("record this node: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	r, err := s.currentRaft()
	if err != nil {
		return err
	}
	rc := r.ReloadableConfig()
	keep := rc.TrailingLogs
	rc.TrailingLogs = 0
	if err := r.ReloadConfig(rc); err != nil {
		return err
	}
	err = r.Snapshot().Error()
	rc.TrailingLogs = keep
	if rerr := r.ReloadConfig(rc); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("snapshot the restored state: %w", err)
	}
	return nil
}

// catchUpFromSnapshot restores the hive from the newest consensus snapshot
// when the hive is behind it. Raft is told not to re-read snapshots at
// start (the hive is durable on its own), but a snapshot installed from the
// leader is stored before it is applied: a crash in between, or a failed
// replace, leaves the hive behind a snapshot whose entries are compacted
// away, and only the snapshot can bring it forward.
func (s *Service) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	newest := list[0]
	if newest.Index <= s.hive.Applied() {
		return nil
	}
	s.log.Warn("hive is behind the newest consensus snapshot: restoring it", "hive_index", s.hive.Applied(), "snapshot_index", newest.Index)
	_, rc, err := snaps.Open(newest.ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", newest.ID, err)
	}
	defer rc.Close()
	if err := s.hive.Replace(rc); err != nil {
		return fmt.Errorf("restore hive from snapshot %s: %w", newest.ID, err)
	}
	return nil
}
