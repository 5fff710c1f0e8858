package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The benchmark runs end to end at a tiny size, so it cannot rot.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	cmd := exec.Command("go", "run", ".", "-keys", "300", "-runs", "1", "-writers", "2", "-write-for", "300ms")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ckbench: %v\n%s", err, out)
	}
	for _, want := range []string{"backup / raw limit", "backup create max RSS", "failed writes: 0", "authoritative restore"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("ckbench output lacks %q:\n%s", want, out)
		}
	}
}
