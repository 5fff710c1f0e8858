package backupset

import (
	"strings"
	"testing"
)

func FuzzParseManifest(f *testing.F) {
	f.Add(sealed(&testing.T{}, func(*Manifest) {}))
	f.Add([]byte(`{"format_version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		// An accepted manifest seals to a form that is accepted again,
		// and names no file outside the set.
		again, err := m.Seal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(again); err != nil {
			t.Fatalf("resealed manifest refused: %v", err)
		}
		for _, f := range m.Files {
			for _, part := range strings.Split(f.StoredName(), "/") {
				if part == ".." || part == "" || part == "." {
					t.Fatalf("unsafe name accepted: %q", f.Name)
				}
			}
			if !strings.HasPrefix(f.Source, "/") && f.Source != "" {
				t.Fatalf("relative source accepted: %q", f.Source)
			}
		}
	})
}
