package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

var (
	quietHCLog = hclog.NewNullLogger()
	quietLog   = slog.New(slog.NewTextHandler(io.Discard, nil))
)

// oldLog is what an earlier version left in a raft directory: raft.db with
// entries from..to (those before from compacted away) and raft's stable
// keys.
type oldLog struct {
	from, to uint64
	size     int // bytes of data per entry
	term     uint64
	voteTerm uint64
	voteCand string
}

func (o oldLog) entry(i uint64) *raft.Log {
	data := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, o.size/2)
	data = append(data, fmt.Sprintf("entry %d", i)...)
	e := &raft.Log{Index: i, Term: 1 + i/100, Type: raft.LogCommand, Data: data,
		AppendedAt: time.Date(2026, 11, 30, 10, 0, 0, int(i), time.UTC)}
	switch i % 7 {
	case 0:
		e.Type = raft.LogConfiguration
	case 3:
		e.Type = raft.LogNoop
		e.Data = nil
	case 5:
		e.Extensions = []byte(fmt.Sprintf("ext %d", i))
	}
	return e
}

// write creates raft.db in raftDir as the earlier version did.
func (o oldLog) write(t *testing.T, raftDir string) {
	t.Helper()
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, boltLogFile)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var batch []*raft.Log
	for i := uint64(1); i <= o.to; i++ {
		batch = append(batch, o.entry(i))
		if len(batch) == 64 || i == o.to {
			if err := s.StoreLogs(batch); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	if o.from > 1 {
		if err := s.DeleteRange(1, o.from-1); err != nil {
			t.Fatal(err)
		}
	}
	if o.term > 0 {
		if err := s.SetUint64([]byte("CurrentTerm"), o.term); err != nil {
			t.Fatal(err)
		}
	}
	if o.voteTerm > 0 {
		if err := s.SetUint64([]byte("LastVoteTerm"), o.voteTerm); err != nil {
			t.Fatal(err)
		}
		if err := s.Set([]byte("LastVoteCand"), []byte(o.voteCand)); err != nil {
			t.Fatal(err)
		}
	}
}

// check fails unless s holds exactly the old log.
func (o oldLog) check(t *testing.T, s logStore) {
	t.Helper()
	first, last, err := logRange(s)
	if err != nil {
		t.Fatal(err)
	}
	if o.to == 0 {
		if last != 0 {
			t.Fatalf("last index %d, want an empty log", last)
		}
	} else if first != o.from || last != o.to {
		t.Fatalf("entries %d to %d, want %d to %d", first, last, o.from, o.to)
	}
	for i := o.from; o.to > 0 && i <= o.to; i++ {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		want := o.entry(i)
		if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) ||
			!bytes.Equal(got.Extensions, want.Extensions) || !got.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("entry %d: got %+v", i, got)
		}
	}
	for k, want := range map[string]uint64{"CurrentTerm": o.term, "LastVoteTerm": o.voteTerm} {
		if got, err := s.GetUint64([]byte(k)); (err != nil && !isKeyNotFound(err)) || got != want {
			t.Fatalf("%s = %d (%v), want %d", k, got, err, want)
		}
	}
	if got, err := s.Get([]byte("LastVoteCand")); (err != nil && !isKeyNotFound(err)) || string(got) != o.voteCand {
		t.Fatalf("LastVoteCand = %q (%v), want %q", got, err, o.voteCand)
	}
}

// converted opens the log store in raftDir, checks it holds o and that
// raft.db was kept aside under name, and closes it.
func (o oldLog) converted(t *testing.T, raftDir, name string) {
	t.Helper()
	s, err := openLogStore(raftDir, quietHCLog, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	o.check(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{boltLogFile, walBuilding} {
		if _, err := os.Stat(filepath.Join(raftDir, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still there: %v", gone, err)
		}
	}
	kept, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, name)})
	if err != nil {
		t.Fatalf("the old log was not kept as %s: %v", name, err)
	}
	defer kept.Close()
	o.check(t, kept)
}

var (
	// bigLog spans several WAL segments and copy batches.
	bigLog   = oldLog{from: 41, to: 700, size: 64 << 10, term: 9, voteTerm: 8, voteCand: "node-b-id"}
	smallLog = oldLog{from: 1, to: 30, size: 100, term: 2, voteTerm: 2, voteCand: "n1"}
)

func TestConvertBoltLogCopiesEveryEntryAndStableKey(t *testing.T) {
	for name, o := range map[string]oldLog{
		"several segments": bigLog,
		"small":            smallLog,
		// A node that joined and never voted nor received an entry.
		"empty, never voted": {term: 1},
		"empty":              {},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "raft")
			o.write(t, dir)
			o.converted(t, dir, boltLogFile+migratedSuffix)
			// Later starts open the WAL as it is.
			o.converted(t, dir, boltLogFile+migratedSuffix)
		})
	}
	if got := bigLog.to * uint64(bigLog.size) / logSegmentSize; got < 2 {
		t.Fatalf("the big log fills %d segments, want several", got)
	}
}

// TestConvertBoltLogAfterACrash starts the conversion again on what a
// crash at each step leaves behind.
func TestConvertBoltLogAfterACrash(t *testing.T) {
	o := bigLog
	for name, crash := range map[string]func(t *testing.T, dir string){
		"while copying entries": func(t *testing.T, dir string) {
			// Half the entries in the WAL being built, no stable keys.
			w, err := openWAL(mkdir(t, filepath.Join(dir, walBuilding)), quietHCLog)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			var batch []*raft.Log
			for i := o.from; i < (o.from+o.to)/2; i++ {
				batch = append(batch, o.entry(i))
			}
			if err := w.StoreLogs(batch); err != nil {
				t.Fatal(err)
			}
		},
		"before the WAL's first file": func(t *testing.T, dir string) {
			mkdir(t, filepath.Join(dir, walBuilding))
		},
		"with garbage in the WAL being built": func(t *testing.T, dir string) {
			d := mkdir(t, filepath.Join(dir, walBuilding))
			if err := os.WriteFile(filepath.Join(d, "wal-meta.db"), []byte("torn"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"after the WAL was renamed into place": func(t *testing.T, dir string) {
			building := mkdir(t, filepath.Join(dir, walBuilding))
			if _, err := buildWAL(filepath.Join(dir, boltLogFile), building, quietHCLog); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(building, filepath.Join(dir, walDir)); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "raft")
			o.write(t, dir)
			crash(t, dir)
			o.converted(t, dir, boltLogFile+migratedSuffix)
		})
	}
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConvertBoltLogKeepsEveryOldLog: a raft.db.migrated already there (an
// earlier conversion, then the earlier version run again) is not replaced.
func TestConvertBoltLogKeepsEveryOldLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "raft")
	smallLog.write(t, dir)
	if err := os.Rename(filepath.Join(dir, boltLogFile), filepath.Join(dir, boltLogFile+migratedSuffix)); err != nil {
		t.Fatal(err)
	}
	bigLog.write(t, dir)
	bigLog.converted(t, dir, boltLogFile+migratedSuffix+".2")
	kept, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, boltLogFile+migratedSuffix)})
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	smallLog.check(t, kept)
}

// TestConvertBoltLogRefusesTwoDifferentLogs: a WAL and a raft.db that are
// not the same log leave the node unable to tell which is its own; it
// refuses to start and changes nothing.
func TestConvertBoltLogRefusesTwoDifferentLogs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "raft")
	smallLog.write(t, dir)
	w, err := openWAL(mkdir(t, filepath.Join(dir, walDir)), quietHCLog)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.StoreLogs([]*raft.Log{smallLog.entry(1)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := openLogStore(dir, quietHCLog, quietLog); !errors.Is(err, ErrLogStoresDiffer) {
		t.Fatalf("opened two different logs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, boltLogFile)); err != nil {
		t.Fatalf("raft.db moved: %v", err)
	}
}

// TestServiceConvertsAnOldDataDirectory: the members of a cluster whose
// logs are in raft-boltdb form (as an earlier version left them) convert
// them at start and keep every key, the membership and the terms, and take
// new writes.
func TestServiceConvertsAnOldDataDirectory(t *testing.T) {
	base := t.TempDir()
	var svcs []*Service
	for i := range 3 {
		svcs = append(svcs, openSvc(t, filepath.Join(base, fmt.Sprint(i)), fmt.Sprintf("n%d", i)))
	}
	if err := svcs[0].Create(ctx(t), "test"); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, svcs[0])
	join(t, svcs[0], svcs[1])
	join(t, svcs[0], svcs[2])
	const keys = 50
	for i := range keys {
		if _, err := svcs[0].Apply(ctx(t), hive.Txn{Ops: []hive.Op{hive.SetValue(fmt.Sprintf("App/k%d", i), hive.Uint32Value("v", uint32(i)))}}); err != nil {
			t.Fatal(err)
		}
	}
	// Every member applies the last key before any stops: a follower that
	// has the entry but has not yet heard it committed applies it only once
	// a leader tells it, and with the leader stopped first there may be none.
	for _, s := range svcs {
		eventually(t, "replication", func() error {
			_, err := s.Hive().GetValue(fmt.Sprintf("App/k%d", keys-1), "v")
			return err
		})
	}
	terms := map[int]uint64{}
	for i, s := range svcs {
		s.Close()
		terms[i] = backToBoltLog(t, filepath.Join(base, fmt.Sprint(i), "raft"))
	}
	for i := range svcs {
		svcs[i] = openSvc(t, filepath.Join(base, fmt.Sprint(i)), fmt.Sprintf("n%d", i))
		raftDir := filepath.Join(base, fmt.Sprint(i), "raft")
		if _, err := os.Stat(filepath.Join(raftDir, boltLogFile+migratedSuffix)); err != nil {
			t.Fatalf("node %d: raft.db not converted and kept: %v", i, err)
		}
	}
	l := leaderOf(t, svcs...)
	if _, err := l.Apply(ctx(t), hive.Txn{Ops: []hive.Op{hive.SetValue("App/after", hive.Uint32Value("v", 1))}}); err != nil {
		t.Fatal(err)
	}
	for i, s := range svcs {
		eventually(t, "the new write everywhere", func() error {
			_, err := s.Hive().GetValue("App/after", "v")
			return err
		})
		for k := range keys {
			if v, err := s.Hive().GetValue(fmt.Sprintf("App/k%d", k), "v"); err != nil || v.Uint32 != uint32(k) {
				t.Fatalf("node %d key %d: %+v %v", i, k, v, err)
			}
		}
		if ms, err := s.Members(); err != nil || len(ms) != 3 {
			t.Fatalf("node %d members %+v: %v", i, ms, err)
		}
		r, err := s.currentRaft()
		if err != nil {
			t.Fatal(err)
		}
		if term := r.CurrentTerm(); term < terms[i] {
			t.Fatalf("node %d at term %d, before the conversion %d", i, term, terms[i])
		}
	}
}

// backToBoltLog rewrites the WAL in raftDir as the raft.db an earlier
// version kept, and returns its current term.
func backToBoltLog(t *testing.T, raftDir string) uint64 {
	t.Helper()
	w, err := openWAL(filepath.Join(raftDir, walDir), quietHCLog)
	if err != nil {
		t.Fatal(err)
	}
	b, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, boltLogFile)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := copyLog(b, w); err != nil {
		t.Fatal(err)
	}
	if err := checkSameLog(w, b); err != nil {
		t.Fatal(err)
	}
	term, err := b.GetUint64([]byte("CurrentTerm"))
	if err != nil || term == 0 {
		t.Fatalf("term %d: %v", term, err)
	}
	b.Close()
	w.Close()
	if err := os.RemoveAll(filepath.Join(raftDir, walDir)); err != nil {
		t.Fatal(err)
	}
	return term
}

// TestLogStoreReopensAfterItsTailWasTruncated: raft drops a log suffix
// when a new leader overrules it; the log opens again afterwards, with the
// entries before the cut and the ones appended after it, also across a
// segment sealed by the cut (raft-wal v0.4.0 could not: hashicorp/raft-wal#31).
func TestLogStoreReopensAfterItsTailWasTruncated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "raft")
	o := oldLog{from: 1, to: 400, size: 64 << 10}
	s, err := openLogStore(dir, quietHCLog, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	for i := o.from; i <= o.to; i++ {
		if err := s.StoreLogs([]*raft.Log{o.entry(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Cut back into the first segment (sealed by now), then append again.
	if err := s.DeleteRange(200, o.to); err != nil {
		t.Fatal(err)
	}
	for i := uint64(200); i <= o.to; i++ {
		if err := s.StoreLogs([]*raft.Log{o.entry(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteRange(o.to, o.to); err != nil {
		t.Fatal(err)
	}
	s.Close()
	o.to--
	s, err = openLogStore(dir, quietHCLog, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o.check(t, s)
}
