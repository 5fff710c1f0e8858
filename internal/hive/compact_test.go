package hive

import (
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestValuesFillTheirPages: 1 KiB values, the common size of a
// configuration blob, written in order and interleaved across parents as a
// bulk load does, leave the values' pages mostly full. With bbolt's
// defaults (4 KiB pages, split at half) four such values never split and
// take two pages, and the file was twice the data.
func TestValuesFillTheirPages(t *testing.T) {
	for _, tc := range []struct {
		name    string
		key     func(i int) string
		minFill float64
	}{
		{"in order", func(i int) string { return fmt.Sprintf("Load/k%07d", i) }, 0.9},
		{"interleaved across parents", func(i int) string { return fmt.Sprintf("Load/%03d/k%07d", i%100, i) }, 0.65},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			h, err := Open(path, Options{NoSync: true, CommitInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			val := make([]byte, 1024)
			const n, batch = 6000, 250
			for k := 0; k < n; k += batch {
				var ops []Op
				for i := k; i < k+batch; i++ {
					ops = append(ops, SetValue(tc.key(i), BinaryValue("v", val)))
				}
				if _, err := h.Update(Txn{Ops: ops}); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.View(func(tx *bolt.Tx) error {
				st := tx.Bucket(bucketData).Stats()
				fill := float64(st.LeafInuse) / float64(st.LeafAlloc)
				t.Logf("values: %d bytes in use in %d allocated (%.0f%%), page size %d", st.LeafInuse, st.LeafAlloc, 100*fill, db.Info().PageSize)
				if fill < tc.minFill {
					t.Errorf("values' pages %.0f%% full, want at least %.0f%%", 100*fill, 100*tc.minFill)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
