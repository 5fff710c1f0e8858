package metrics

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAsideMetrics(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"20261201T100000.000000000Z-evicted": 100, "restore-abc": 23} {
		p := filepath.Join(dir, "aside", name, "raft")
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "log"), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := New()
	if err := m.AttachAside(dir); err != nil {
		t.Fatal(err)
	}
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, mm := range f.Metric {
			got[f.GetName()] = value(mm)
		}
	}
	if got["clusterkeep_aside_copies"] != 2 || got["clusterkeep_aside_bytes"] != 123 {
		t.Fatalf("aside metrics %v, want 2 copies of 123 bytes", got)
	}
}
