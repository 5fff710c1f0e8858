package backend

import (
	"os"
	"path/filepath"
	"testing"
)

// The region comes from the environment, else from the profile's section
// of the AWS config file.
func TestS3FromEnvRegion(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	os.WriteFile(config, []byte(`# a comment
[default]
region = eu-west-1

[profile backups]
output = json
s3 =
    region = not-this-one
    addressing_style = path
region=eu-central-2
; region = commented-out

[other]
region = ap-south-1
`), 0o600)
	cases := []struct {
		name, profile, file, env, want string
	}{
		{name: "default profile", file: config, want: "eu-west-1"},
		{name: "named profile, nested settings skipped", profile: "backups", file: config, want: "eu-central-2"},
		{name: "a section named as in the credentials file", profile: "other", file: config, want: "ap-south-1"},
		{name: "a profile the file lacks", profile: "missing", file: config, want: ""},
		{name: "the environment wins", profile: "backups", file: config, env: "us-west-2", want: "us-west-2"},
		{name: "no file", file: filepath.Join(dir, "absent"), want: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(EnvConfigFile, c.file)
			t.Setenv(EnvProfile, c.profile)
			t.Setenv(EnvRegion, c.env)
			t.Setenv(EnvDefaultRegion, "")
			if got := S3FromEnv().Region; got != c.want {
				t.Errorf("region %q, want %q", got, c.want)
			}
		})
	}
	// Without AWS_CONFIG_FILE, ~/.aws/config.
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".aws"), 0o700)
	os.WriteFile(filepath.Join(home, ".aws", "config"), []byte("[default]\nregion = sa-east-1\n"), 0o600)
	t.Setenv("HOME", home)
	t.Setenv(EnvConfigFile, "")
	t.Setenv(EnvProfile, "")
	t.Setenv(EnvRegion, "")
	if got := S3FromEnv().Region; got != "sa-east-1" {
		t.Errorf("region from ~/.aws/config: %q", got)
	}
}
