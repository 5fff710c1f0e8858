package cluster

// The hive as a consensus snapshot of itself.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/hashicorp/raft"
)

// hiveSnapshotID names the snapshot that is the hive itself.
const hiveSnapshotID = "hive"

// hiveSnapshots is raft's snapshot store with the hive offered as one more
// snapshot, the newest whenever the hive has applied past the newest file:
// the hive records the index, term and configuration of the last entry it
// applied (hive.Position), which is all a snapshot's metadata says. So a
// node whose hive came from a backup set, with no consensus log at all,
// starts at the set's index, and the leader sends it only the entries it
// lacks instead of the whole hive again; a restart resumes at the hive's
// last group commit, not at the older snapshot file; and a snapshot sent
// to a follower streams the hive file as it is, from a read transaction.
// Raft reads only the metadata at start (NoSnapshotRestoreOnStart), and
// snapshots it takes or receives are kept in the files as before.
type hiveSnapshots struct {
	raft.SnapshotStore
	hive *hive.Hive
	dir  string // the directory raft's file store keeps its snapshots in

	mu      sync.Mutex
	streams map[*io.PipeWriter]struct{} // the hive's streams still open
}

// abortStreams ends every stream of the hive still open: each holds a read
// transaction, which a replacement of the hive (a snapshot installed from a
// new leader) would otherwise wait for, as long as a slow peer of the old
// leader takes to read it.
func (s *hiveSnapshots) abortStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pw := range s.streams {
		pw.CloseWithError(errStreamAborted)
	}
}

var errStreamAborted = errors.New("the hive is being replaced")

// List is the stored snapshots, newest first, with the hive in front of
// them when it is newer.
func (s *hiveSnapshots) List() ([]*raft.SnapshotMeta, error) {
	list, err := s.SnapshotStore.List()
	if err != nil {
		return nil, err
	}
	meta, ok := snapshotMeta(s.hive.Position())
	if !ok || (len(list) > 0 && list[0].Index > meta.Index) {
		return list, nil
	}
	return append([]*raft.SnapshotMeta{meta}, list...), nil
}

// Open opens a stored snapshot, or streams the hive from a read
// transaction, with the metadata of that transaction. A stored snapshot is
// read as a storedSnapshot, which the hive can take in by renaming its file.
func (s *hiveSnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	if id != hiveSnapshotID {
		meta, rc, err := s.SnapshotStore.Open(id)
		if err != nil {
			return nil, nil, err
		}
		return meta, &storedSnapshot{ReadCloser: rc, dir: filepath.Join(s.dir, id)}, nil
	}
	snap, err := s.hive.Snapshot()
	if err != nil {
		return nil, nil, fmt.Errorf("open the hive as a snapshot: %w", err)
	}
	meta, ok := snapshotMeta(snap.Reader().Position())
	if !ok {
		snap.Close()
		return nil, nil, fmt.Errorf("open the hive as a snapshot: the hive does not know where it stands in the log")
	}
	meta.Size = snap.Size()
	pr, pw := io.Pipe()
	s.mu.Lock()
	if s.streams == nil {
		s.streams = map[*io.PipeWriter]struct{}{}
	}
	s.streams[pw] = struct{}{}
	s.mu.Unlock()
	go func() {
		_, err := snap.WriteTo(pw)
		snap.Close()
		pw.CloseWithError(err)
		s.mu.Lock()
		delete(s.streams, pw)
		s.mu.Unlock()
	}()
	return meta, pr, nil
}

// storedSnapshot is a snapshot raft's file store holds (one received from a
// leader, or taken here), its checksum verified as the store opened it. Its
// state file is a whole hive file.
type storedSnapshot struct {
	io.ReadCloser
	dir string
}

// installInto makes the snapshot the hive, by renaming its state file into
// the hive's place, then drops what is left of it (a hive that is newer
// stands in for it, see List): a snapshot received from the leader is
// written once. On error the hive is unchanged and the snapshot is kept.
func (s *storedSnapshot) installInto(h *hive.Hive) error {
	if err := h.ReplaceFile(filepath.Join(s.dir, snapshotStateFile)); err != nil {
		return err
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("drop the installed snapshot: %w", err)
	}
	return fsutil.SyncDir(filepath.Dir(s.dir))
}

// installSnapshot makes the snapshot read from rc the hive: a stored one by
// renaming its file (renamed is true), a stream by writing it. Raft hands
// the FSM a stored snapshot wrapped in a reader that counts what is read
// (for its progress log); the stored snapshot is found underneath.
func installSnapshot(h *hive.Hive, rc io.ReadCloser) (renamed bool, err error) {
	for {
		w, ok := rc.(interface{ WrappedReadCloser() io.ReadCloser })
		if !ok {
			break
		}
		rc = w.WrappedReadCloser()
	}
	if s, ok := rc.(*storedSnapshot); ok {
		return true, s.installInto(h)
	}
	return false, h.Replace(rc)
}

// The names raft's file snapshot store gives its directory and its files.
const (
	snapshotDir       = "snapshots"
	snapshotStateFile = "state.bin"
)

// dropInstalledSnapshots removes the snapshots whose state file is gone:
// renamed into the hive by an install that was stopped before it dropped
// the rest. The hive holds them, and raft must not be offered a snapshot
// it cannot open.
func dropInstalledSnapshots(raftDir string) error {
	dir := filepath.Join(raftDir, snapshotDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read snapshots: %w", err)
	}
	dropped := false
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), snapshotStateFile)); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("drop installed snapshot %s: %w", e.Name(), err)
		}
		dropped = true
	}
	if dropped {
		return fsutil.SyncDir(dir)
	}
	return nil
}

// snapshotMeta is the metadata of a snapshot at p, if p is whole.
func snapshotMeta(p hive.Position) (*raft.SnapshotMeta, bool) {
	if p.Index == 0 || p.Term == 0 || p.Config == nil || p.ConfigIndex > p.Index {
		return nil, false
	}
	c, ok := decodeConfiguration(p.Config)
	if !ok || len(c.Servers) == 0 {
		return nil, false
	}
	return &raft.SnapshotMeta{
		Version:            raft.SnapshotVersionMax,
		ID:                 hiveSnapshotID,
		Index:              p.Index,
		Term:               p.Term,
		Configuration:      c,
		ConfigurationIndex: p.ConfigIndex,
	}, true
}

// decodeConfiguration reads a configuration as raft encodes it; raft's own
// decoder panics on bytes it cannot read, which a damaged hive must not
// turn into a crash at start.
func decodeConfiguration(b []byte) (c raft.Configuration, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return raft.DecodeConfiguration(b), true
}
