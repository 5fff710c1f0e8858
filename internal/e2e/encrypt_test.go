package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// backupCLI runs `clusterkeep backup ARGS --json` against the cluster and
// returns its JSON result, stderr and exit code.
func backupCLI(t *testing.T, lc *localcluster.Cluster, args ...string) (map[string]any, string, int) {
	t.Helper()
	out, errOut, code := cli(t, []string{client.EnvCluster + "=" + lc.APIAddrs()}, append(append([]string{"backup"}, args...), "--json")...)
	var m map[string]any
	json.Unmarshal([]byte(out), &m)
	return m, errOut, code
}

// keyFile writes an age identity file as age-keygen would.
func keyFile(t *testing.T, dir, name string, id *age.X25519Identity) string {
	t.Helper()
	p := filepath.Join(dir, name)
	text := "# public key: " + id.Recipient().String() + "\n" + id.String() + "\n"
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// An encrypted backup from a real cluster through the CLI: its files keep
// no plaintext, it verifies without an identity (the ciphertext) and with
// one (the contents), and it restores a wiped node only with the right
// identity and only untampered.
func TestEncryptedBackupAndRestoreThroughTheCLI(t *testing.T) {
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	ctx := tc.Context(t)
	const marker = "plaintext-marker-7f3a"
	if _, err := c.SetValue(ctx, "Apps/Secret", wire.StringValue("Password", marker)); err != nil {
		t.Fatal(err)
	}
	set(t, c, "A", "v", 1)

	keys := t.TempDir()
	id, _ := age.GenerateX25519Identity()
	other, _ := age.GenerateX25519Identity()
	stranger, _ := age.GenerateX25519Identity()
	idFile, strangerFile := keyFile(t, keys, "key.txt", id), keyFile(t, keys, "stranger.txt", stranger)
	recipients := filepath.Join(keys, "recipients.txt")
	os.WriteFile(recipients, []byte("# the backup team\n"+other.Recipient().String()+"\n"), 0o600)

	// A bad recipient is a usage error, and nothing is written.
	to := filepath.Join(lc.Dir, "backups")
	if _, errOut, code := backupCLI(t, lc, "create", "--to", to, "--data-dir", t.TempDir(), "--recipient", "age1notakey"); code != 2 || !strings.Contains(errOut, "age1notake") {
		t.Fatalf("bad recipient: exit %d %s", code, errOut)
	}
	if entries, _ := os.ReadDir(to); len(entries) != 0 {
		t.Fatalf("a refused backup wrote %v", entries)
	}
	res, errOut, code := backupCLI(t, lc, "create", "--to", to, "--data-dir", t.TempDir(), "--node", "node3",
		"--recipient", id.Recipient().String(), "--recipients-file", recipients, "--compress")
	if code != 0 || res["encrypted"] != true || len(res["recipients"].([]any)) != 2 {
		t.Fatalf("backup create: %v %s", res, errOut)
	}
	path := res["path"].(string)
	filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), marker) {
			t.Errorf("%s holds the plaintext", p)
		}
		if fi, _ := d.Info(); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v", p, fi.Mode().Perm())
		}
		if filepath.Base(p) != "manifest.json" && !strings.HasSuffix(p, ".zst.age") {
			t.Errorf("%s is not an age stream of compressed data", p)
		}
		return nil
	})

	// verify: without an identity, the ciphertext; with one, everything.
	v, errOut, code := backupCLI(t, lc, "verify", path)
	if code != 0 || v["encrypted"] != true || v["contents_checked"] != false {
		t.Fatalf("verify without identity: %v %s", v, errOut)
	}
	v, errOut, code = backupCLI(t, lc, "verify", path, "--identity", strangerFile, "--identity", idFile)
	if code != 0 || v["contents_checked"] != true {
		t.Fatalf("verify with identity: %v %s", v, errOut)
	}
	if _, errOut, code = backupCLI(t, lc, "verify", path, "--identity", strangerFile); code == 0 || !strings.Contains(errOut, "none of the identities given decrypts") {
		t.Fatalf("verify with a wrong identity: exit %d %s", code, errOut)
	}
	in, errOut, code := backupCLI(t, lc, "inspect", path)
	if code != 0 || in["locked"] != true {
		t.Fatalf("inspect without identity: %v %s", in, errOut)
	}
	in, errOut, code = backupCLI(t, lc, "inspect", path, "--identity", idFile)
	if code != 0 || in["keys"].(float64) < 3 {
		t.Fatalf("inspect with identity: %v %s", in, errOut)
	}
	set(t, c, "A", "v", 2)
	set(t, c, "B", "v", 3)
	if _, errOut, code = backupCLI(t, lc, "diff", path, "--live"); code == 0 || !strings.Contains(errOut, "--identity") {
		t.Fatalf("diff without identity: exit %d %s", code, errOut)
	}
	d, errOut, code := backupCLI(t, lc, "diff", path, "--live", "--identity", idFile)
	if code != 0 || !strings.Contains(func() string { b, _ := json.Marshal(d); return string(b) }(), `"key":"A"`) {
		t.Fatalf("diff with identity: %v %s", d, errOut)
	}

	// node3's disk dies; it is restored from the encrypted backup.
	lc.Stop("node3", true)
	n3 := lc.Nodes[2]
	os.RemoveAll(n3.DataDir)
	tampered := filepath.Join(t.TempDir(), filepath.Base(path))
	os.CopyFS(tampered, os.DirFS(path))
	filepath.WalkDir(tampered, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(filepath.Base(p), "clusdb") {
			b, _ := os.ReadFile(p)
			b[len(b)-40] ^= 1
			os.WriteFile(p, b, 0o600)
		}
		return err
	})
	// The node's folder is made again, empty: the refused restores leave
	// it so.
	if err := os.Mkdir(n3.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"no identity":    {path},
		"wrong identity": {path, "--identity", strangerFile},
		"tampered":       {tampered, "--identity", idFile},
	} {
		_, errOut, code := restoreCLI(t, lc, append(args, "--data-dir", n3.DataDir, "--node", "node3")...)
		if code == 0 || !strings.Contains(errOut, "nothing was changed") {
			t.Fatalf("restore with %s: exit %d %s", name, code, errOut)
		}
		want := map[string]string{"no identity": "--identity", "wrong identity": "none of the identities given decrypts", "tampered": "does not verify"}[name]
		if !strings.Contains(errOut, want) {
			t.Fatalf("restore with %s: %s", name, errOut)
		}
		if entries, err := os.ReadDir(n3.DataDir); err != nil || len(entries) != 0 {
			t.Fatalf("restore with %s wrote the data directory: %v %v", name, entries, err)
		}
	}
	if _, errOut, code := backupCLI(t, lc, "verify", tampered); code == 0 || !strings.Contains(errOut, "SHA-256") {
		t.Fatalf("verify of the tampered set without identity: exit %d %s", code, errOut)
	}
	m, errOut, code := restoreCLI(t, lc, path, "--data-dir", n3.DataDir, "--node", "node3", "--identity", idFile)
	if code != 0 || m["applied"] != "now" || m["node"] != "node3" {
		t.Fatalf("restore: %v %s", m, errOut)
	}
	if _, err := lc.Start(ctx, "node3"); err != nil {
		t.Fatal(err)
	}
	waitHolds(t, n3, "A", "v", 2)
	waitHolds(t, n3, "B", "v", 3)
	tc.Eventually(t, "three nodes Up", func() error { return allUp(tc.Context(t), c, 3) })
}
