package shadow

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestProvidersCaptureExactCopies(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	data := bytes.Repeat([]byte("clusterkeep"), 100000)
	os.WriteFile(src, data, 0o600)
	for _, p := range []Provider{CopyProvider{}, ReflinkProvider{}} {
		dst := filepath.Join(dir, p.Name(), "dst")
		n, method, err := p.Capture(src, dst)
		if err != nil {
			t.Fatalf("%s: %v", p.Name(), err)
		}
		got, _ := os.ReadFile(dst)
		if n != int64(len(data)) || !bytes.Equal(got, data) {
			t.Fatalf("%s (%s): copy differs", p.Name(), method)
		}
		if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v", p.Name(), fi.Mode())
		}
		// The copy is independent of the original.
		os.WriteFile(src, []byte("changed"), 0o600)
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
			t.Fatalf("%s: copy changed with the original", p.Name())
		}
		os.WriteFile(src, data, 0o600)
		t.Logf("%s captured by %s", p.Name(), method)
	}
	if _, _, err := (CopyProvider{}).Capture(dir, filepath.Join(dir, "x")); err == nil {
		t.Fatal("captured a directory")
	}
	if _, _, err := (CopyProvider{}).Capture(filepath.Join(dir, "missing"), filepath.Join(dir, "y")); err == nil {
		t.Fatal("captured a missing file")
	}
}
