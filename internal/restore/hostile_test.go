package restore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/agent"
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/restore"
	"github.com/clusterkeep/clusterkeep/internal/staging"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/writers"
)

// copySet copies a backup set and, if edit is given, rewrites its manifest
// with a valid checksum, as someone who can write the backup could.
func copySet(t *testing.T, src string, edit func(m *backupset.Manifest)) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return dst
	}
	raw, err := os.ReadFile(filepath.Join(dst, backupset.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	m, err := backupset.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	if raw, err = m.Seal(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, backupset.ManifestName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// appFile is the entry of the application file from source in m.
func appFile(t *testing.T, m *backupset.Manifest, source string) *backupset.File {
	t.Helper()
	for i := range m.Files {
		if m.Files[i].Source == source {
			return &m.Files[i]
		}
	}
	t.Fatalf("no file from %s in the backup", source)
	return nil
}

// snapshot is every path below root with its content or link target.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[p] = "-> " + l
		case d.Type().IsRegular():
			b, _ := os.ReadFile(p)
			out[p] = string(b)
		default:
			out[p] = "dir"
		}
		return nil
	})
	return out
}

func sameTree(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, v := range after {
		if before[p] != v {
			t.Errorf("%s: %s is %q, was %q", what, p, v, before[p])
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s: %s is gone", what, p)
		}
	}
}

// Hostile backup sets, their manifests rewritten and resealed with a valid
// checksum, and hostile targets: nothing is ever written outside where a
// file belongs, and a refused restore changes nothing.
func TestHostileSetsWriteNothingOutside(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	appDir, oneDir, altDir, outside := filepath.Join(dir, "app"), filepath.Join(dir, "one"), filepath.Join(dir, "alt"), filepath.Join(dir, "outside")
	for _, d := range []string{appDir, oneDir, altDir, outside} {
		os.MkdirAll(d, 0o700)
	}
	good, one, alt := filepath.Join(appDir, "good.dat"), filepath.Join(oneDir, "one.dat"), filepath.Join(altDir, "a.dat")
	os.WriteFile(good, []byte("v1"), 0o600)
	os.WriteFile(one, []byte("o1"), 0o600)
	os.WriteFile(alt, []byte("a1"), 0o600)
	os.WriteFile(filepath.Join(outside, "victim"), []byte("untouched"), 0o600)
	nodes := tc.InProcessWith(t, 1, func(i int, cfg *agent.Config) {
		cfg.Writers = []writers.ExecConfig{
			{Name: "app", Paths: []string{appDir}, RestoreMethod: "RESTORE_IF_CAN_REPLACE"},
			// A path that is a file is owned even when it is reached through a link.
			{Name: "one", Paths: []string{one}, RestoreMethod: "RESTORE_IF_CAN_REPLACE"},
			{Name: "alt", Paths: []string{alt}, RestoreMethod: "RESTORE_TO_ALTERNATE_LOCATION"},
		}
	})
	dataDir := nodes[0].Cfg.DataDir
	ctx := tc.Context(t)
	res, err := backup.Create(ctx, backup.Options{DataDir: dataDir, To: filepath.Join(dir, "backups")})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(good, []byte("v2"), 0o600)

	// refused runs a restore that must fail with want and change nothing
	// in dir or the data directory.
	refused := func(t *testing.T, set string, want error, wantText string) {
		t.Helper()
		before, beforeData := snapshot(t, dir), snapshot(t, dataDir)
		_, err := restore.Run(ctx, restore.Options{Path: set, DataDir: dataDir})
		if err == nil || (want != nil && !errors.Is(err, want)) || !strings.Contains(err.Error(), wantText) {
			t.Fatalf("got %v, want %v (%q)", err, want, wantText)
		}
		if !strings.Contains(err.Error(), "nothing was changed") {
			t.Errorf("the error does not say nothing changed: %v", err)
		}
		if p, _ := staging.Pending(dataDir); p != nil {
			t.Fatal("a refused restore was staged")
		}
		sameTree(t, "target", before, snapshot(t, dir))
		sameTree(t, "data directory", beforeData, snapshot(t, dataDir))
	}

	t.Run("names and sources that leave their place are refused by the manifest parser", func(t *testing.T) {
		for name, edit := range map[string]func(m *backupset.Manifest){
			"name with ..":      func(m *backupset.Manifest) { appFile(t, m, alt).Name = "../../../outside/evil" },
			"absolute name":     func(m *backupset.Manifest) { appFile(t, m, alt).Name = filepath.Join(outside, "evil") },
			"relative source":   func(m *backupset.Manifest) { appFile(t, m, good).Source = "app/../outside/victim" },
			"unclean source":    func(m *backupset.Manifest) { appFile(t, m, good).Source = appDir + "/../outside/victim" },
			"writer id as path": func(m *backupset.Manifest) { appFile(t, m, alt).WriterID = "../../outside" },
		} {
			t.Run(name, func(t *testing.T) {
				refused(t, copySet(t, res.Path, edit), backupset.ErrCorrupt, "")
			})
		}
	})
	t.Run("a link stored in the set is refused", func(t *testing.T) {
		set := copySet(t, res.Path, nil)
		s, _ := backupset.Open(set)
		f := appFile(t, s.Manifest, good)
		p := filepath.Join(set, f.StoredName())
		// The link points at a file of the very content.
		os.WriteFile(filepath.Join(outside, "same"), []byte("v1"), 0o600)
		os.Remove(p)
		os.Symlink(filepath.Join(outside, "same"), p)
		refused(t, set, backupset.ErrCorrupt, "not a regular file")
		os.Remove(filepath.Join(outside, "same"))
	})
	t.Run("a link in the target's path is refused", func(t *testing.T) {
		// The file's directory is now a link to elsewhere: the writer
		// still owns the path, but the restore would write through it.
		elsewhere := filepath.Join(outside, "elsewhere")
		os.Mkdir(elsewhere, 0o700)
		os.WriteFile(filepath.Join(elsewhere, "one.dat"), []byte("elsewhere"), 0o600)
		os.Rename(oneDir, oneDir+".real")
		os.Symlink(elsewhere, oneDir)
		defer func() {
			os.Remove(oneDir)
			os.Rename(oneDir+".real", oneDir)
			os.RemoveAll(elsewhere)
		}()
		refused(t, res.Path, restore.ErrUnsafePath, oneDir+" is a symbolic link")
	})
	t.Run("a target that is a link is refused", func(t *testing.T) {
		os.Rename(one, one+".real")
		os.Symlink(filepath.Join(outside, "victim"), one)
		defer func() { os.Remove(one); os.Rename(one+".real", one) }()
		refused(t, res.Path, restore.ErrUnsafePath, one+" is a symbolic link")
	})
	t.Run("a link in the alternate location is refused", func(t *testing.T) {
		s, err := backupset.Open(res.Path)
		if err != nil {
			t.Fatal(err)
		}
		files := filepath.Join(dataDir, "restore-files")
		os.MkdirAll(files, 0o700)
		os.Symlink(outside, filepath.Join(files, appFile(t, s.Manifest, alt).WriterID))
		defer os.RemoveAll(files)
		refused(t, res.Path, restore.ErrUnsafePath, "symbolic link")
	})
	t.Run("a source no writer owns is not written", func(t *testing.T) {
		evil := filepath.Join(outside, "evil")
		set := copySet(t, res.Path, func(m *backupset.Manifest) { appFile(t, m, good).Source = evil })
		out, err := restore.Run(ctx, restore.Options{Path: set, DataDir: dataDir})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(evil); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s was written", evil)
		}
		if !strings.Contains(out.Note, evil+" was not restored") {
			t.Fatalf("note: %q", out.Note)
		}
		if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "untouched" {
			t.Fatalf("victim: %q", b)
		}
		// The alternate-location file went below the data directory.
		var placed bool
		for _, f := range out.AppFiles {
			if !strings.HasPrefix(f.Target, filepath.Join(dataDir, "restore-files")+"/") && f.Target != one {
				t.Fatalf("a file went to %s", f.Target)
			}
			placed = placed || strings.HasPrefix(f.Target, dataDir)
		}
		if !placed {
			t.Fatalf("the alternate-location file was not placed: %+v", out.AppFiles)
		}
	})
	t.Run("the untouched set restores", func(t *testing.T) {
		if _, err := restore.Run(ctx, restore.Options{Path: res.Path, DataDir: dataDir}); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(good); string(b) != "v1" {
			t.Fatalf("good.dat: %q", b)
		}
		fi, _ := os.Stat(good)
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("restored file mode %v", fi.Mode().Perm())
		}
	})
}
