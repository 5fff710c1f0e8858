package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestBeneathFollowsNoLink(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(root, "a", "b"), 0o700)
	os.WriteFile(filepath.Join(root, "a", "b", "f"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(outside, "f"), []byte("secret"), 0o600)
	os.Symlink(outside, filepath.Join(root, "a", "link"))
	os.Symlink(filepath.Join(outside, "f"), filepath.Join(root, "a", "b", "flink"))

	f, err := OpenBeneath(root, "a/b/f")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, rel := range []string{"a/link/f", "a/b/flink"} {
		if _, err := OpenBeneath(root, rel); !errors.Is(err, ErrLink) {
			t.Errorf("%s: %v", rel, err)
		}
	}
	for _, rel := range []string{"../x", "/etc/passwd", "a/../a/b/f", "a//b/f", ""} {
		if _, err := OpenBeneath(root, rel); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%q: %v", rel, err)
		}
	}
	if _, err := OpenDirBeneath(root, "a/link/new", true); !errors.Is(err, ErrLink) {
		t.Errorf("create through a link: %v", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("created outside: %v", entries)
	}
	d, err := OpenDirBeneath(root, "a/new/deeper", true)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if fi, err := os.Stat(filepath.Join(root, "a", "new", "deeper")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("made: %v %v", fi, err)
	}
}
