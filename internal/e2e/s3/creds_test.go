package s3

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/client"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// The credentials and the region come from the AWS files when the
// environment names none: the profile AWS_PROFILE of
// AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE (a [profile NAME]
// section), or their default profile, against the real server, which
// refuses a wrong key and a wrong region.
func TestCredentialsAndRegionFromTheAWSFiles(t *testing.T) {
	s := server(t)
	nodes := tc.InProcessWith(t, 1, nil)
	b := bucket(t, s)
	to := "s3://" + b + "/files"
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	creds := write("credentials", "[default]\naws_access_key_id = "+s.AccessKey+"\naws_secret_access_key = "+s.SecretKey+"\n\n"+
		"[backups]\naws_access_key_id = "+s.AccessKey+"\naws_secret_access_key = "+s.SecretKey+"\n\n"+
		"[wrong-key]\naws_access_key_id = "+s.AccessKey+"\naws_secret_access_key = not-the-secret\n\n"+
		// The wrong region's credentials are right: only its region is not.
		"[wrong-region]\naws_access_key_id = "+s.AccessKey+"\naws_secret_access_key = "+s.SecretKey+"\n")
	config := write("config", "[default]\nregion = "+s.Region+"\n\n[profile backups]\nregion = "+s.Region+"\n\n"+
		"[profile wrong-key]\nregion = "+s.Region+"\n\n[profile wrong-region]\nregion = eu-west-3\n")
	// Nothing but the files: no key, no region in the environment, and a
	// home without ~/.aws.
	env := func(profile string) []string {
		return []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_REGION=", "AWS_DEFAULT_REGION=",
			"HOME=" + t.TempDir(), "AWS_SHARED_CREDENTIALS_FILE=" + creds, "AWS_CONFIG_FILE=" + config, "AWS_PROFILE=" + profile,
			"AWS_ENDPOINT_URL=" + s.Endpoint, "CLUSTERKEEP_S3_PATH_STYLE=1", client.EnvCluster + "=" + nodes[0].API()}
	}
	var res backup.Result
	jsonCLI(t, env("backups"), &res, "backup", "create", "--to", to, "--data-dir", t.TempDir())
	if !strings.HasPrefix(res.Path, to+"/") {
		t.Fatalf("the set is at %s", res.Path)
	}
	var v map[string]any
	jsonCLI(t, env("backups"), &v, "backup", "verify", res.Path)
	if sets := listSets(t, env(""), to); len(sets) != 1 || sets[0].Path != res.Path {
		t.Fatalf("list with the default profile: %+v", sets)
	}
	for _, bad := range []struct{ profile, why string }{
		{"wrong-key", "signature"},
		{"wrong-region", "region"},
	} {
		// The listing fails, saying why; reading the set fails.
		out, errOut, code := cli(t, env(bad.profile), "backup", "list", to)
		if code == 0 || strings.Contains(out, res.Path) || !strings.Contains(strings.ToLower(errOut), bad.why) {
			t.Errorf("profile %s: list %s, want a refusal naming the %s: %s", bad.profile, out, bad.why, errOut)
		}
		if _, errOut, code := cli(t, env(bad.profile), "backup", "verify", res.Path); code == 0 {
			t.Errorf("profile %s: verify passed: %s", bad.profile, errOut)
		}
	}
	// A region in the environment wins over the file's.
	if sets := listSets(t, append(env("wrong-region"), "AWS_REGION="+s.Region), to); len(sets) != 1 {
		t.Fatalf("list with AWS_REGION over the file's region: %+v", sets)
	}
}
