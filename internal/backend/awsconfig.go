package backend

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// configRegion is the region of the profile AWS_PROFILE ("default") in
// the AWS config file (AWS_CONFIG_FILE, or ~/.aws/config), as the AWS
// tools read it: "" when there is no such file, profile or key. The
// credentials of that profile are read by the S3 client itself.
func configRegion() string {
	file := os.Getenv(EnvConfigFile)
	if file == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		file = filepath.Join(home, ".aws", "config")
	}
	profile := os.Getenv(EnvProfile)
	if profile == "" {
		profile = "default"
	}
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	return iniValue(bufio.NewScanner(f), profile, "region")
}

// iniValue reads key in the section of profile of an AWS config file:
// [profile NAME], or [default] for the default profile ([NAME] is taken
// too, as in the credentials file). Indented lines continue a nested
// setting (s3 = ...) and are skipped.
func iniValue(sc *bufio.Scanner, profile, key string) string {
	in, value := false, ""
	for sc.Scan() {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			name := strings.Join(strings.Fields(line[1:len(line)-1]), " ")
			in = name == profile || name == "profile "+profile
			continue
		}
		if !in || raw[0] == ' ' || raw[0] == '\t' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == key {
			value = strings.TrimSpace(v)
		}
	}
	return value
}
