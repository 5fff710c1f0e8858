package backupset

import (
	"errors"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/shadow"
)

func sealed(t *testing.T, edit func(m *Manifest)) []byte {
	m := &Manifest{FormatVersion: FormatVersion, BackupID: "b",
		Writers: []shadow.WriterMetadata{{Name: "w", ID: "41e12264-35d8-479b-8e5c-9b23d1dad37e"}},
		Files:   []File{{Name: "writers/x/c/f", WriterID: "41e12264-35d8-479b-8e5c-9b23d1dad37e", Source: "/var/lib/app/f", SHA256: strings.Repeat("0", 64)}}}
	edit(m)
	b, err := m.Seal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A manifest resealed by someone who edited it is still checked for what
// could make a restore write outside its place.
func TestParseManifestRefusesUnsafeEntries(t *testing.T) {
	if _, err := ParseManifest(sealed(t, func(*Manifest) {})); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Manifest){
		"name with ..":       func(m *Manifest) { m.Files[0].Name = "writers/../../etc/passwd" },
		"absolute name":      func(m *Manifest) { m.Files[0].Name = "/etc/passwd" },
		"relative source":    func(m *Manifest) { m.Files[0].Source = "etc/passwd" },
		"unclean source":     func(m *Manifest) { m.Files[0].Source = "/var/lib/app/../../etc/passwd" },
		"unknown writer":     func(m *Manifest) { m.Files[0].WriterID = "41e12264-35d8-479b-8e5c-9b23d1dad37f" },
		"writer id not uuid": func(m *Manifest) { m.Writers[0].ID, m.Files[0].WriterID = "../../x", "../../x" },
		"bad hash":           func(m *Manifest) { m.Files[0].SHA256 = "zz" },
		"twice":              func(m *Manifest) { m.Files = append(m.Files, m.Files[0]) },
		"other version":      func(m *Manifest) { m.FormatVersion = 2 },
	} {
		if _, err := ParseManifest(sealed(t, edit)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	raw := sealed(t, func(*Manifest) {})
	if _, err := ParseManifest([]byte(strings.Replace(string(raw), `"backup_id": "b"`, `"backup_id": "c"`, 1))); !errors.Is(err, ErrCorrupt) {
		t.Errorf("edited without resealing: %v", err)
	}
	if _, err := ParseManifest([]byte(strings.Replace(string(raw), `"backup_id"`, `"unknown": 1, "backup_id"`, 1))); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown field: %v", err)
	}
}
