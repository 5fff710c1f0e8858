package cluster

// Bringing the hive level with consensus after a restore or a crash.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// startHistory starts the consensus history of a cluster restored
// authoritatively at its hive: the hive records itself as standing at
// index 1 of term 1, under a configuration of one voter, this node, and
// hiveSnapshots offers it to raft as the snapshot the history starts from.
// Raft then holds no entry the hive does not, so every member that joins
// is sent the hive whole, streamed from the file, and no copy of it is
// written first (a raft snapshot sealing the restored state wrote one). A
// hive that already stands somewhere was started on by an earlier run: it
// is left as it is.
func (s *Service) startHistory(id raft.ServerID, addr raft.ServerAddress) error {
	if s.hive.Applied() != 0 {
		return nil
	}
	cfg := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: id, Address: addr}}}
	if _, err := s.hive.Apply([]hive.Entry{{Index: 1, Term: 1, Mark: true, Config: raft.EncodeConfiguration(cfg)}}); err != nil {
		return fmt.Errorf("start the consensus history at the hive: %w", err)
	}
	if err := s.hive.Commit(); err != nil {
		return fmt.Errorf("start the consensus history at the hive: %w", err)
	}
	return nil
}

// sealRestoredState records this node, as it is today, in the restored
// hive at the start of the new consensus history (startHistory).
func (s *Service) sealRestoredState() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := s.WaitLeader(ctx)
		if err == nil {
			self := s.self()
			txn := hive.Txn{Ops: append(nodeRecordOps(self), hive.SetValue(namePath(self.Name), hive.StringValue("Id", self.ID)))}
			if _, err = s.applySystem(ctx, txn); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("record this node: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// openConsensusState opens the node's consensus log and snapshots and
// brings the hive level with them: a hive behind the newest snapshot is
// replaced by it, a restored cluster's history starts at the hive, and a hive
// its log cannot bring forward is refused.
func (s *Service) openConsensusState(hlog hclog.Logger, restored bool, addr raft.ServerAddress) (logStore, *hiveSnapshots, error) {
	store, err := openLogStore(s.raftDir(), hlog, s.log)
	if err != nil {
		return nil, nil, err
	}
	hs, err := s.levelHive(store, hlog, restored, addr)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, hs, nil
}

// levelHive is openConsensusState once the log is open.
func (s *Service) levelHive(store logStore, hlog hclog.Logger, restored bool, addr raft.ServerAddress) (*hiveSnapshots, error) {
	if err := dropInstalledSnapshots(s.raftDir()); err != nil {
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(s.raftDir(), 2, hlog)
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	hs := &hiveSnapshots{SnapshotStore: snaps, hive: s.hive, dir: filepath.Join(s.raftDir(), snapshotDir)}
	if err := s.catchUpFromSnapshot(hs); err != nil {
		return nil, err
	}
	if restored {
		if err := s.startHistory(raft.ServerID(s.id.NodeID), addr); err != nil {
			return nil, fmt.Errorf("start the restored cluster: %w", err)
		}
	}
	if err := s.checkLogReaches(store); err != nil {
		return nil, err
	}
	return hs, nil
}

// ErrLogGap means the hive stands before the start of the node's consensus
// log with no snapshot between: raft would be left to apply entries the
// log no longer holds.
var ErrLogGap = errors.New("the consensus log cannot bring the hive forward")

// checkLogReaches refuses a hive that has applied less than the entry
// before the first one the log holds. It happens when a backup older than
// the log's start is restored onto a node whose log is kept (the snapshot
// a node received from the leader is renamed into its hive, not kept).
func (s *Service) checkLogReaches(store raft.LogStore) error {
	last, err := store.LastIndex()
	if err != nil || last == 0 {
		return err
	}
	first, err := store.FirstIndex()
	if err != nil {
		return err
	}
	if applied := s.hive.Applied(); first > applied+1 {
		return fmt.Errorf("%w: the hive has applied up to index %d and the log of this node starts at index %d: "+
			"restore a backup taken after index %d, or restore into an emptied data directory (--node NAME) for the cluster to send the whole hive",
			ErrLogGap, applied, first, first-1)
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
	if _, err := installSnapshot(s.hive, rc); err != nil {
		return fmt.Errorf("restore hive from snapshot %s: %w", newest.ID, err)
	}
	return nil
}
