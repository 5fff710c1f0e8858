package hive

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestPositionOutlivedByAnEarlierVersionIsUnknown: a binary that knows no
// position advances the applied index alone; the term and configuration
// kept before then describe an earlier entry, so the hive says it does not
// know where it stands, and forgets the configuration until the next
// configuration entry.
func TestPositionOutlivedByAnEarlierVersionIsUnknown(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	h, err := Open(path, Options{CommitInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Apply([]Entry{{Index: 5, Term: 2, Mark: true, Config: []byte("c5")}, {Index: 6, Term: 2, Mark: true}}); err != nil {
		t.Fatal(err)
	}
	if p := h.Position(); p.Index != 6 || p.Term != 2 || string(p.Config) != "c5" || p.ConfigIndex != 5 {
		t.Fatalf("position %+v", p)
	}
	h.Close()

	// What an earlier version does: the applied index, nothing else.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyApplied, u64(9)) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	h, err = Open(path, Options{CommitInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if p := h.Position(); p.Index != 9 || p.Term != 0 || p.Config != nil {
		t.Fatalf("position after an earlier version applied more: %+v, want index 9 and nothing else", p)
	}
	if _, err := h.Apply([]Entry{{Index: 10, Term: 3, Mark: true}}); err != nil {
		t.Fatal(err)
	}
	if p := h.Position(); p.Index != 10 || p.Term != 3 || p.Config != nil {
		t.Fatalf("position %+v: the configuration of before must stay forgotten", p)
	}
	if _, err := h.Apply([]Entry{{Index: 11, Term: 3, Mark: true, Config: []byte("c11")}}); err != nil {
		t.Fatal(err)
	}
	if p := h.Position(); p.Index != 11 || string(p.Config) != "c11" || p.ConfigIndex != 11 {
		t.Fatalf("position %+v", p)
	}
}
