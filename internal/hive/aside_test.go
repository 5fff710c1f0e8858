package hive

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// MoveAside renames the file as it is (the copy holds every applied
// value, the pending group's too, and reads as any hive) and leaves an
// empty hive in its place.
func TestMoveAsideRenamesTheFileAndStartsEmpty(t *testing.T) {
	h, err := Open(filepath.Join(t.TempDir(), FileName), Options{CommitInterval: time.Hour, CommitEntries: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Update(Txn{Ops: []Op{SetValue("Apps/Web", Uint32Value("Port", 8080))}}); err != nil {
		t.Fatal(err)
	}
	// Applied, not yet committed: a group waits.
	if _, err := h.Apply([]Entry{{Index: 7, Txn: Txn{Ops: []Op{SetValue("Apps/Db", Uint32Value("Port", 5432))}}}}); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(h.Path())
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "aside", "x", FileName)
	if err := h.MoveAside(dst); err != nil {
		t.Fatal(err)
	}
	moved, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, moved) {
		t.Fatal("the hive was copied aside, not moved")
	}
	if _, err := h.Get("Apps/Web"); !errors.Is(err, ErrKeyNotFound) || h.Seq() != 0 {
		t.Fatalf("the hive in place is not empty: %v, seq %d", err, h.Seq())
	}
	if _, err := h.Update(Txn{Ops: []Op{SetValue("New", StringValue("v", "x"))}}); err != nil {
		t.Fatalf("write after moving aside: %v", err)
	}
	old, err := OpenReadOnly(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if v, err := old.GetValue("apps/web", "port"); err != nil || v.Uint32 != 8080 {
		t.Fatalf("the copy aside: %+v %v", v, err)
	}
	if v, err := old.GetValue("apps/db", "port"); err != nil || v.Uint32 != 5432 || old.Applied() != 7 {
		t.Fatalf("the copy aside lacks the pending group: %+v %v, applied %d", v, err, old.Applied())
	}
}
