package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The suite runs end to end at a tiny size, so it cannot rot. The etcd side
// by side runs when Debian's etcd is installed (bench/setup.sh, which
// scripts/test.sh runs); without it that part is skipped, and said so.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three-node clusters")
	}
	args := []string{"run", ".", "-keys", "300", "-runs", "1", "-writers", "2", "-write-for", "300ms"}
	want := []string{"backup / raw limit", "backup create max RSS", "failed writes", "authoritative restore", "wiped node"}
	_, e1 := exec.LookPath("etcd")
	_, e2 := exec.LookPath("etcdctl")
	if e1 == nil && e2 == nil {
		want = append(want, "etcdctl snapshot save", "etcd writes/s", "etcdctl snapshot restore")
	} else {
		t.Log("SKIPPING the etcd side by side: etcd or etcdctl is not installed (bench/setup.sh installs them)")
		args = append(args, "-etcd=false")
	}
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ckbench: %v\n%s", err, out)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Fatalf("ckbench output lacks %q:\n%s", w, out)
		}
	}
	t.Logf("%s", out)
}
