package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The benchmark runs end to end at a tiny size, so it cannot rot.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node and an S3 server")
	}
	out, err := exec.Command("go", "run", ".", "-keys", "200", "-runs", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("s3bench: %v\n%s", err, out)
	}
	for _, want := range []string{"backup create to S3 on loopback", "S3: backup peak memory"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("s3bench output lacks %q:\n%s", want, out)
		}
	}
}
