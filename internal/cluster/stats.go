package cluster

import (
	"errors"
	"os"
	"sync/atomic"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/hashicorp/raft"
)

// Stats are figures of this node's cluster service kept for its metrics;
// the counters start at zero with the process.
type Stats struct {
	// Term is the current consensus term (0 when the node is in no cluster).
	Term uint64
	// LeaderChanges counts the changes of leader this node observed.
	LeaderChanges uint64
	// WritesApplied counts the transactions committed to this node's hive
	// (clients' and the service's own); WritesRejected those that changed
	// nothing (a precondition failed, or the change was invalid).
	WritesApplied  uint64
	WritesRejected uint64
	// SnapshotsInstalled counts the whole hives this node received from a
	// leader, because the entries it lacked were no longer in the log.
	SnapshotsInstalled uint64
	// SnapshotsCopied counts those of them written into the hive from a
	// stream, rather than renamed in from raft's store as received (each
	// is one more write of the whole hive).
	SnapshotsCopied uint64
	// HiveBytes is the size of the database file (clusdb).
	HiveBytes int64
	// RestoreAppliedAtStart is whether this process applied a restore
	// staged for the service's start (RESTORE_AT_REBOOT).
	RestoreAppliedAtStart bool
}

// counters are the service's running figures.
type counters struct {
	leaderChanges   atomic.Uint64
	writesApplied   atomic.Uint64
	writesRejected  atomic.Uint64
	installed       atomic.Uint64
	installedCopied atomic.Uint64
	restoredAtOpen  atomic.Bool
}

// Stats returns this node's figures.
func (s *Service) Stats() Stats {
	st := Stats{
		LeaderChanges:         s.counters.leaderChanges.Load(),
		WritesApplied:         s.counters.writesApplied.Load(),
		WritesRejected:        s.counters.writesRejected.Load(),
		SnapshotsInstalled:    s.counters.installed.Load(),
		SnapshotsCopied:       s.counters.installedCopied.Load(),
		RestoreAppliedAtStart: s.counters.restoredAtOpen.Load(),
	}
	if r, err := s.currentRaft(); err == nil {
		st.Term = r.CurrentTerm()
	}
	if fi, err := os.Stat(s.hive.Path()); err == nil {
		st.HiveBytes = fi.Size()
	}
	return st
}

// countApplied records the results of a batch the FSM applied.
func (c *counters) countApplied(res []hive.Result) {
	for _, r := range res {
		switch {
		case r.Skipped:
		case r.Err != nil:
			c.writesRejected.Add(1)
		default:
			c.writesApplied.Add(1)
		}
	}
}

// observeLeaders counts the changes of leader raft reports until stop.
func (s *Service) observeLeaders(r *raft.Raft, stop chan struct{}) {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(obs)
	s.stopWG.Add(1)
	go func() {
		defer s.stopWG.Done()
		defer r.DeregisterObserver(obs)
		var last raft.ServerID
		for {
			select {
			case <-stop:
				return
			case o := <-ch:
				lo := o.Data.(raft.LeaderObservation)
				if lo.LeaderID != "" && lo.LeaderID != last {
					s.counters.leaderChanges.Add(1)
				}
				if lo.LeaderID != "" {
					last = lo.LeaderID
				}
			}
		}
	}()
}

// observeApply reports a client write the leader handled: how long it
// took to be committed and applied, and its outcome.
func (s *Service) observeApply(start time.Time, err error) {
	if s.cfg.OnApply == nil || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrServiceStopped) || errors.Is(err, ErrNotConfigured) {
		return
	}
	s.cfg.OnApply(time.Since(start), err)
}
