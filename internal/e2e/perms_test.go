package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/security"
)

// checkPrivate fails the test for every file or folder below dir that its
// group or others may read, write or enter.
func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v: cluster data must be its owner's only", path, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
}

// An agent started under a loose umask, on a data directory an earlier
// version left readable (a folder 0755, a file 0644), keeps every file
// and folder of it its own; the commands of its resources still get the
// umask the agent was started with.
func TestDataDirectoryIsPrivateWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	base := t.TempDir()
	dir := filepath.Join(base, "n1")
	if err := os.MkdirAll(filepath.Join(dir, "raft", "snapshots", "1-2-3"), 0o755); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, "raft", "snapshots", "1-2-3", "state.bin")
	if err := os.WriteFile(left, []byte("left by an earlier version"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "raft"), filepath.Join(dir, "raft", "snapshots"), filepath.Join(dir, "raft", "snapshots", "1-2-3")} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n1 := startSecure(t, base, "n1", "--create", "perms")
	waitFile(t, n1.file(cluster.AdminTokenFile))
	admin := []string{"--cluster", n1.api, "--ca", n1.file(security.Dir, security.CAFile), "--token-file", n1.file(cluster.AdminTokenFile)}

	// A resource's command creates its files with the agent's first umask.
	out := filepath.Join(base, "umask")
	argv, _ := json.Marshal([]string{"/bin/sh", "-c", "umask > " + out + ".tmp && mv " + out + ".tmp " + out + " && exec sleep 1000"})
	for _, args := range [][]string{
		{"resource", "add", "u", "--start", string(argv)},
		{"group", "create", "g", "--resources", "u"},
		{"group", "online", "g", "--wait"},
	} {
		if _, errOut, code := cliAs(t, append(admin, args...)...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	waitFile(t, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "0022" {
		t.Errorf("the resource's command ran with umask %s, want the agent's first, 0022", got)
	}
	if _, errOut, code := cliAs(t, append(admin, "group", "offline", "g", "--wait")...); code != 0 {
		t.Fatalf("group offline: %s", errOut)
	}
	checkPrivate(t, dir)
}
