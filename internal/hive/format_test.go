package hive

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// testdata/format2.clusdb was written by the last build of format 2 (a
// bucket per key): keys in mixed case at several depths, a sibling whose
// name extends another's (Web, Web!), values of every type, one on the
// root, a deleted subtree and a consensus position.
const format2File = "testdata/format2.clusdb"

// copyFormat2 copies the format 2 file where a test may change it.
func copyFormat2(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(format2File)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// dump is everything a walk of the hive reads, one line per key, with the
// sequence number and the consensus position.
func dump(t *testing.T, h *Hive) string {
	t.Helper()
	var b strings.Builder
	err := h.View(func(r *Reader) error {
		fmt.Fprintf(&b, "seq %d position %+v\n", r.Seq(), r.Position())
		return r.Walk(Path{}, func(k Key) error {
			fmt.Fprintf(&b, "%q name %q change %d subkeys %q\n", k.Path, k.Name, k.Change, k.Subkeys)
			for _, v := range k.Values {
				fmt.Fprintf(&b, "  %+v\n", v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func formatOf(t *testing.T, path string) uint64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v uint64
	db.View(func(tx *bolt.Tx) error { v = getU64(tx.Bucket(bucketMeta).Get(keyFormat)); return nil })
	return v
}

// TestFormat2IsReadAsItIsAndConvertedByAWritableOpen: a hive of the
// previous format (an aside copy, a backup set, a node not yet upgraded)
// reads the same through a read-only open, which leaves the file alone,
// and through the flat key index a writable open converts it to, which
// then takes changes like any new hive.
func TestFormat2IsReadAsItIsAndConvertedByAWritableOpen(t *testing.T) {
	t.Run("in one transaction", testFormat2Conversion)
	// A large hive is converted a batch of values per transaction.
	t.Run("a transaction per key", func(t *testing.T) {
		defer func(b int) { convertBatch = b }(convertBatch)
		convertBatch = 1
		testFormat2Conversion(t)
	})
}

func testFormat2Conversion(t *testing.T) {
	path := copyFormat2(t)
	before, _ := os.ReadFile(path)
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.Check(); err != nil {
		t.Fatalf("check of the format 2 file: %v", err)
	}
	old := dump(t, ro)
	ro.Close()
	for _, want := range []string{
		`"" name "" change 43 subkeys ["Apps" "Load"]`,
		`"Apps/Back\\slash" name "Back\\slash"`,
		`{Name:RootName Type:string String:root value`,
		`"Apps/Web" name "Web" change 2 subkeys ["Pool"]`,
		`"Apps/Web!" name "Web!"`,
		`{Name:Blob Type:binary String: Strings:[] Uint32:0 Uint64:0 Binary:[0 1 2 255]}`,
		`"Load/03/K039" name "K039"`,
		`Index:7 Term:3 Config:[99 102 103] ConfigIndex:7`,
	} {
		if !strings.Contains(old, want) {
			t.Errorf("the format 2 file read without %s:\n%s", want, old)
		}
	}
	if strings.Contains(old, "Gone") {
		t.Errorf("a deleted key is read:\n%s", old)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("a read-only open changed the file")
	}

	var logged strings.Builder
	h, err := Open(path, Options{CommitInterval: -1, Log: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged.String(), "converting the hive") || !strings.Contains(logged.String(), "converted the hive") {
		t.Errorf("the conversion was not logged: %q", logged.String())
	}
	if got := dump(t, h); got != old {
		t.Fatalf("converted hive reads differently:\n--- format 2\n%s--- converted\n%s", old, got)
	}
	if _, err := h.Update(Txn{Ops: []Op{SetValue(`apps/WEB/pool/New`, StringValue("v", "x")), DeleteKey(`Apps/Web!`)}}); err != nil {
		t.Fatal(err)
	}
	if err := h.Check(); err != nil {
		t.Fatal(err)
	}
	k, err := h.Get(`Apps/Web/Pool/New`)
	if err != nil || k.Path != `Apps/Web/Pool/New` {
		t.Fatalf("new key under converted ones: %+v, %v (want the stored case of its parents)", k, err)
	}
	if _, err := h.Get(`Apps/Web!/X`); err == nil {
		t.Fatal(`Apps/Web!/X outlived the deletion of its parent`)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if v := formatOf(t, path); v != formatVersion {
		t.Fatalf("format after a writable open: %d, want %d", v, formatVersion)
	}
	if err := CheckFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".converting"); err == nil {
		t.Fatal("the conversion's file was left behind")
	}
}

// TestCheckFindsAValueOfNoKey: a value whose key number no key holds is
// damage a walk alone would never meet.
func TestCheckFindsAValueOfNoKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	h, err := Open(path, Options{CommitInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Update(Txn{Ops: []Op{SetValue(`A/B`, StringValue("v", "x"))}}); err != nil {
		t.Fatal(err)
	}
	h.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketData).Put(dataID(99, "stray"), StringValue("stray", "y").encode())
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := CheckFile(path); err == nil || !strings.Contains(err.Error(), "belong to a key") {
		t.Fatalf("check of a hive with a value of no key: %v", err)
	}
}

// TestSubkeysSkipTheirDescendants: a key's subkeys are its children only,
// in case-insensitive order, however deep and wide the tree below them,
// and a walk meets parents before children.
func TestSubkeysSkipTheirDescendants(t *testing.T) {
	h, err := Open(filepath.Join(t.TempDir(), FileName), Options{CommitInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var ops []Op
	for _, k := range []string{`P/b/x/y/z`, `P/B!`, `P/a`, `P/b/w`, `P/c`, `P/b x`, `P/b\q`, `Q`} {
		ops = append(ops, CreateKey(k))
	}
	if _, err := h.Update(Txn{Ops: ops}); err != nil {
		t.Fatal(err)
	}
	k, err := h.Get("P")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(k.Subkeys, ","), `a,b,b x,B!,b\q,c`; got != want {
		t.Fatalf("subkeys of P: %s, want %s", got, want)
	}
	var walked []string
	h.View(func(r *Reader) error {
		return r.Walk(MustPath("P"), func(k Key) error { walked = append(walked, k.Path); return nil })
	})
	if got, want := strings.Join(walked, ","), `P,P/a,P/b,P/b/w,P/b/x,P/b/x/y,P/b/x/y/z,P/b x,P/B!,P/b\q,P/c`; got != want {
		t.Fatalf("walk of P: %s\nwant %s", got, want)
	}
}
