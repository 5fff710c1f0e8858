package backupset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

func FuzzParseManifest(f *testing.F) {
	f.Add(sealed(&testing.T{}, func(*Manifest) {}))
	f.Add([]byte(`{"format_version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		// An accepted manifest seals to a form that is accepted again,
		// and names no file outside the set.
		again, err := m.Seal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(again); err != nil {
			t.Fatalf("resealed manifest refused: %v", err)
		}
		for _, f := range m.Files {
			for _, part := range strings.Split(f.StoredName(), "/") {
				if part == ".." || part == "" || part == "." {
					t.Fatalf("unsafe name accepted: %q", f.Name)
				}
			}
			if !strings.HasPrefix(f.Source, "/") && f.Source != "" {
				t.Fatalf("relative source accepted: %q", f.Source)
			}
		}
	})
}

// FuzzSetReader feeds arbitrary manifests (resealed when they decode, as a
// forger would) and file contents through Open, Unlock, Verify, VerifyStored
// and Extract: nothing panics, nothing is written outside the set's own
// temporary files, and whatever is extracted is what the manifest says.
func FuzzSetReader(f *testing.F) {
	for _, v := range []struct {
		compress, encrypt bool
	}{{false, false}, {true, false}, {false, true}, {true, true}} {
		var rs []age.Recipient
		if v.encrypt {
			rs = []age.Recipient{identity(f).Recipient()}
		}
		dir := writeSet(f, f.TempDir(), v.compress, rs, map[string][]byte{"writers/x/c/f": []byte("some content, some content")})
		raw, err := os.ReadFile(filepath.Join(dir, ManifestName))
		if err != nil {
			f.Fatal(err)
		}
		s, err := Open(dir)
		if err != nil {
			f.Fatal(err)
		}
		stored, err := os.ReadFile(filepath.Join(dir, s.Manifest.Files[0].StoredName()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, stored)
	}
	f.Fuzz(func(t *testing.T, manifest, content []byte) {
		root := t.TempDir()
		dir, outside := filepath.Join(root, "set"), filepath.Join(root, "outside")
		for _, d := range []string{filepath.Join(dir, DataDir), outside} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		var loose Manifest
		if json.Unmarshal(manifest, &loose) == nil {
			if again, err := loose.Seal(); err == nil {
				manifest = again
			}
		}
		if err := os.WriteFile(filepath.Join(dir, ManifestName), manifest, 0o600); err != nil {
			t.Fatal(err)
		}
		if m, err := ParseManifest(manifest); err == nil {
			for _, file := range m.Files {
				p := filepath.Join(dir, filepath.FromSlash(file.StoredName()))
				if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
					t.Fatalf("accepted name %q leaves the set", file.Name)
				}
				os.MkdirAll(filepath.Dir(p), 0o700)
				os.WriteFile(p, content, 0o600)
			}
		}
		s, err := Open(dir)
		if err != nil {
			return
		}
		s.Unlock([]age.Identity{identity(t)})
		s.Verify(nil)
		for _, file := range s.Manifest.Files {
			s.VerifyStored(file, nil)
			p, cleanup, err := s.Extract(file, nil)
			if err != nil {
				continue
			}
			got, rerr := os.ReadFile(p)
			cleanup()
			if rerr != nil || int64(len(got)) != file.Size {
				t.Fatalf("extracted %d bytes of %q, the manifest says %d (%v)", len(got), file.Name, file.Size, rerr)
			}
			if file.Encryption == "" {
				if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != file.SHA256 {
					t.Fatalf("extracted %q fails its SHA-256", file.Name)
				}
			}
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 0 {
			t.Fatalf("written outside the set: %v", entries)
		}
		if entries, _ := os.ReadDir(root); len(entries) != 2 {
			t.Fatalf("written beside the set: %v", entries)
		}
	})
}
