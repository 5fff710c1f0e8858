package restore_test

import (
	"errors"
	"path/filepath"
	"testing"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/restore"
	"github.com/clusterkeep/clusterkeep/internal/staging"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// An encrypted backup restores only with its identity; identities given
// for a backup that is not encrypted are refused (a forger may have
// removed its encryption). Each refusal changes nothing.
func TestRestoreChecksEncryption(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	id, _ := age.GenerateX25519Identity()
	stranger, _ := age.GenerateX25519Identity()
	to := filepath.Join(t.TempDir(), "backups")
	enc, err := backup.Create(ctx, backup.Options{DataDir: nodes[0].Cfg.DataDir, To: to, Recipients: []age.Recipient{id.Recipient()}})
	if err != nil || !enc.Encrypted {
		t.Fatalf("%+v %v", enc, err)
	}
	plain, err := backup.Create(ctx, backup.Options{DataDir: nodes[0].Cfg.DataDir, To: to})
	if err != nil || plain.Encrypted {
		t.Fatalf("%+v %v", plain, err)
	}
	nodes[0].Stop()
	dataDir := nodes[0].Cfg.DataDir
	for _, c := range []struct {
		path string
		ids  []age.Identity
		want error
	}{
		{enc.Path, nil, backupset.ErrNoIdentity},
		{enc.Path, []age.Identity{stranger}, backupset.ErrWrongIdentity},
		{plain.Path, []age.Identity{id}, backupset.ErrNotEncrypted},
	} {
		if _, err := restore.Run(ctx, restore.Options{Path: c.path, DataDir: dataDir, Identities: c.ids}); !errors.Is(err, c.want) {
			t.Fatalf("got %v, want %v", err, c.want)
		}
		if p, _ := staging.Pending(dataDir); p != nil {
			t.Fatal("a refused restore was staged")
		}
	}
	out, err := restore.Run(ctx, restore.Options{Path: enc.Path, DataDir: dataDir, Identities: []age.Identity{stranger, id}})
	if err != nil || out.Applied != "now" {
		t.Fatalf("%+v %v", out, err)
	}
}
