package backend

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestDirObjectsComeOutByteForByte: files of every shape of size (empty,
// under a block, whole blocks, whole buffers, and ragged tails), written in
// ragged pieces, read back exactly; with direct I/O where the file system
// has it and through the page cache where it has not.
func TestDirObjectsComeOutByteForByte(t *testing.T) {
	sizes := []int{0, 1, directBlock - 1, directBlock, directBlock + 1, directChunk, directChunk + 3, 3*directChunk + directBlock*5 + 17}
	for _, where := range []string{"direct I/O", "page cache"} {
		t.Run(where, func(t *testing.T) {
			pageCacheOnly = where == "page cache"
			defer func() { pageCacheOnly = false }()
			w, err := NewDir(t.TempDir()).Begin(context.Background(), "set")
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]byte{}
			direct := 0
			for i, size := range sizes {
				data := make([]byte, size)
				rng := rand.New(rand.NewPCG(uint64(i), 7))
				for j := range data {
					data[j] = byte(rng.Uint32())
				}
				name := filepath.Join("f", string(rune('a'+i)))
				o, err := w.Create(name)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := o.(*directObject); ok {
					direct++
				}
				for rest := data; len(rest) > 0; {
					n := min(len(rest), 1+rng.IntN(200000))
					if k, err := o.Write(rest[:n]); err != nil || k != n {
						t.Fatalf("write %d of %d: %d, %v", n, size, k, err)
					}
					rest = rest[n:]
				}
				if err := o.Commit(); err != nil {
					t.Fatalf("commit %d bytes: %v", size, err)
				}
				want[name] = data
			}
			if err := w.Commit([]byte("{}")); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d of %d files written with direct I/O", where, direct, len(sizes))
			if wantDirect := len(sizes); pageCacheOnly {
				if direct != 0 {
					t.Fatalf("%d files written with direct I/O, want none", direct)
				}
			} else if direct != wantDirect {
				t.Logf("this file system refuses O_DIRECT: only the page cache path ran")
			}
			for name, data := range want {
				got, err := os.ReadFile(filepath.Join(w.Location(), name))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("%s: %d bytes read back, %d written, or they differ", name, len(got), len(data))
				}
			}
		})
	}
}
