package e2e

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/backupset/offline"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/security"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// secretsOf reads, from the set itself, every secret its subtree of
// secrets holds as it could be printed: the values' text forms (the
// authority's key in hex, the join secret) and the subkeys' names (the
// tokens' hashes).
func secretsOf(t *testing.T, path string) []string {
	t.Helper()
	s, err := backupset.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = offline.WithHive(s, func(h *hive.Hive) error {
		return h.View(func(r *hive.Reader) error {
			return r.Walk(hive.MustPath(hive.SecretsKey), func(k hive.Key) error {
				for _, v := range k.Values {
					if v.Type == hive.TypeBinary || strings.EqualFold(v.Name, "JoinSecret") {
						out = append(out, hive.FormatData(v), strings.Trim(hive.FormatData(v), `"`))
					}
				}
				if strings.HasSuffix(strings.ToLower(k.Path), "/tokens") {
					out = append(out, k.Subkeys...)
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// noSecret fails the test if text holds any of the secrets.
func noSecret(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if len(s) >= 16 && strings.Contains(text, s) {
			t.Errorf("%s prints a secret (%d characters of it)", what, len(s))
		}
	}
}

// No command prints the cluster's secrets: not backup diff (with the
// running cluster or another set, as text or JSON), not backup inspect,
// not config export, get or list of a stopped node's files, not restore
// --key. Diff names a secret as changed, never its bytes, and a backup of
// an unchanged cluster shows no difference in the secrets with the
// running one.
func TestNoCommandPrintsASecret(t *testing.T) {
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	ctx := tc.Context(t)
	set(t, c, "Apps/Web", "Port", 80)
	first := takeBackup(t, lc, "node2")
	secrets := secretsOf(t, first)
	tr := tc.UseTrust(t)
	pemCert, _ := os.ReadFile(tr.CACert)
	pemKey, _ := os.ReadFile(tr.CAKey)
	ca, err := security.ParseCAPEM(pemCert, pemKey)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.KeyDER()
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, hex.EncodeToString(der), tr.JoinToken, tr.AdminToken, security.TokenID(tr.AdminToken))
	if len(secrets) < 6 {
		t.Fatalf("the set holds too few secrets to look for: %d", len(secrets))
	}
	env := []string{client.EnvCluster + "=" + lc.APIAddrs()}
	run := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, _ := cli(t, env, args...)
		noSecret(t, strings.Join(args, " "), out+errOut, secrets)
		return out, errOut
	}

	// The running cluster has not changed its secrets: no difference.
	for _, format := range [][]string{nil, {"--json"}} {
		out, errOut := run(append([]string{"backup", "diff", first, "--live"}, format...)...)
		if changeLines(out, hive.SecretsKey) != "" || strings.Contains(out, `"secret":true`) {
			t.Errorf("diff --live %v shows the secrets as different:\n%s%s", format, out, errOut)
		}
	}
	var live offline.Comparison
	out, _ := run("backup", "diff", first, "--live", "--json")
	if err := json.Unmarshal([]byte(out), &live); err != nil || live.Secrets != offline.SecretsNotCompared {
		t.Fatalf("diff --live --json: %v %s", err, out)
	}

	// A new token and a new join secret: named as changed, never shown.
	if _, err := c.CreateToken(ctx, "ci", []string{"read"}); err != nil {
		t.Fatal(err)
	}
	set(t, c, "Apps/Web", "Port", 81)
	second := takeBackup(t, lc, "node1")
	secrets = append(secrets, secretsOf(t, second)...)
	out, _ = run("backup", "diff", first, second)
	if !strings.Contains(out, `+ Cluster/Security/Tokens : token "ci" (secret, added)`) || !strings.Contains(out, "~ Apps/Web : Port uint32 80 -> uint32 81") {
		t.Errorf("diff of two sets does not name the added token:\n%s", out)
	}
	var cmp offline.Comparison
	out, _ = run("backup", "diff", first, second, "--json")
	if err := json.Unmarshal([]byte(out), &cmp); err != nil || cmp.Secrets != offline.SecretsChanged {
		t.Fatalf("diff --json: %v %s", err, out)
	}
	out, _ = run("backup", "diff", second, second)
	if !strings.Contains(out, "secrets (Cluster/Security): unchanged") || !strings.Contains(out, "no differences") {
		t.Errorf("diff of a set with itself:\n%s", out)
	}
	out, _ = run("backup", "inspect", second)
	if !strings.Contains(out, `token "ci"`) || !strings.Contains(out, "CAKey") {
		t.Errorf("inspect does not name the secrets it holds:\n%s", out)
	}
	run("backup", "inspect", second, "--json")
	if text, err := offline.Export(second); err != nil || strings.Contains(string(text), "Security") {
		t.Errorf("the offline reader's export holds the secrets' subtree: %v", err)
	} else {
		noSecret(t, "offline.Export", string(text), secrets)
	}
	_, errOut := run("restore", second, "--key", "Cluster/Security")
	if !strings.Contains(errOut, "outside") {
		t.Errorf("restore --key of the secrets: %s", errOut)
	}

	// A stopped node's files, read offline.
	lc.Stop("node3", false)
	dir := lc.Nodes[2].DataDir
	for _, format := range [][]string{nil, {"--json"}} {
		out, errOut := run(append([]string{"config", "export", "--data-dir", dir}, format...)...)
		if !strings.Contains(out, "Apps/Web") || strings.Contains(out, "Security") {
			t.Errorf("config export --data-dir %v:\n%s%s", format, out, errOut)
		}
		file := filepath.Join(t.TempDir(), "export.txt")
		run(append([]string{"config", "export", "--data-dir", dir, "-o", file}, format...)...)
		if b, err := os.ReadFile(file); err == nil {
			noSecret(t, "config export -o", string(b), secrets)
		}
		for _, args := range [][]string{
			{"config", "get", "Cluster/Security", "CAKey", "--data-dir", dir},
			{"config", "get", "cluster/SECURITY", "JoinSecret", "--data-dir", dir},
			{"config", "list", "Cluster/Security/Tokens", "--data-dir", dir},
			{"config", "export", "Cluster/Security", "--data-dir", dir},
		} {
			_, errOut := run(append(args, format...)...)
			if !strings.Contains(errOut, "secrets") {
				t.Errorf("%v is not refused: %s", args, errOut)
			}
		}
	}
}

// changeLines is the lines of diff's text output, changes only, that
// mention s.
func changeLines(out, s string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.ContainsAny(l[:min(len(l), 1)], "+-~") && strings.Contains(l, s) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
