package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/hashicorp/raft"
)

// command is what a raft log entry of type LogCommand carries, in the form
// codec.go writes (or, from earlier versions, as JSON).
type command struct {
	// System marks a change made by the cluster service itself.
	System bool     `json:"system,omitempty"`
	Txn    hive.Txn `json:"txn"`
	// Noop commits nothing; a new leader applies one to learn when its
	// state machine has caught up (see readIndex).
	Noop bool `json:"noop,omitempty"`
}

// applyResult is the response of an applied command.
type applyResult struct {
	Seq uint64
	Err error
}

// fsm applies committed entries to the hive. It implements raft's
// BatchingFSM (one bbolt transaction per batch) and ConfigurationStore (so
// that every entry after a leader's first no-op reaches it, which makes its
// index a safe read index).
type fsm struct {
	hive *hive.Hive
	// counters, when set, count the transactions applied.
	counters *counters
	// storageFailure, when set, is told that the hive could not store
	// what was applied (Config.OnStorageFailure).
	storageFailure func(error)
	// beforeReplace, when set, is called before a snapshot replaces the
	// hive (it ends the hive's own streams, whose read transactions the
	// replacement would wait for).
	beforeReplace func()

	mu      sync.Mutex
	index   uint64        // the last log index this FSM has applied
	changed chan struct{} // closed when index moves
}

func newFSM(h *hive.Hive) *fsm {
	return &fsm{hive: h, index: h.Applied(), changed: make(chan struct{})}
}

func (f *fsm) advance(idx uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if idx > f.index {
		f.index = idx
		close(f.changed)
		f.changed = make(chan struct{})
	}
}

// Index returns the last log index applied.
func (f *fsm) Index() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index
}

// waitIndex blocks until the FSM has applied idx.
func (f *fsm) waitIndex(ctx context.Context, idx uint64) error {
	for {
		f.mu.Lock()
		cur, ch := f.index, f.changed
		f.mu.Unlock()
		if cur >= idx {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d (applied %d): %w", idx, cur, ctx.Err())
		case <-ch:
		}
	}
}

func (f *fsm) Apply(l *raft.Log) interface{} { return f.ApplyBatch([]*raft.Log{l})[0] }

func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	entries := make([]hive.Entry, 0, len(logs))
	// cmds maps each command's entry to its log: entries[cmds[j].entry]
	// answers logs[cmds[j].log].
	type cmd struct{ entry, log int }
	cmds := make([]cmd, 0, len(logs))
	var last, lastTerm uint64
	for i, l := range logs {
		last, lastTerm = l.Index, l.Term
		switch l.Type {
		case raft.LogConfiguration:
			// The hive keeps the configuration in force with the index it
			// was committed at, so that it knows where it stands in the
			// log (hiveSnapshots).
			entries = append(entries, hive.Entry{Index: l.Index, Term: l.Term, Mark: true, Config: l.Data})
			continue
		case raft.LogCommand:
		default:
			continue
		}
		c, err := decodeCommand(l.Data)
		if err != nil {
			// A committed entry this build cannot read (a newer version's
			// form): skipping it would leave this node's hive different
			// from the others'. Stop instead; an upgraded binary reads it.
			panic(fmt.Sprintf("clusterkeep: cannot read committed log entry %d (upgrade this node to the version the leader runs): %v", l.Index, err))
		}
		if c.Noop {
			out[i] = &applyResult{}
			continue
		}
		cmds = append(cmds, cmd{len(entries), i})
		entries = append(entries, hive.Entry{Index: l.Index, Term: l.Term, Txn: c.Txn, System: c.System})
	}
	if len(entries) == 0 || entries[len(entries)-1].Index != last {
		// The hive records the last index of the batch even when no key
		// changed with it, so that its applied index is the FSM's.
		entries = append(entries, hive.Entry{Index: last, Term: lastTerm, Mark: true})
	}
	res, err := f.hive.Apply(entries)
	if err != nil {
		// The hive cannot take committed entries: continuing would
		// diverge from the cluster. Stop the node; it replays on restart.
		f.stop("cannot apply committed entries to the hive", err)
	}
	applied := make([]hive.Result, len(cmds))
	for j, c := range cmds {
		applied[j] = res[c.entry]
		out[c.log] = &applyResult{Seq: res[c.entry].Seq, Err: res[c.entry].Err}
	}
	if f.counters != nil {
		f.counters.countApplied(applied)
	}
	f.advance(last)
	return out
}

// StoreConfiguration is called for configuration entries only by a raft
// that does not batch (ApplyBatch takes them here); it has no term to
// record, so the hive's position is unknown until the next entry.
func (f *fsm) StoreConfiguration(index uint64, c raft.Configuration) {
	if _, err := f.hive.Apply([]hive.Entry{{Index: index, Mark: true, Config: raft.EncodeConfiguration(c)}}); err != nil {
		f.stop(fmt.Sprintf("cannot record configuration entry %d in the hive", index), err)
	}
	f.advance(index)
}

// stop stops the node when the hive cannot take what was committed: a
// storage failure (a full disk, a failed fsync) is told to
// storageFailure, which ends the process; anything else panics.
func (f *fsm) stop(what string, err error) {
	if f.storageFailure != nil && errors.Is(err, hive.ErrCommitFailed) {
		f.storageFailure(fmt.Errorf("%s: %w", what, err))
	}
	panic(fmt.Sprintf("clusterkeep: %s: %v", what, err))
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.hive.Snapshot()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{s: s}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if f.beforeReplace != nil {
		f.beforeReplace()
	}
	renamed, err := installSnapshot(f.hive, rc)
	if err != nil {
		return fmt.Errorf("install raft snapshot: %w", err)
	}
	if f.counters != nil {
		f.counters.installed.Add(1)
		if !renamed {
			f.counters.installedCopied.Add(1)
		}
	}
	f.advance(f.hive.Applied())
	return nil
}

type fsmSnapshot struct{ s *hive.Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.s.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist raft snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.s.Close() }
