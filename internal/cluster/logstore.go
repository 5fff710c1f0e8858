package cluster

// The node's consensus log: an append-only write-ahead log (hashicorp/raft-wal)
// in DATA_DIR/raft/wal, and the one-time conversion of the raft-boltdb log
// (DATA_DIR/raft/raft.db) that earlier versions kept.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"go.etcd.io/bbolt"
)

// logStore is what raft keeps on disk besides its snapshots: the log
// entries and the stable keys (term and vote).
type logStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// logCacheEntries is how many of the newest log entries raft keeps in
// memory for replication (at most 1 MiB each: a few hundred MiB at worst,
// a few hundred KiB for configuration changes of a few hundred bytes).
const logCacheEntries = 512

// Names in the raft directory.
const (
	walDir = "wal"
	// boltLogFile is the raft-boltdb log of earlier versions; once
	// converted it is renamed with migratedSuffix, never deleted.
	boltLogFile    = "raft.db"
	migratedSuffix = ".migrated"
	// walBuilding is where a conversion builds the WAL; it is renamed to
	// walDir only once complete and durable.
	walBuilding = "wal.converting"
)

// logSegmentSize is the size of each WAL segment file, preallocated when
// the segment is created. Raft drops log entries only a whole segment at a
// time, so a segment much larger than the log raft keeps (about 18,000
// entries by default) only holds disk space; 16 MiB keeps a node's log
// within a few segments and rotates rarely enough (thousands of entries
// per segment) that the rotation's extra commits do not show.
const logSegmentSize = 16 << 20

// stableUintKeys and stableKeys are the keys hashicorp/raft keeps in its
// StableStore (raft.go: keyCurrentTerm, keyLastVoteTerm, keyLastVoteCand):
// the first two written with SetUint64, the last with Set. The stores
// encode uint64s differently, so each kind is copied through its own call.
var (
	stableUintKeys = []string{"CurrentTerm", "LastVoteTerm"}
	stableKeys     = []string{"LastVoteCand"}
)

// ErrLogStoresDiffer: the raft directory holds both a raft-boltdb log and a
// WAL that do not hold the same log, so neither can be taken as the node's.
var ErrLogStoresDiffer = errors.New("the raft-boltdb log and the WAL in the raft directory differ")

// openLogStore opens the node's consensus log in raftDir, first converting
// a raft-boltdb log left there by an earlier version.
func openLogStore(raftDir string, hlog hclog.Logger, log *slog.Logger) (logStore, error) {
	if err := convertBoltLog(raftDir, hlog, log); err != nil {
		return nil, fmt.Errorf("convert %s to a WAL: %w", filepath.Join(raftDir, boltLogFile), err)
	}
	dir := filepath.Join(raftDir, walDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open log store: %w", err)
	}
	w, err := openWAL(dir, hlog)
	if err != nil {
		return nil, fmt.Errorf("open log store %s: %w", dir, err)
	}
	return w, nil
}

// openWAL opens the WAL in dir. raft-wal must be v0.4.1 or later: v0.4.0
// left its metadata file open (and locked) on Close, and truncating the
// log's tail (raft does when a new leader overrules entries) left a sealed
// segment without its index, so the node could not start again
// (hashicorp/raft-wal#31).
func openWAL(dir string, hlog hclog.Logger) (*wal.WAL, error) {
	return wal.Open(dir, wal.WithLogger(hlog.Named("wal")), wal.WithSegmentSize(logSegmentSize))
}

// convertBoltLog turns raftDir's raft-boltdb log, if there is one, into a
// WAL holding every entry and stable key. It builds the WAL aside, makes it
// durable, renames it into place and only then renames raft.db aside, so a
// crash at any point leaves either raft.db (and the conversion starts
// again) or the complete WAL.
func convertBoltLog(raftDir string, hlog hclog.Logger, log *slog.Logger) error {
	boltPath := filepath.Join(raftDir, boltLogFile)
	if _, err := os.Stat(boltPath); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	final := filepath.Join(raftDir, walDir)
	if _, err := os.Stat(final); err == nil {
		// The WAL was renamed into place and the crash came before raft.db
		// was moved aside; unless someone ran the old version on this
		// directory since, both hold the same log.
		if err := sameLogs(boltPath, final, hlog); err != nil {
			return err
		}
		return retireBoltLog(raftDir, log)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	start := time.Now()
	building := filepath.Join(raftDir, walBuilding)
	// What is there is a conversion interrupted before it was complete.
	if err := os.RemoveAll(building); err != nil {
		return fmt.Errorf("remove an interrupted conversion: %w", err)
	}
	if err := os.Mkdir(building, 0o700); err != nil {
		return err
	}
	n, err := buildWAL(boltPath, building, hlog)
	if err != nil {
		return err
	}
	if err := syncDir(building); err != nil {
		return err
	}
	if err := os.Rename(building, final); err != nil {
		return err
	}
	if err := syncDir(raftDir); err != nil {
		return err
	}
	log.Warn("converted the raft-boltdb log to a WAL", "entries", n, "took", time.Since(start).Round(time.Millisecond))
	return retireBoltLog(raftDir, log)
}

// buildWAL copies the raft-boltdb log at boltPath into a new WAL in dir,
// checks the copy against the source, and returns how many entries it
// holds.
func buildWAL(boltPath, dir string, hlog hclog.Logger) (uint64, error) {
	src, err := openBoltLog(boltPath)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	dst, err := openWAL(dir, hlog)
	if err != nil {
		return 0, fmt.Errorf("create WAL: %w", err)
	}
	n, err := copyLog(dst, src)
	if err == nil {
		err = checkSameLog(dst, src)
	}
	// Every append and stable key is fsync'd as it is written; closing
	// only releases the files.
	if cerr := dst.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close WAL: %w", cerr)
	}
	return n, err
}

// openBoltLog opens a raft-boltdb log read-only: a conversion never
// changes it.
func openBoltLog(path string) (*raftboltdb.BoltStore, error) {
	s, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{ReadOnly: true, Timeout: 10 * time.Second}})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// copyBatchBytes bounds the entries copied per append.
const copyBatchBytes = 4 << 20

// copyLog copies every entry and raft's stable keys from src to the empty
// dst and returns how many entries it copied.
func copyLog(dst, src logStore) (uint64, error) {
	first, last, err := logRange(src)
	if err != nil {
		return 0, err
	}
	var batch []*raft.Log
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := dst.StoreLogs(batch); err != nil {
			return fmt.Errorf("append entries %d to %d: %w", batch[0].Index, batch[len(batch)-1].Index, err)
		}
		batch, size = batch[:0], 0
		return nil
	}
	for i := first; last > 0 && i <= last; i++ {
		e := new(raft.Log)
		if err := src.GetLog(i, e); err != nil {
			return 0, fmt.Errorf("read entry %d: %w", i, err)
		}
		batch = append(batch, e)
		if size += len(e.Data) + len(e.Extensions); size >= copyBatchBytes {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	for _, k := range stableUintKeys {
		v, err := src.GetUint64([]byte(k))
		if isKeyNotFound(err) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", k, err)
		}
		if err := dst.SetUint64([]byte(k), v); err != nil {
			return 0, fmt.Errorf("write %s: %w", k, err)
		}
	}
	for _, k := range stableKeys {
		v, err := src.Get([]byte(k))
		if err != nil && !isKeyNotFound(err) {
			return 0, fmt.Errorf("read %s: %w", k, err)
		}
		if len(v) == 0 {
			continue
		}
		if err := dst.Set([]byte(k), v); err != nil {
			return 0, fmt.Errorf("write %s: %w", k, err)
		}
	}
	if last == 0 {
		return 0, nil
	}
	return last - first + 1, nil
}

// logRange is the first and last index of s, both zero when it is empty.
func logRange(s raft.LogStore) (uint64, uint64, error) {
	first, err := s.FirstIndex()
	if err != nil {
		return 0, 0, fmt.Errorf("read first index: %w", err)
	}
	last, err := s.LastIndex()
	if err != nil {
		return 0, 0, fmt.Errorf("read last index: %w", err)
	}
	return first, last, nil
}

// isKeyNotFound: raft-boltdb's "not found", which raft itself tells
// apart by its text.
func isKeyNotFound(err error) bool {
	return err != nil && (errors.Is(err, raftboltdb.ErrKeyNotFound) || err.Error() == "not found")
}

// checkSameLog reports how b differs from a, if it does: range, any entry,
// or any of raft's stable keys.
func checkSameLog(a, b logStore) error {
	af, al, err := logRange(a)
	if err != nil {
		return err
	}
	bf, bl, err := logRange(b)
	if err != nil {
		return err
	}
	if al == 0 && bl == 0 {
		af, bf = 0, 0 // an empty store may report any first index
	}
	if af != bf || al != bl {
		return fmt.Errorf("%w: entries %d to %d against %d to %d", ErrLogStoresDiffer, af, al, bf, bl)
	}
	for i := af; al > 0 && i <= al; i++ {
		var x, y raft.Log
		if err := a.GetLog(i, &x); err != nil {
			return fmt.Errorf("read entry %d: %w", i, err)
		}
		if err := b.GetLog(i, &y); err != nil {
			return fmt.Errorf("read entry %d: %w", i, err)
		}
		if x.Index != y.Index || x.Term != y.Term || x.Type != y.Type || !bytes.Equal(x.Data, y.Data) ||
			!bytes.Equal(x.Extensions, y.Extensions) || !x.AppendedAt.Equal(y.AppendedAt) {
			return fmt.Errorf("%w: entry %d", ErrLogStoresDiffer, i)
		}
	}
	for _, k := range stableUintKeys {
		x, xerr := a.GetUint64([]byte(k))
		y, yerr := b.GetUint64([]byte(k))
		if xerr != nil && !isKeyNotFound(xerr) {
			return fmt.Errorf("read %s: %w", k, xerr)
		}
		if yerr != nil && !isKeyNotFound(yerr) {
			return fmt.Errorf("read %s: %w", k, yerr)
		}
		if x != y {
			return fmt.Errorf("%w: %s %d against %d", ErrLogStoresDiffer, k, x, y)
		}
	}
	for _, k := range stableKeys {
		x, xerr := a.Get([]byte(k))
		y, yerr := b.Get([]byte(k))
		if xerr != nil && !isKeyNotFound(xerr) {
			return fmt.Errorf("read %s: %w", k, xerr)
		}
		if yerr != nil && !isKeyNotFound(yerr) {
			return fmt.Errorf("read %s: %w", k, yerr)
		}
		if !bytes.Equal(x, y) {
			return fmt.Errorf("%w: %s", ErrLogStoresDiffer, k)
		}
	}
	return nil
}

// sameLogs checks that the raft-boltdb log at boltPath and the WAL in dir
// hold the same log.
func sameLogs(boltPath, dir string, hlog hclog.Logger) error {
	src, err := openBoltLog(boltPath)
	if err != nil {
		return err
	}
	defer src.Close()
	w, err := openWAL(dir, hlog)
	if err != nil {
		return fmt.Errorf("open WAL %s: %w", dir, err)
	}
	defer w.Close()
	if err := checkSameLog(src, w); err != nil {
		return fmt.Errorf("%w (move the one that is not this node's log out of %s)", err, filepath.Dir(dir))
	}
	return nil
}

// retireBoltLog renames the converted raft.db aside, to a name no earlier
// conversion used: it is kept, never deleted.
func retireBoltLog(raftDir string, log *slog.Logger) error {
	name := boltLogFile + migratedSuffix
	for i := 2; ; i++ {
		if _, err := os.Lstat(filepath.Join(raftDir, name)); errors.Is(err, os.ErrNotExist) {
			break
		} else if err != nil {
			return err
		}
		name = fmt.Sprintf("%s%s.%d", boltLogFile, migratedSuffix, i)
	}
	if err := os.Rename(filepath.Join(raftDir, boltLogFile), filepath.Join(raftDir, name)); err != nil {
		return err
	}
	if err := syncDir(raftDir); err != nil {
		return err
	}
	log.Warn("kept the converted raft-boltdb log aside", "file", filepath.Join(raftDir, name))
	return nil
}

func syncDir(dir string) error {
	if err := fsutil.SyncDir(dir); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
