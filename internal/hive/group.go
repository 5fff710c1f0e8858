package hive

// Group commit: applied entries wait in one open bbolt write transaction,
// committed (a normal commit, with its fsyncs) by a background committer
// every CommitInterval or CommitEntries entries, never on the path that
// acknowledges a change (the consensus log is). Not bbolt's NoSync and a
// later Sync: a crash between them can leave the meta page on disk before
// the data pages it points to.

import (
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrCommitFailed: a group commit failed. The entries of that group are not
// in the file; the hive refuses every later use, and the node must restart
// and replay its consensus log.
var ErrCommitFailed = errors.New("hive group commit failed")

// commitTx commits a group; tests make it fail.
var commitTx = (*bolt.Tx).Commit

// group is the pending group and its committer; guarded by Hive.txMu.
type group struct {
	pending      *bolt.Tx
	pendingN     int       // entries applied into pending
	pendingSince time.Time // when pending began
	failed       error     // set once a commit failed: the hive is unusable

	wake     chan struct{} // a group opened or filled up
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func (h *Hive) startCommitter() {
	h.wake = make(chan struct{}, 1)
	h.stop = make(chan struct{})
	h.done = make(chan struct{})
	go h.committer()
}

func (h *Hive) stopCommitter() {
	if h.stop == nil {
		return
	}
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
}

// wakeCommitter tells the committer a group opened or filled up.
func (h *Hive) wakeCommitter() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// committer commits each group when it is old enough or full. What is
// pending when it stops, Close commits.
func (h *Hive) committer() {
	defer close(h.done)
	for {
		select {
		case <-h.stop:
			return
		case <-h.wake:
		}
		for {
			h.txMu.Lock()
			open, since, full := h.pending != nil, h.pendingSince, h.pendingN >= h.opts.CommitEntries
			h.txMu.Unlock()
			if !open {
				break
			}
			if wait := time.Until(since.Add(h.opts.CommitInterval)); !full && wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-h.stop:
					t.Stop()
					return
				case <-h.wake:
					t.Stop()
					continue // another group, or this one full
				case <-t.C:
				}
			}
			// A failure is reported by commitLocked; ErrClosed means Close
			// or Replace got there first.
			_ = h.Commit()
			break
		}
	}
}

// Commit commits the pending group now, if there is one.
func (h *Hive) Commit() error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.db == nil {
		return ErrClosed
	}
	h.txMu.Lock()
	defer h.txMu.Unlock()
	if err := h.commitLocked(); err != nil {
		return fmt.Errorf("commit hive %s: %w", h.path, err)
	}
	return nil
}

// commitLocked commits the pending group. Called with txMu held.
func (h *Hive) commitLocked() error {
	if h.failed != nil {
		return h.failed
	}
	if h.pending == nil {
		return nil
	}
	tx := h.pending
	h.pending, h.pendingN = nil, 0
	if err := commitTx(tx); err != nil {
		return h.failLocked(err)
	}
	return nil
}

// failLocked drops the pending group after a storage failure, makes the
// hive refuse every later use, and reports the failure. Called with txMu held.
func (h *Hive) failLocked(cause error) error {
	if h.pending != nil {
		_ = h.pending.Rollback()
		h.pending, h.pendingN = nil, 0
	}
	if h.failed == nil {
		h.failed = fmt.Errorf("%w: %v", ErrCommitFailed, cause)
		report := h.opts.OnCommitError
		if report == nil {
			report = func(err error) {
				panic(fmt.Sprintf("clusterkeep: hive %s: %v; the applied entries are not durable, stopping (a restart replays them from the consensus log)", h.path, err))
			}
		}
		go report(h.failed)
	}
	return h.failed
}

// pendingTx returns the pending group's transaction with txMu held, and the
// function that releases it; no transaction (and txMu released) when no
// group is pending.
func (h *Hive) pendingTx() (*bolt.Tx, func(), error) {
	h.txMu.Lock()
	if h.failed != nil {
		err := h.failed
		h.txMu.Unlock()
		return nil, nil, err
	}
	if h.pending == nil {
		h.txMu.Unlock()
		return nil, nil, nil
	}
	return h.pending, h.txMu.Unlock, nil
}

// Pending is the number of entries applied and not yet committed.
func (h *Hive) Pending() int {
	h.txMu.Lock()
	defer h.txMu.Unlock()
	return h.pendingN
}
