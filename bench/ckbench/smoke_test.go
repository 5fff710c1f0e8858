package main

import (
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// The suite runs end to end at a tiny size, so it cannot rot. The etcd side
// by side runs when Debian's etcd is installed (bench/setup.sh, which
// scripts/test.sh runs); without it that part is skipped, and said so.
// It sets no targets on the figures; it checks that each is a number, that
// no write failed and that writes went through.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three-node clusters")
	}
	args := []string{"run", ".", "-keys", "300", "-runs", "1", "-writers", "2", "-write-for", "300ms"}
	want := []string{"backup / raw limit", "backup create peak memory", "failed writes", "authoritative restore", "wiped node",
		"writes/s idle", "writes/s during backups"}
	zero := []string{"2. failed writes (idle + during backups)"}
	positive := []string{"2. writes/s idle", "2. writes/s during backups", "2. backups completed during the write run"}
	_, e1 := exec.LookPath("etcd")
	_, e2 := exec.LookPath("etcdctl")
	if e1 == nil && e2 == nil {
		want = append(want, "etcdctl snapshot save", "etcd writes/s", "etcdctl snapshot restore")
		zero = append(zero, "5. etcd failed writes")
		positive = append(positive, "5. etcd writes/s")
	} else {
		t.Log("SKIPPING the etcd side by side: etcd or etcdctl is not installed (bench/setup.sh installs them)")
		args = append(args, "-etcd=false")
	}
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ckbench: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Fatalf("ckbench output lacks %q", w)
		}
	}
	rows := figureRows(t, string(out))
	for _, name := range zero {
		r, ok := rows[name]
		if !ok {
			t.Fatalf("no row %q", name)
		}
		if r[2] != 0 {
			t.Errorf("%s: %v, want 0 in every round", name, r[2])
		}
	}
	for _, name := range positive {
		r, ok := rows[name]
		if !ok {
			t.Fatalf("no row %q", name)
		}
		if r[1] <= 0 {
			t.Errorf("%s: %v, want above zero in every round", name, r[1])
		}
	}
}

// figureRows parses the printed tables' rows into median, min and max by
// figure name, failing on any that is not a finite number.
func figureRows(t *testing.T, out string) map[string][3]float64 {
	t.Helper()
	rows := map[string][3]float64{}
	for _, line := range strings.Split(out, "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 6 || !strings.HasPrefix(line, "| ") || strings.TrimSpace(cells[0]) == "figure" {
			continue
		}
		name := strings.TrimSpace(cells[0])
		var r [3]float64
		for i := range r {
			s := strings.TrimSpace(cells[1+i])
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("%s: %q is not a finite number", name, s)
			}
			r[i] = v
		}
		rows[name] = r
	}
	if len(rows) == 0 {
		t.Fatal("ckbench printed no figures")
	}
	return rows
}
