package restore_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/agent"
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/restore"
	"github.com/clusterkeep/clusterkeep/internal/staging"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/clusterkeep/clusterkeep/internal/writers"
)

// Application writers' files come back by each writer's restore method,
// inside the writers' PreRestore and PostRestore.
func TestApplicationFilesFollowTheirRestoreMethod(t *testing.T) {
	dir := t.TempDir()
	replace, keep, log := filepath.Join(dir, "replace.dat"), filepath.Join(dir, "keep.dat"), filepath.Join(dir, "phases.log")
	os.WriteFile(replace, []byte("v1"), 0o600)
	os.WriteFile(keep, []byte("k1"), 0o600)
	cmd := func() []string {
		return []string{"sh", "-c", fmt.Sprintf("echo $CLUSTERKEEP_WRITER $CLUSTERKEEP_PHASE $(cat %s) >> %s", replace, log)}
	}
	nodes := tc.InProcessWith(t, 1, func(i int, cfg *agent.Config) {
		cfg.Writers = []writers.ExecConfig{
			{Name: "app", Paths: []string{replace}, PreRestore: cmd(), PostRestore: cmd(), RestoreMethod: "RESTORE_IF_CAN_REPLACE"},
			{Name: "careful", Paths: []string{keep}, RestoreMethod: "RESTORE_IF_NOT_THERE"},
		}
	})
	ctx := tc.Context(t)
	res, err := backup.Create(ctx, backup.Options{DataDir: nodes[0].Cfg.DataDir, To: filepath.Join(dir, "backups")})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(replace, []byte("v2"), 0o600)
	os.WriteFile(keep, []byte("k2"), 0o600)
	out, err := restore.Run(ctx, restore.Options{Path: res.Path, DataDir: nodes[0].Cfg.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(replace); string(got) != "v1" {
		t.Fatalf("RESTORE_IF_CAN_REPLACE left %q", got)
	}
	if got, _ := os.ReadFile(keep); string(got) != "k2" {
		t.Fatalf("RESTORE_IF_NOT_THERE replaced an existing file: %q", got)
	}
	// The writer saw PreRestore before its file came back and PostRestore after.
	if got, _ := os.ReadFile(log); string(got) != "app PreRestore v2\napp PostRestore v1\n" {
		t.Fatalf("writer commands: %q", got)
	}
	// The cluster database could not be replaced while the service ran:
	// it waits for the next start.
	if p, _ := staging.Pending(nodes[0].Cfg.DataDir); p == nil || !strings.Contains(out.Applied, "next start") {
		t.Fatalf("cluster database not staged: %+v", out)
	}
	nodes[0].Stop()
	nodes[0].Start()
	if p, _ := staging.Pending(nodes[0].Cfg.DataDir); p != nil {
		t.Fatal("staged restore not applied at the start")
	}
}

func TestNonAuthoritativeRestoreAcrossGenerationsIsRefused(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	res, err := backup.Create(ctx, backup.Options{DataDir: nodes[0].Cfg.DataDir, To: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	nodes[0].Stop()
	if _, err := noderegistry.Update(nodes[0].Cfg.DataDir, func(i *noderegistry.Identity) error { i.Generation = 5; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = restore.Run(ctx, restore.Options{Path: res.Path, DataDir: nodes[0].Cfg.DataDir})
	if err == nil || !strings.Contains(err.Error(), "generation 1") || !strings.Contains(err.Error(), "--authoritative") {
		t.Fatalf("got %v", err)
	}
	if p, _ := staging.Pending(nodes[0].Cfg.DataDir); p != nil {
		t.Fatal("a refused restore was staged")
	}
}

func TestStagedRestoreWithItsDatabaseGoneIsNotApplied(t *testing.T) {
	dir := t.TempDir()
	h, _ := hive.Open(filepath.Join(t.TempDir(), "src"), hive.Options{})
	snap, _ := h.Snapshot()
	pr, pw := io.Pipe()
	go func() { _, err := snap.WriteTo(pw); pw.CloseWithError(err) }()
	if err := staging.Stage(dir, staging.Plan{ID: "p", Identity: noderegistry.Identity{NodeID: "n"}}, pr); err != nil {
		t.Fatal(err)
	}
	snap.Close()
	h.Close()
	os.Remove(filepath.Join(dir, staging.PendingDir, hive.FileName))
	if _, err := staging.Apply(dir); err == nil {
		t.Fatal("applied a restore whose database is gone")
	}
}

func TestBackupOfAnotherClusterNeedsNewCluster(t *testing.T) {
	a := tc.InProcess(t, 1)
	b := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	c := tc.Open(t, a[0].API())
	if _, err := c.SetValue(ctx, "Apps/Web", wire.Uint32Value("Port", 443)); err != nil {
		t.Fatal(err)
	}
	res, err := backup.Create(ctx, backup.Options{DataDir: a[0].Cfg.DataDir, To: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// Onto a node of another cluster: refused.
	b[0].Stop()
	_, err = restore.Run(ctx, restore.Options{Path: res.Path, DataDir: b[0].Cfg.DataDir, Authoritative: true})
	if !errors.Is(err, restore.ErrOtherCluster) || !strings.Contains(err.Error(), "--new-cluster") {
		t.Fatalf("other cluster: %v", err)
	}
	// Disaster recovery on a new machine: the cluster is created from the backup.
	a[0].Stop() // the old machine is gone
	fresh := filepath.Join(t.TempDir(), "dr")
	if _, err := restore.Run(ctx, restore.Options{Path: res.Path, DataDir: fresh, Authoritative: true, NewCluster: true, Node: "n1"}); !errors.Is(err, restore.ErrNoDataDir) {
		t.Fatalf("into a directory that does not exist: %v", err)
	}
	if err := os.Mkdir(fresh, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Run(ctx, restore.Options{Path: res.Path, DataDir: fresh, Authoritative: true, NewCluster: true}); !errors.Is(err, restore.ErrNodeNotNamed) {
		t.Fatalf("into an empty directory without --node: %v", err)
	}
	out, err := restore.Run(ctx, restore.Options{Path: res.Path, DataDir: fresh, Authoritative: true, NewCluster: true, Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := noderegistry.Load(fresh)
	nd := &tc.Node{Cfg: agent.Config{DataDir: fresh, Name: id.NodeName, API: tc.FreeAddr(t), Raft: tc.FreeAddr(t),
		HeartbeatTimeout: "300ms", ElectionTimeout: "300ms", LeaderLease: "150ms"}}
	nd.Init(t)
	nd.Start()
	t.Cleanup(nd.Stop)
	dr := tc.Open(t, nd.API())
	tc.Eventually(t, "recovered cluster serves the backup", func() error {
		v, err := dr.GetValue(ctx, "Apps/Web", "Port")
		if err != nil || v.Uint32 != 443 {
			return fmt.Errorf("%+v %v", v, err)
		}
		return nil
	})
	info, err := dr.GetClusterInformation(ctx)
	if err != nil || info.ID != res.ClusterID || info.Generation != out.Generation || info.Generation <= 1 {
		t.Fatalf("recovered cluster: %+v %v", info, err)
	}
}

func TestNonAuthoritativeRestoreOntoANodeOfNoClusterIsRefused(t *testing.T) {
	nodes := tc.InProcess(t, 2)
	ctx := tc.Context(t)
	res, err := backup.Create(ctx, backup.Options{DataDir: nodes[0].Cfg.DataDir, To: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// node 2 leaves: it is in no cluster now.
	if _, err := client.Leave(ctx, nodes[1].API()); err != nil {
		t.Fatal(err)
	}
	nodes[1].Stop()
	_, err = restore.Run(ctx, restore.Options{Path: res.Path, DataDir: nodes[1].Cfg.DataDir})
	if err == nil || !strings.Contains(err.Error(), "in no cluster") {
		t.Fatalf("got %v", err)
	}
}
