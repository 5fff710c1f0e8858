package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/client"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// backup list of a directory that does not exist, or is not a directory,
// is an error naming it (a cron job notices an unmounted backup folder);
// an existing empty one is an empty list.
func TestBackupListOfAMissingTargetIsAnError(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o600)
	for _, target := range []string{filepath.Join(dir, "nonexistent-dir"), file} {
		for _, format := range [][]string{nil, {"--json"}} {
			out, errOut, code := cli(t, nil, append([]string{"backup", "list", target}, format...)...)
			if code == 0 || !strings.Contains(errOut, target) {
				t.Errorf("backup list %s %v: exit %d, stdout %q, stderr %q", target, format, code, out, errOut)
			}
		}
	}
	if out, errOut, code := cli(t, nil, "backup", "list", dir, "--json"); code != 0 || !strings.Contains(out, `"backups": []`) {
		t.Errorf("backup list of an empty directory: exit %d %s %s", code, out, errOut)
	}
}

// backup inspect (and verify) of the folder of sets says it is one and
// names its sets; backup create on a host with no node says which
// directory it looked at and how to name a cluster.
func TestBackupCommandsSayWhatTheyFound(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	to := filepath.Join(t.TempDir(), "backups")
	res, err := backup.Create(tc.Context(t), backup.Options{DataDir: nodes[0].Cfg.DataDir, To: to})
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"inspect", "verify"} {
		_, errOut, code := cli(t, nil, "backup", cmd, to)
		if code == 0 || !strings.Contains(errOut, "folder of backup sets") || !strings.Contains(errOut, res.Path) ||
			!strings.Contains(errOut, "backup list "+to) || strings.Contains(errOut, "incomplete") {
			t.Errorf("backup %s of the folder of sets: exit %d %s", cmd, code, errOut)
		}
	}

	empty := t.TempDir()
	_, errOut, code := cli(t, nil, "backup", "create", "--to", to, "--data-dir", empty)
	if code == 0 || !strings.Contains(errOut, empty) || !strings.Contains(errOut, "--cluster") || !strings.Contains(errOut, client.EnvCluster) {
		t.Errorf("backup create on a host with no node: exit %d %s", code, errOut)
	}
	out, errOut, code := cli(t, []string{client.EnvCluster + "=" + nodes[0].API()}, "backup", "create", "--to", to, "--data-dir", empty)
	if first, _, _ := strings.Cut(out, "\n"); code != 0 || !strings.Contains(first, "no node in data directory "+empty) || !strings.Contains(first, client.EnvCluster) {
		t.Errorf("backup create through %s: exit %d\n%s%s", client.EnvCluster, code, out, errOut)
	}
}
