package hive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openGroup opens a hive whose groups are committed only when a test says
// so (or by count, when entries > 0).
func openGroup(t *testing.T, path string, entries int) *Hive {
	t.Helper()
	h, err := Open(path, Options{NoSync: true, CommitInterval: time.Hour, CommitEntries: entries})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// crash ends h as a killed process would: the pending group is never
// committed, the file holds what the last commit wrote.
func (h *Hive) crash() {
	h.stopCommitter()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.txMu.Lock()
	defer h.txMu.Unlock()
	if h.pending != nil {
		h.pending.Rollback()
		h.pending = nil
	}
	h.db.Close()
	h.db, h.closed = nil, true
}

func setEntry(index uint64, key string, n int) Entry {
	return Entry{Index: index, Txn: Txn{Ops: []Op{SetValue(key, Uint32Value("N", uint32(n)))}}}
}

func mustApply(t *testing.T, h *Hive, entries ...Entry) []Result {
	t.Helper()
	res, err := h.Apply(entries)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("entry %d: %v", i, r.Err)
		}
	}
	return res
}

func exportOf(t *testing.T, h *Hive) string {
	t.Helper()
	var b bytes.Buffer
	if err := h.Export(&b, ""); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// committedApplied is the applied index the file itself holds.
func committedApplied(t *testing.T, path string) uint64 {
	t.Helper()
	var got uint64
	// The open hive locks its file: read a copy, as a crash would leave it.
	cp := filepath.Join(t.TempDir(), "copy")
	copyFile(t, path, cp)
	db, err := bolt.Open(cp, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error { got = (&Reader{tx: tx}).Applied(); return nil })
	return got
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}

func TestReadsSeeThePendingGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	h := openGroup(t, path, 0)
	ch := make(chan []Event, 1)
	go func() {
		evs, _, err := h.Watch(context.Background(), "A", 0)
		if err != nil {
			t.Error(err)
		}
		ch <- evs
	}()
	mustApply(t, h, setEntry(1, "A/B", 1), setEntry(2, "A/C", 2))
	if h.Pending() != 2 || committedApplied(t, path) != 0 {
		t.Fatalf("pending %d, file at index %d: the group should still be open", h.Pending(), committedApplied(t, path))
	}
	if v, err := h.GetValue("A/C", "N"); err != nil || v.Uint32 != 2 {
		t.Fatalf("get of a pending entry: %+v %v", v, err)
	}
	if h.Applied() != 2 || h.Seq() != 2 {
		t.Fatalf("applied %d seq %d, want 2 2", h.Applied(), h.Seq())
	}
	var keys []string
	if err := h.View(func(r *Reader) error {
		return r.Walk(Path{}, func(k Key) error { keys = append(keys, k.Path); return nil })
	}); err != nil || len(keys) != 4 {
		t.Fatalf("walk: %v %v", keys, err)
	}
	// A later entry's conditions see the pending ones.
	cond := Entry{Index: 3, Txn: Txn{Conds: []Cond{{Kind: CondValueEquals, Key: "A/B", Value: ptr(Uint32Value("N", 1))}}, Ops: []Op{DeleteKey("A/C")}}}
	mustApply(t, h, cond)
	if _, err := h.Get("A/C"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("A/C after its conditional delete: %v", err)
	}
	select {
	case evs := <-ch:
		if len(evs) < 3 || evs[2].Key != "A/B" || evs[2].Kind != OpSetValue {
			t.Fatalf("watch: %+v", evs)
		}
	case <-time.After(time.Minute):
		t.Fatal("no watch event for a pending entry")
	}
}

func ptr[T any](v T) *T { return &v }

func TestSnapshotCommitsThePendingGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	h := openGroup(t, path, 0)
	mustApply(t, h, setEntry(1, "A", 1), setEntry(2, "B", 2))
	s, err := h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if h.Pending() != 0 || committedApplied(t, path) != 2 {
		t.Fatalf("after Snapshot: pending %d, file at index %d; want 0, 2", h.Pending(), committedApplied(t, path))
	}
	if s.Reader().Applied() != 2 {
		t.Fatalf("snapshot at index %d, want 2", s.Reader().Applied())
	}
	// Writes go on beside the snapshot's read transaction.
	mustApply(t, h, setEntry(3, "C", 3))
	if s.Reader().Applied() != 2 || h.Applied() != 3 {
		t.Fatal("the snapshot moved, or the write did not happen")
	}
}

// A crash loses the pending group and nothing else; replaying the
// consensus log, whose earlier entries are skipped, brings the hive back
// to the state of a hive that never crashed.
func TestCrashLosesOnlyThePendingGroupAndReplayRestoresIt(t *testing.T) {
	dir := t.TempDir()
	var log []Entry
	for i := 1; i <= 40; i++ {
		log = append(log, setEntry(uint64(i), fmt.Sprintf("K/%d", i%7), i))
	}
	log = append(log, Entry{Index: 41, Txn: Txn{Ops: []Op{DeleteKey("K/3")}}})
	ref := openGroup(t, filepath.Join(dir, "ref"), 0)
	mustApply(t, ref, log...)
	want := exportOf(t, ref)

	path := filepath.Join(dir, FileName)
	h := openGroup(t, path, 0)
	mustApply(t, h, log[:25]...)
	if err := h.Commit(); err != nil {
		t.Fatal(err)
	}
	mustApply(t, h, log[25:]...)
	h.crash()

	h = openGroup(t, path, 0)
	if h.Applied() != 25 {
		t.Fatalf("after the crash the hive is at index %d, want 25 (its last commit)", h.Applied())
	}
	// Raft re-applies from its newest snapshot (none here: from index 1).
	res := mustApply(t, h, log...)
	for i, r := range res {
		if r.Skipped != (i < 25) {
			t.Fatalf("entry %d: skipped %v", i+1, r.Skipped)
		}
	}
	if got := exportOf(t, h); got != want {
		t.Fatalf("after replay:\n%s\nwant:\n%s", got, want)
	}
	if h.Seq() != ref.Seq() {
		t.Fatalf("seq %d, want %d", h.Seq(), ref.Seq())
	}
}

func TestGroupsAreCommittedInTheBackground(t *testing.T) {
	t.Run("by age", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), FileName)
		h, err := Open(path, Options{NoSync: true, CommitInterval: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		mustApply(t, h, setEntry(1, "A", 1))
		waitCommitted(t, h, path, 1)
	})
	t.Run("by count", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), FileName)
		h := openGroup(t, path, 10)
		for i := 1; i <= 9; i++ {
			mustApply(t, h, setEntry(uint64(i), "A", i))
		}
		if committedApplied(t, path) != 0 {
			t.Fatal("committed before the group was full or old")
		}
		mustApply(t, h, setEntry(10, "A", 10))
		waitCommitted(t, h, path, 10)
	})
}

func waitCommitted(t *testing.T, h *Hive, path string, index uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for h.Pending() != 0 || committedApplied(t, path) != index {
		if time.Now().After(deadline) {
			t.Fatalf("group not committed: pending %d, file at %d, want %d", h.Pending(), committedApplied(t, path), index)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseResetAndClearCommitThePendingGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	h := openGroup(t, path, 0)
	mustApply(t, h, setEntry(1, "A", 1))
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h = openGroup(t, path, 0)
	if _, err := h.Get("A"); err != nil || h.Applied() != 1 {
		t.Fatalf("after close and open: %v, index %d", err, h.Applied())
	}
	mustApply(t, h, setEntry(2, "B", 2))
	if err := h.ResetConsensus(); err != nil {
		t.Fatal(err)
	}
	h.crash()
	h = openGroup(t, path, 0)
	if _, err := h.Get("B"); err != nil || h.Applied() != 0 {
		t.Fatalf("after reset: %v, index %d", err, h.Applied())
	}
	mustApply(t, h, setEntry(1, "C", 1))
	if err := h.Clear(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Get("C"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("after clear: %v", err)
	}
}

func TestFailedGroupCommitStopsTheHive(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	reported := make(chan error, 1)
	h, err := Open(path, Options{NoSync: true, CommitInterval: time.Millisecond, OnCommitError: func(err error) { reported <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	commitTx = func(tx *bolt.Tx) error { tx.Rollback(); return errors.New("disk on fire") }
	defer func() { commitTx = (*bolt.Tx).Commit }()
	mustApply(t, h, setEntry(1, "A", 1))
	select {
	case err := <-reported:
		if !errors.Is(err, ErrCommitFailed) {
			t.Fatalf("reported %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a failed background commit was not reported")
	}
	if _, err := h.Apply([]Entry{setEntry(2, "B", 2)}); !errors.Is(err, ErrCommitFailed) {
		t.Fatalf("apply after a failed commit: %v", err)
	}
	if _, err := h.Get("A"); !errors.Is(err, ErrCommitFailed) {
		t.Fatalf("read after a failed commit: %v", err)
	}
	if _, err := h.Snapshot(); !errors.Is(err, ErrCommitFailed) {
		t.Fatalf("snapshot after a failed commit: %v", err)
	}
}

// Reads while a group is pending go through its write transaction under the
// hive's lock; the alternative, committing before each such read, costs a
// commit (two fsyncs) per read while writes flow.
func BenchmarkGetWithWritesFlowing(b *testing.B) {
	setup := func(b *testing.B) *Hive {
		h, err := Open(filepath.Join(b.TempDir(), FileName), Options{CommitInterval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close() })
		for i := range 1000 {
			if _, err := h.Update(Txn{Ops: []Op{SetValue(fmt.Sprintf("K/%d", i), BinaryValue("v", make([]byte, 1024)))}}); err != nil {
				b.Fatal(err)
			}
		}
		return h
	}
	get := func(b *testing.B, h *Hive, i int) {
		if _, err := h.GetValue(fmt.Sprintf("K/%d", i%1000), "v"); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("no group pending (read transaction)", func(b *testing.B) {
		h := setup(b)
		for i := 0; b.Loop(); i++ {
			get(b, h, i)
		}
	})
	b.Run("through the pending group", func(b *testing.B) {
		h := setup(b)
		if _, err := h.Apply([]Entry{setEntry(1, "P", 1)}); err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			get(b, h, i)
		}
	})
	for _, commitFirst := range []bool{false, true} {
		b.Run(fmt.Sprintf("an entry applied before each read, commit first %v", commitFirst), func(b *testing.B) {
			h := setup(b)
			for i := 0; b.Loop(); i++ {
				if _, err := h.Apply([]Entry{setEntry(uint64(i+1), "P", i)}); err != nil {
					b.Fatal(err)
				}
				if commitFirst {
					if err := h.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				get(b, h, i)
			}
		})
	}
}
