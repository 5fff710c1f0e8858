// Package hive is the cluster database: a tree of keys holding typed, named
// values, stored in one bbolt file per node (clusdb). Names keep their case
// and are matched case-insensitively. Changes are atomic transactions with
// preconditions; every committed transaction raises the sequence number, and
// each key records the sequence number of its last change.
//
// The hive knows nothing of consensus: the cluster service decides what to
// apply and in which order, and hands each entry its consensus index so that
// replays after a restart are skipped. Applied entries reach the file in
// group commits off the acknowledgement path (group.go): the consensus log is
// what makes a change durable, and a restart replays what the last groups
// lost. The hive never reaches the network.
package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the hive's file name inside a node's data directory.
const FileName = "clusdb"

// pageSize is the page size of a new hive file (an existing file keeps
// its own). A 1 KiB value, the common size of a configuration blob, fills
// a 4 KiB page only three to a page, a quarter of it left over; at 16 KiB
// fifteen fit, and the file holds the data with almost nothing spare.
const pageSize = 16 << 10

// formatVersion is written in the meta bucket. A writable open converts a
// file of format 2 (formatNested) and a read-only one reads it as it is;
// any other format is refused.
const formatVersion = 3

var (
	// bucketKeys is the key index: every key but the root, by its folded
	// path (see indexID), with its record (keyRecord).
	bucketKeys = []byte("keys")
	// bucketData holds every value, keyed by its key's number and the
	// folded value name: a key's values lie together, and those of new
	// keys are appended.
	bucketData = []byte("data")
	bucketMeta = []byte("meta")
	// bucketRequests remembers the outcome of recent transactions by their
	// request id, so a retried request is answered, not applied again.
	bucketRequests = []byte("requests")
	bucketReqOrder = []byte("requests-order")
	keySeq         = []byte("seq")
	keyApplied     = []byte("applied")
	// The term of the entry at keyApplied, and the consensus configuration
	// in force there with the index it was committed at: with them the
	// hive says where it stands in the log (Position).
	keyAppliedTerm = []byte("applied-term")
	keyConfig      = []byte("config")
	keyConfigIndex = []byte("config-index")
	// keyPositionAt is the applied index the three keys above were kept
	// with: a version that knows none of them advances keyApplied alone,
	// and then they describe an earlier entry than the last one applied.
	keyPositionAt = []byte("position-at")
	keyFormat     = []byte("format")
	keyRoot       = []byte("root")     // the root key's record
	keyNextNum    = []byte("next-key") // the last key number given
)

// Options tune Open. The zero value is what an agent uses.
type Options struct {
	// NoSync skips fsync on commit. Only for tests and bulk loads that can
	// be redone; the cluster service never sets it.
	NoSync bool
	// MmapSize is the initial mmap size. It is virtual memory only; a large
	// one keeps a long read transaction (a backup) from ever blocking
	// writers on a remap. Default 4 GiB.
	MmapSize int

	// Entries given to Apply with a consensus index are applied into a
	// pending write transaction, the group, committed in the background
	// once it is CommitInterval old (default 100 ms) or holds CommitEntries
	// entries (default 10,000), as etcd's backend batches its commits: the
	// consensus log, fsync'd before an entry is applied, is what makes them
	// durable, and a restart replays what the hive lost. A commit holds up
	// applies and reads while it writes, so fewer, larger groups cost less
	// (each page a group dirties is written once per group). A negative
	// CommitInterval commits every Apply before it returns.
	CommitInterval time.Duration
	CommitEntries  int
	// OnCommitError is told, on a goroutine of its own, that a group
	// commit failed; the hive refuses every later read and change with
	// ErrCommitFailed. The default panics: the node must stop and replay,
	// never carry on as if the applied entries were safe.
	OnCommitError func(error)
	// Log, when set, hears of the long things Open does: converting a
	// file of an earlier format.
	Log *slog.Logger
}

// Hive is an open cluster database.
type Hive struct {
	path     string
	opts     Options
	readOnly bool

	mu     sync.RWMutex // guards db and closed across Replace
	db     *bolt.DB
	closed bool

	// txMu, taken after mu, guards the pending group and serializes every
	// use of it: a bolt transaction is not safe for concurrent use.
	txMu sync.Mutex
	group

	watch *watchers
}

// Open opens (creating if needed) the hive at path for reading and writing.
// It fails with ErrInUse when another process holds the file.
func Open(path string, opts Options) (*Hive, error) {
	if opts.MmapSize == 0 {
		opts.MmapSize = 4 << 30
	}
	if opts.CommitInterval == 0 {
		opts.CommitInterval = 100 * time.Millisecond
	}
	if opts.CommitEntries <= 0 {
		opts.CommitEntries = 10000
	}
	h := &Hive{path: path, opts: opts, watch: newWatchers()}
	db, err := h.openDB(false)
	if err != nil {
		return nil, err
	}
	h.db = db
	h.watch.setFloor(h.seqLocked())
	h.startCommitter()
	return h, nil
}

// OpenReadOnly opens the hive file of a stopped node, as any other file,
// without changing it. It fails with ErrInUse while a node service holds it.
func OpenReadOnly(path string) (*Hive, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open hive %s: %w", path, err)
	}
	h := &Hive{path: path, readOnly: true, watch: newWatchers()}
	db, err := h.openDB(true)
	if err != nil {
		return nil, err
	}
	h.db = db
	return h, nil
}

// readAheadOver is the size from which a hive is read ahead at open.
const readAheadOver = 64 << 20

// readAhead reads a large hive file once, sequentially, into the page
// cache. With NoFreelistSync, bbolt rebuilds the free list at a read-write
// open by visiting every page through its mmap, which it advises random:
// on a hive that is not in the page cache that is one 4 KiB read at a time,
// minutes for a 2 GB hive (seen at 3 MB/s in the benchmarks); read ahead
// sequentially first, it takes seconds. Errors are left to bolt.Open.
func readAhead(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() < readAheadOver {
		return
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Read(buf); err != nil {
			return
		}
	}
}

func (h *Hive) openDB(readOnly bool) (*bolt.DB, error) {
	bo := &bolt.Options{
		Timeout:         200 * time.Millisecond,
		ReadOnly:        readOnly,
		NoSync:          h.opts.NoSync,
		InitialMmapSize: h.opts.MmapSize,
		FreelistType:    bolt.FreelistMapType,
		NoFreelistSync:  true,
		PageSize:        pageSize,
	}
	if !readOnly {
		// A read-write open visits every page (the free list is rebuilt):
		// a file cut short is refused before, from a read-only open.
		if err := checkPages(h.path); err != nil {
			return nil, fmt.Errorf("open hive %s: %w", h.path, err)
		}
		if err := convertFile(h.path, pageSize, h.opts.Log); err != nil {
			if errors.Is(err, bolterrors.ErrTimeout) {
				err = ErrInUse
			}
			return nil, fmt.Errorf("open hive %s: %w", h.path, err)
		}
		readAhead(h.path)
	}
	db, err := bolt.Open(h.path, 0o600, bo)
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open hive %s: %w", h.path, ErrInUse)
		}
		return nil, fmt.Errorf("open hive %s: %w", h.path, err)
	}
	if readOnly {
		err = db.View(func(tx *bolt.Tx) error {
			if err := checkSize(tx, h.path); err != nil {
				return err
			}
			return checkFormat(tx)
		})
	} else {
		err = db.Update(prepare)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open hive %s: %w", h.path, err)
	}
	return db, nil
}

// checkPages refuses a hive file shorter than the pages its meta page
// counts (a file cut short): bbolt would read past its end through its
// mmap, and the process would die of SIGBUS instead of saying what is
// wrong. It reads the meta pages only. A file that is not there yet is a
// new hive.
func checkPages(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return ErrInUse
	}
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error { return checkSize(tx, path) })
}

// checkSize refuses a file shorter than the pages tx's meta page counts,
// before anything reads them.
func checkSize(tx *bolt.Tx, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if tx.Size() > fi.Size() {
		return fmt.Errorf("%w: the file has %d bytes and its pages need %d: it was cut short", ErrCorrupt, fi.Size(), tx.Size())
	}
	return nil
}

// prepare makes a writable hive ready: the buckets of a new file, a
// format 2 file converted.
func prepare(tx *bolt.Tx) error {
	for _, b := range [][]byte{bucketRequests, bucketReqOrder} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	m, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	// A file of format 2 was converted by convertFile before (see there).
	switch getU64(m.Get(keyFormat)) {
	case 0:
		for _, b := range [][]byte{bucketKeys, bucketData} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := m.Put(keyFormat, u64(formatVersion)); err != nil {
			return err
		}
	}
	return checkFormat(tx)
}

func checkFormat(tx *bolt.Tx) error {
	m := tx.Bucket(bucketMeta)
	if m == nil {
		return fmt.Errorf("%w: not a clusterkeep hive (missing buckets)", ErrCorrupt)
	}
	var trees [][]byte
	switch v := getU64(m.Get(keyFormat)); v {
	case formatVersion:
		trees = [][]byte{bucketKeys, bucketData}
	case formatNested:
		trees = [][]byte{bucketTree, bucketValues}
	default:
		return fmt.Errorf("%w: format version %d, this build reads %d and %d", ErrCorrupt, v, formatNested, formatVersion)
	}
	for _, b := range trees {
		if tx.Bucket(b) == nil {
			return fmt.Errorf("%w: not a clusterkeep hive (missing buckets)", ErrCorrupt)
		}
	}
	return nil
}

// Path is the hive's file path.
func (h *Hive) Path() string { return h.path }

// Close commits the pending group and closes the database file. Pending
// watches end with ErrClosed.
func (h *Hive) Close() error {
	h.watch.close()
	h.stopCommitter()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	if h.db == nil {
		return nil
	}
	h.txMu.Lock()
	err := h.commitLocked()
	h.txMu.Unlock()
	if cerr := h.db.Close(); err == nil {
		err = cerr
	}
	h.db = nil
	if err != nil {
		return fmt.Errorf("close hive %s: %w", h.path, err)
	}
	return nil
}

// view runs fn on a view that holds every applied entry: the pending
// group's write transaction while there is one (under txMu, so fn must be
// short and must not call the hive), else a read transaction.
func (h *Hive) view(fn func(tx *bolt.Tx) error) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.db == nil {
		return ErrClosed
	}
	if tx, unlock, err := h.pendingTx(); err != nil {
		return err
	} else if tx != nil {
		defer unlock()
		return fn(tx)
	}
	return h.db.View(fn)
}

// View runs fn with a consistent read view of the whole hive: every read
// through r sees the hive at one sequence number.
func (h *Hive) View(fn func(r *Reader) error) error {
	return h.view(func(tx *bolt.Tx) error { return fn(&Reader{tx: tx}) })
}

// Get returns a key with its values and the names of its subkeys.
func (h *Hive) Get(path string) (Key, error) {
	var k Key
	err := h.View(func(r *Reader) error {
		var err error
		k, err = r.Get(path)
		return err
	})
	return k, err
}

// GetValue returns one value of a key.
func (h *Hive) GetValue(path, name string) (Value, error) {
	var v Value
	err := h.View(func(r *Reader) error {
		var err error
		v, err = r.GetValue(path, name)
		return err
	})
	return v, err
}

// Seq returns the sequence number of the last committed transaction.
func (h *Hive) Seq() uint64 {
	var s uint64
	_ = h.View(func(r *Reader) error { s = r.Seq(); return nil })
	return s
}

func (h *Hive) seqLocked() uint64 {
	var s uint64
	_ = h.db.View(func(tx *bolt.Tx) error { s = (&Reader{tx: tx}).Seq(); return nil })
	return s
}

// Applied returns the consensus index of the last entry applied.
func (h *Hive) Applied() uint64 {
	var s uint64
	_ = h.View(func(r *Reader) error { s = r.Applied(); return nil })
	return s
}

// Position returns where the hive stands in the consensus log.
func (h *Hive) Position() Position {
	var p Position
	_ = h.View(func(r *Reader) error { p = r.Position(); return nil })
	return p
}

// Entry is one transaction to apply, with the consensus index it was
// committed at (0 when the hive is changed directly, offline).
type Entry struct {
	Index uint64
	Txn   Txn
	// System marks a change made by the cluster service itself, which may
	// write the reserved subtree.
	System bool
	// Mark records Index as applied without a transaction: a consensus
	// entry that changes no key (a no-op, a configuration change).
	Mark bool
	// Term is the consensus term of the entry at Index.
	Term uint64
	// Config, when set, is the consensus configuration this entry puts in
	// force, as the consensus layer encodes it (the hive does not read it).
	Config []byte
}

// Result is what applying one Entry did: the sequence number it committed
// under, or why it changed nothing.
type Result struct {
	Seq     uint64
	Err     error
	Skipped bool // already applied before a restart
}

// Update applies one transaction directly (offline use and tests) and
// commits it before it returns its sequence number.
func (h *Hive) Update(t Txn) (uint64, error) {
	res, err := h.apply([]Entry{{Txn: t}}, true)
	if err != nil {
		return 0, err
	}
	return res[0].Seq, res[0].Err
}

// Apply applies entries in order into the pending group (see Options); a
// later read sees them at once, the file holds them once the group is
// committed. An entry whose index is not above the stored applied index is
// skipped (a replay); an entry that is invalid or whose conditions fail
// changes nothing and reports why in its Result. The returned error is a
// storage failure, after which the hive refuses every use (ErrCommitFailed):
// the pending group, this batch with it, is lost.
func (h *Hive) Apply(entries []Entry) ([]Result, error) {
	return h.apply(entries, h.opts.CommitInterval < 0)
}

func (h *Hive) apply(entries []Entry, commit bool) ([]Result, error) {
	if h.readOnly {
		return nil, fmt.Errorf("apply: hive %s opened read-only", h.path)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.db == nil {
		return nil, ErrClosed
	}
	h.txMu.Lock()
	defer h.txMu.Unlock()
	if h.failed != nil {
		return nil, fmt.Errorf("apply to hive %s: %w", h.path, h.failed)
	}
	opened := false
	if h.pending == nil {
		tx, err := h.db.Begin(true)
		if err != nil {
			return nil, fmt.Errorf("apply to hive %s: begin: %w", h.path, err)
		}
		h.pending, h.pendingSince, opened = tx, time.Now(), true
	}
	results, events, final, err := applyEntries(h.pending, entries)
	if err != nil {
		h.failLocked(err)
		return nil, fmt.Errorf("apply to hive %s: %w", h.path, err)
	}
	h.pendingN += len(entries)
	// Watchers hear of the entries now: they are durable in the consensus
	// log, and every read sees them.
	h.watch.publish(events, final)
	switch {
	case commit:
		if err := h.commitLocked(); err != nil {
			return nil, fmt.Errorf("apply to hive %s: %w", h.path, err)
		}
	case opened || h.pendingN >= h.opts.CommitEntries:
		h.wakeCommitter()
	}
	return results, nil
}

// applyEntries applies entries in tx and returns their results, the events
// and the sequence number reached. Its error is a storage failure.
func applyEntries(tx *bolt.Tx, entries []Entry) ([]Result, []Event, uint64, error) {
	results := make([]Result, len(entries))
	var events []Event
	meta := tx.Bucket(bucketMeta)
	applied, term := getU64(meta.Get(keyApplied)), getU64(meta.Get(keyAppliedTerm))
	if getU64(meta.Get(keyPositionAt)) != applied {
		// An earlier version applied entries after the position was kept:
		// a configuration may have changed among them, so none is known
		// until the next configuration entry.
		for _, k := range [][]byte{keyConfig, keyConfigIndex} {
			if err := meta.Delete(k); err != nil {
				return nil, nil, 0, err
			}
		}
	}
	seq := getU64(meta.Get(keySeq))
	for i, e := range entries {
		if e.Index != 0 && e.Index <= applied {
			results[i].Skipped = true
			continue
		}
		if e.Index != 0 {
			applied, term = e.Index, e.Term
			if e.Config != nil {
				if err := putConfig(meta, e.Index, e.Config); err != nil {
					return nil, nil, 0, err
				}
			}
		}
		if e.Mark {
			continue
		}
		c, err := e.Txn.compile(e.System)
		if err != nil {
			results[i].Err = err
			continue
		}
		if prev, ok := seenRequest(tx, e.Txn.RequestID); ok {
			results[i] = prev
			continue
		}
		w := newWriter(tx)
		if err := w.check(c.conds); err != nil {
			results[i].Err = err
		} else {
			seq++
			w.seq = seq
			if err := w.apply(c.ops); err != nil {
				return nil, nil, 0, err
			}
			results[i].Seq = seq
			events = append(events, w.events...)
		}
		if err := rememberRequest(tx, e.Txn.RequestID, applied, results[i]); err != nil {
			return nil, nil, 0, err
		}
	}
	if err := forgetRequests(tx, applied); err != nil {
		return nil, nil, 0, err
	}
	if err := meta.Put(keySeq, u64(seq)); err != nil {
		return nil, nil, 0, err
	}
	if err := meta.Put(keyAppliedTerm, u64(term)); err != nil {
		return nil, nil, 0, err
	}
	if err := meta.Put(keyPositionAt, u64(applied)); err != nil {
		return nil, nil, 0, err
	}
	return results, events, seq, meta.Put(keyApplied, u64(applied))
}

func putConfig(meta *bolt.Bucket, index uint64, config []byte) error {
	if err := meta.Put(keyConfig, config); err != nil {
		return err
	}
	return meta.Put(keyConfigIndex, u64(index))
}

// forgetPosition drops what the hive knows of its place in the consensus
// log: a new consensus history starts, or none is left.
func forgetPosition(meta *bolt.Bucket) error {
	for _, k := range [][]byte{keyAppliedTerm, keyConfig, keyConfigIndex, keyPositionAt} {
		if err := meta.Delete(k); err != nil {
			return err
		}
	}
	return meta.Put(keyApplied, u64(0))
}

// Snapshot is a consistent, point-in-time read of the whole hive that does
// not block writers. Close it when done.
type Snapshot struct {
	tx *bolt.Tx
	r  *Reader
}

// Snapshot commits the pending group and begins a read transaction that
// holds the hive at its current sequence number: every entry applied before
// the call, durable in the file. A consensus snapshot, and the compaction
// of the consensus log after it, never outrun what the hive has made durable.
func (h *Hive) Snapshot() (*Snapshot, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.db == nil {
		return nil, ErrClosed
	}
	h.txMu.Lock()
	defer h.txMu.Unlock()
	if err := h.commitLocked(); err != nil {
		return nil, fmt.Errorf("snapshot hive %s: %w", h.path, err)
	}
	tx, err := h.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("snapshot hive %s: %w", h.path, err)
	}
	return &Snapshot{tx: tx, r: &Reader{tx: tx}}, nil
}

// Reader reads the snapshot.
func (s *Snapshot) Reader() *Reader { return s.r }

// Size is the size in bytes of the database file the snapshot writes.
func (s *Snapshot) Size() int64 { return s.tx.Size() }

// WriteTo writes the snapshot as a complete bbolt database file.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) { return s.tx.WriteTo(w) }

// Close ends the read transaction.
func (s *Snapshot) Close() error { return s.tx.Rollback() }

// Replace atomically swaps the hive's file for the database read from r (a
// raft snapshot streamed to it; ReplaceFile takes in a file instead). The
// new file is written aside, fsync'd and checked before it takes the old
// one's place; on any error the hive is unchanged. Watchers see
// ErrCompacted.
func (h *Hive) Replace(r io.Reader) error {
	if h.readOnly {
		return fmt.Errorf("replace: hive %s opened read-only", h.path)
	}
	tmp := h.path + ".incoming"
	if err := fsutil.WriteFile(tmp, r); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace hive %s: %w", h.path, err)
	}
	return h.replaceWith(tmp, true, CheckFile)
}

// ReplaceFile is Replace with the new database in a file of its own
// already, made durable, on the hive's file system, whose bytes a checksum
// vouched for (a consensus snapshot as raft stored it, its CRC verified as
// raft's store opened it): it is checked to open as a whole hive
// (checkWhole), then renamed into the hive's place, not copied. On error
// the hive is unchanged and file stays where it is.
func (h *Hive) ReplaceFile(file string) error {
	if h.readOnly {
		return fmt.Errorf("replace: hive %s opened read-only", h.path)
	}
	if err := os.Chmod(file, 0o600); err != nil {
		return fmt.Errorf("replace hive %s: %w", h.path, err)
	}
	return h.replaceWith(file, false, checkWhole)
}

// checkWhole is the check of a hive file whose bytes a checksum vouched
// for: it opens as a hive of a format this build reads, and holds every
// page its meta page counts. The file is, to the bit, what bbolt wrote from
// a consistent read transaction of a hive in service; bbolt's structural
// check and the hive's walk (CheckFile) would read every page again, on
// each member receiving it, to find only a fault the sender itself carried
// (as a restore does not run them on a backup set unless --deep).
func checkWhole(path string) error {
	// A read-only open checks both (checkSize, checkFormat).
	h, err := OpenReadOnly(path)
	if err != nil {
		return err
	}
	return h.Close()
}

// replaceWith checks file and swaps it in for the hive's; owned, it is
// removed on error.
func (h *Hive) replaceWith(file string, owned bool, check func(string) error) error {
	fail := func(err error) error {
		if owned {
			os.Remove(file)
		}
		return fmt.Errorf("replace hive %s: %w", h.path, err)
	}
	if err := check(file); err != nil {
		return fail(fmt.Errorf("incoming database: %w", err))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.db == nil {
		return fail(ErrClosed)
	}
	// The pending group is committed first: if the swap fails, the hive
	// stays as applied; if it works, the file is gone anyway.
	h.txMu.Lock()
	err := h.commitLocked()
	h.txMu.Unlock()
	if err != nil {
		return fail(err)
	}
	if err := h.db.Close(); err != nil {
		return fail(fmt.Errorf("close: %w", err))
	}
	h.db = nil
	renameErr := os.Rename(file, h.path)
	if renameErr == nil {
		renameErr = fsutil.SyncDir(filepath.Dir(h.path))
	}
	// Whichever file is in place now, the hive stays open on it.
	db, err := h.openDB(false)
	if err != nil {
		return fmt.Errorf("replace hive %s: reopen: %w", h.path, errors.Join(renameErr, err))
	}
	h.db = db
	h.watch.setFloor(h.seqLocked())
	if renameErr != nil {
		return fail(renameErr)
	}
	return nil
}

// CheckFile opens a hive file read-only and runs bbolt's consistency check
// and the hive's own structure check over it.
func CheckFile(path string) error {
	h, err := OpenReadOnly(path)
	if err != nil {
		return err
	}
	defer h.Close()
	return h.Check()
}

// Check verifies the bbolt page structure and that every stored key and
// value decodes.
func (h *Hive) Check() error {
	return h.view(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if err := checkFormat(tx); err != nil {
			return err
		}
		r := &Reader{tx: tx}
		values := 0
		if err := r.Walk(Path{}, func(k Key) error { values += len(k.Values); return nil }); err != nil {
			return err
		}
		if r.nested() {
			return nil
		}
		// Every value belongs to a key.
		if stored := tx.Bucket(bucketData).Stats().KeyN; stored != values {
			return fmt.Errorf("%w: %d values stored, %d of them belong to a key", ErrCorrupt, stored, values)
		}
		return nil
	})
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// ResetConsensus forgets the consensus index and the remembered request
// ids: an authoritative restore starts a new consensus history at index 1,
// whose entries must not be taken for replays of the old one.
func (h *Hive) ResetConsensus() error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.db == nil {
		return ErrClosed
	}
	h.txMu.Lock()
	defer h.txMu.Unlock()
	if err := h.commitLocked(); err != nil {
		return fmt.Errorf("reset consensus index of hive %s: %w", h.path, err)
	}
	return h.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRequests, bucketReqOrder} {
			if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return forgetPosition(tx.Bucket(bucketMeta))
	})
}

// Clear empties the hive: no key, no value, sequence number and consensus
// index 0, in one transaction. Watchers see ErrCompacted.
func (h *Hive) Clear() error {
	if h.readOnly {
		return fmt.Errorf("clear: hive %s opened read-only", h.path)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.db == nil {
		return ErrClosed
	}
	h.txMu.Lock()
	defer h.txMu.Unlock()
	if err := h.commitLocked(); err != nil {
		return fmt.Errorf("clear hive %s: %w", h.path, err)
	}
	err := h.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketData, bucketRequests, bucketReqOrder} {
			if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		if err := m.Delete(keyRoot); err != nil {
			return err
		}
		if err := m.Put(keySeq, u64(0)); err != nil {
			return err
		}
		return forgetPosition(m)
	})
	if err != nil {
		return fmt.Errorf("clear hive %s: %w", h.path, err)
	}
	h.watch.setFloor(0)
	return nil
}
