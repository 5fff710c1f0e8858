package offline_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/backupset/offline"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// create takes a backup of a running cluster, the set to verify.
func create(t *testing.T, o backup.Options) *backup.Result {
	t.Helper()
	res, err := backup.Create(tc.Context(t), o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestVerifyCatchesEveryCorruption(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	c.SetValue(ctx, "Apps/Web", wire.StringValue("Name", strings.Repeat("web", 1000)))
	for _, compress := range []bool{false, true} {
		res := create(t, backup.Options{DataDir: t.TempDir(), Cluster: []string{nodes[0].API()}, To: t.TempDir(), Compress: compress})
		if _, err := offline.Verify(res.Path, nil); err != nil {
			t.Fatal(err)
		}
		s, _ := backupset.Open(res.Path)
		db := filepath.Join(res.Path, filepath.FromSlash(s.Manifest.Files[0].StoredName()))
		reg := filepath.Join(res.Path, filepath.FromSlash(s.Manifest.Files[1].StoredName()))
		manifest := filepath.Join(res.Path, backupset.ManifestName)
		cases := map[string]func(string){
			"flipped byte in the database": func(dir string) { flip(t, rebase(db, res.Path, dir), 4096+100) },
			"flipped byte in the registry": func(dir string) { flip(t, rebase(reg, res.Path, dir), 50) },
			"truncated database":           func(dir string) { truncate(t, rebase(db, res.Path, dir)) },
			"missing registry":             func(dir string) { os.Remove(rebase(reg, res.Path, dir)) },
			"extra file":                   func(dir string) { os.WriteFile(filepath.Join(dir, "data", "extra"), []byte("x"), 0o600) },
			"edited manifest": func(dir string) {
				p := rebase(manifest, res.Path, dir)
				b, _ := os.ReadFile(p)
				os.WriteFile(p, []byte(strings.Replace(string(b), `"hive_seq": `, `"hive_seq": 1`, 1)), 0o600)
			},
			"flipped byte in the manifest": func(dir string) { flip(t, rebase(manifest, res.Path, dir), 30) },
			"missing manifest":             func(dir string) { os.Remove(rebase(manifest, res.Path, dir)) },
		}
		for name, corrupt := range cases {
			dir := filepath.Join(t.TempDir(), "set")
			copyDir(t, res.Path, dir)
			corrupt(dir)
			if _, err := offline.Verify(dir, nil); err == nil {
				t.Errorf("compress=%v: %s passed verify", compress, name)
			} else {
				t.Logf("compress=%v: %s: %v", compress, name, err)
			}
			// A restore's single pass catches it too, leaving nothing
			// where it was writing.
			for _, deep := range []bool{false, true} {
				out := t.TempDir()
				if s, err := backupset.Open(dir); err == nil {
					if _, err := offline.VerifyInto(s, out, deep, nil); err == nil {
						t.Errorf("compress=%v deep=%v: %s passed the restore's pass", compress, deep, name)
					}
				}
				if left, _ := os.ReadDir(out); len(left) > 0 {
					t.Errorf("compress=%v deep=%v: %s: left %v", compress, deep, name, left)
				}
			}
		}
		// An intact set comes out whole, byte for byte the set's database.
		for _, deep := range []bool{false, true} {
			s, err := backupset.Open(res.Path)
			if err != nil {
				t.Fatal(err)
			}
			ex, err := offline.VerifyInto(s, t.TempDir(), deep, nil)
			if err != nil {
				t.Fatalf("compress=%v deep=%v: %v", compress, deep, err)
			}
			got, _ := os.ReadFile(ex.Database)
			r, _ := s.Open(s.Manifest.Files[0])
			want, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, want) || ex.Registry == "" {
				t.Fatalf("compress=%v deep=%v: the database written differs from the set's (%v), registry %q", compress, deep, err, ex.Registry)
			}
		}
	}
}

func rebase(p, from, to string) string { return filepath.Join(to, strings.TrimPrefix(p, from)) }

func flip(t *testing.T, p string, at int64) {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	at = min(at, fi.Size()-1)
	b := make([]byte, 1)
	f.ReadAt(b, at)
	b[0] ^= 0x40
	f.WriteAt(b, at)
}

func truncate(t *testing.T, p string) {
	fi, _ := os.Stat(p)
	os.Truncate(p, fi.Size()/2)
}

func copyDir(t *testing.T, from, to string) {
	filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		dst := rebase(p, from, to)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, _ := os.ReadFile(p)
		return os.WriteFile(dst, b, 0o600)
	})
}
