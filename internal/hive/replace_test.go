package hive

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplaceFileRenamesTheFileIn: a whole hive file on the hive's file
// system takes the hive's place without a copy (it is gone from where it
// was), and a damaged one is refused, left where it was, the hive unchanged.
func TestReplaceFileRenamesTheFileIn(t *testing.T) {
	src := openTemp(t)
	mustUpdate(t, src, SetValue("a", Uint64Value("n", 7)))
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	h := openTemp(t)
	mustUpdate(t, h, SetValue("a", Uint64Value("n", 1)))
	file := filepath.Join(filepath.Dir(h.Path()), "state.bin")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snap.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	snap.Close()
	f.Close()

	// bbolt keeps no checksum of its pages (raft's store checks the
	// snapshot's own as it opens it): the check here is that the file
	// opens as a whole hive. Cut short anywhere, or not a hive, it is
	// refused.
	b, _ := os.ReadFile(file)
	for name, content := range map[string][]byte{
		"cut after its first page": b[:pageSize+100],
		"cut before its last page": b[:len(b)-pageSize],
		"not a hive":               bytes.Repeat([]byte{0xAB}, len(b)),
	} {
		damaged := filepath.Join(filepath.Dir(h.Path()), "damaged.bin")
		if err := os.WriteFile(damaged, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := h.ReplaceFile(damaged); err == nil {
			t.Fatalf("a file %s replaced the hive", name)
		}
		if _, err := os.Stat(damaged); err != nil {
			t.Fatalf("the refused file (%s) is gone: %v", name, err)
		}
		if v, _ := h.GetValue("a", "n"); v.Uint64 != 1 {
			t.Fatalf("a refused replacement (%s) changed the hive: n=%d", name, v.Uint64)
		}
	}

	if err := h.ReplaceFile(file); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("the file was copied, not renamed in: %v", err)
	}
	if v, _ := h.GetValue("a", "n"); v.Uint64 != 7 {
		t.Fatalf("the hive holds n=%d after the replace, want 7", v.Uint64)
	}
	if fi, _ := os.Stat(h.Path()); fi.Mode().Perm() != 0o600 {
		t.Fatalf("the hive file is %v, want 0600", fi.Mode().Perm())
	}
	if err := h.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestAFileCutShortIsRefusedAtOpen: a hive file shorter than the pages its
// meta page counts (cut short while its node was down) is refused by
// every open, read-write or read-only, with ErrCorrupt, instead of the
// process dying of SIGBUS when bbolt reads past the file's end.
func TestAFileCutShortIsRefusedAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	h, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 64 {
		mustUpdate(t, h, SetValue(fmt.Sprintf("k%d", i), BinaryValue("v", bytes.Repeat([]byte{byte(i)}, 64<<10))))
	}
	snap, err := h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	used := snap.Size()
	snap.Close()
	h.Close()
	if err := os.Truncate(path, used/3); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "cut short") {
		t.Fatalf("read-write open of a file cut short: %v, want %v", err, ErrCorrupt)
	}
	if _, err := OpenReadOnly(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read-only open of a file cut short: %v, want %v", err, ErrCorrupt)
	}
}
