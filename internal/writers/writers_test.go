package writers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/agent"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/clusterkeep/clusterkeep/internal/writers"
	bolt "go.etcd.io/bbolt"
)

// appWriter declares an application writer whose commands log their phase.
func appWriter(t *testing.T, freeze, thaw string) (writers.ExecConfig, string, string) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(filepath.Join(data, "sub"), 0o700)
	os.WriteFile(filepath.Join(data, "a.dat"), []byte("alpha"), 0o600)
	os.WriteFile(filepath.Join(data, "sub", "b.dat"), []byte("beta"), 0o600)
	log := filepath.Join(dir, "phases.log")
	cmd := func(body string) []string {
		return []string{"sh", "-c", fmt.Sprintf("echo $CLUSTERKEEP_PHASE >> %s; %s", log, body)}
	}
	return writers.ExecConfig{Name: "appdb", Paths: []string{data}, Freeze: cmd(freeze), Thaw: cmd(thaw), Timeout: "10s"}, data, log
}

func readAll(t *testing.T, b *client.RemoteBackup, name string) []byte {
	t.Helper()
	rc, err := b.Item(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestBackupSequenceWithTheThreeKindsOfWriter(t *testing.T) {
	wc, _, log := appWriter(t, "true", "true")
	nodes := tc.InProcessWith(t, 3, func(i int, cfg *agent.Config) {
		if i == 1 {
			cfg.Writers = []writers.ExecConfig{wc}
		}
	})
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	if _, err := c.SetValue(ctx, "Apps/Web", wire.Uint32Value("Port", 8080)); err != nil {
		t.Fatal(err)
	}
	b, err := client.StartBackup(ctx, nodes[1].API(), shadow.BackupFull)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Started.Writers) != 3 {
		t.Fatalf("writers: %+v", b.Started.Writers)
	}
	if err := b.AddAllComponents(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.PrepareForBackup(ctx); err != nil {
		t.Fatal(err)
	}
	set, err := b.DoSnapshotSet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]shadow.SnapshotItem{}
	for _, it := range set.Items {
		got[it.WriterName+":"+filepath.Base(it.Name)] = it
	}
	// The Cluster Database's checkpoint is a complete, valid hive holding
	// the write made before the backup.
	db := got["Cluster Database:clusdb"]
	if db.Method != "stream" || db.Info["seq"] == nil {
		t.Fatalf("cluster database item: %+v", db)
	}
	f := filepath.Join(t.TempDir(), "clusdb")
	os.WriteFile(f, readAll(t, b, db.Name), 0o600)
	if err := hive.CheckFile(f); err != nil {
		t.Fatal(err)
	}
	h, _ := hive.OpenReadOnly(f)
	if v, err := h.GetValue("Apps/Web", "Port"); err != nil || v.Uint32 != 8080 {
		t.Fatalf("checkpoint lacks the write: %+v %v", v, err)
	}
	h.Close()
	// The registry is a bbolt file of its own.
	reg := filepath.Join(t.TempDir(), "node.db")
	os.WriteFile(reg, readAll(t, b, got["Registry:node.db"].Name), 0o600)
	rdb, err := bolt.Open(reg, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	rdb.Close()
	// The application's files, copied while it was frozen.
	if string(readAll(t, b, got["appdb:a.dat"].Name)) != "alpha" || string(readAll(t, b, got["appdb:b.dat"].Name)) != "beta" {
		t.Fatalf("application files: %+v", got)
	}
	doc, err := b.BackupComplete(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []shadow.Phase{shadow.PhasePrepareForBackup, shadow.PhasePrepareForSnapshot, shadow.PhaseFreeze, shadow.PhaseThaw, shadow.PhasePostSnapshot}
	for _, id := range []string{writers.ClusterDBID, writers.RegistryID, b.Started.Writers[2].ID} {
		var phases []shadow.Phase
		for _, ps := range doc.WriterStatus[id] {
			phases = append(phases, ps.Phase)
		}
		if !slices.Equal(phases, want) {
			t.Errorf("writer %s saw %v", id, phases)
		}
	}
	if logged, _ := os.ReadFile(log); string(logged) != "Freeze\nThaw\n" {
		t.Fatalf("application writer commands ran: %q", logged)
	}
	if left, _ := os.ReadDir(filepath.Join(nodes[1].Cfg.DataDir, "shadow")); len(left) != 0 {
		t.Fatalf("snapshot set left behind: %v", left)
	}
}

func TestApplicationWriterFailureAbortsAndThaws(t *testing.T) {
	wc, _, log := appWriter(t, "echo freeze broke >&2; exit 3", "true")
	wc2, _, log2 := appWriter(t, "true", "true")
	wc2.Name = "second"
	nodes := tc.InProcessWith(t, 1, func(i int, cfg *agent.Config) { cfg.Writers = []writers.ExecConfig{wc2, wc} })
	ctx := tc.Context(t)
	b, err := client.StartBackup(ctx, nodes[0].API(), shadow.BackupFull)
	if err != nil {
		t.Fatal(err)
	}
	b.AddAllComponents(ctx)
	if err := b.PrepareForBackup(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = b.DoSnapshotSet(ctx)
	if !errors.Is(err, client.ErrWriterFailed) || !strings.Contains(err.Error(), `writer "appdb"`) || !strings.Contains(err.Error(), "Freeze") || !strings.Contains(err.Error(), "freeze broke") {
		t.Fatalf("error: %v", err)
	}
	// Both were thawed, the one that froze and the one whose freeze failed.
	for _, l := range []string{log, log2} {
		if logged, _ := os.ReadFile(l); !strings.HasSuffix(string(logged), "Thaw\n") {
			t.Errorf("%s: %q", l, logged)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(nodes[0].Cfg.DataDir, "shadow")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	if _, err := b.BackupComplete(ctx); !errors.Is(err, client.ErrNoSession) {
		t.Fatalf("complete after abort: %v", err)
	}
	res, err := client.Node(nodes[0].API()).Writers(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range res.Writers {
		if st.Metadata.Name == "appdb" && (st.State != shadow.StateFailedAtFreeze || !strings.Contains(st.LastError, "freeze broke") || st.Retryable) {
			t.Fatalf("status: %+v", st)
		}
	}
	// The node is free for the next backup.
	if _, err := client.StartBackup(ctx, nodes[0].API(), shadow.BackupCopy); err != nil {
		t.Fatal(err)
	}
}

// The Cluster Database checkpoint, taken on a follower while writers keep
// writing, holds every write acknowledged before the backup began, and is
// the hive at exactly one sequence number: each key holds the last value
// written at or below that number, and nothing written above it.
func TestClusterDatabaseCheckpointUnderWrites(t *testing.T) {
	nodes := tc.InProcess(t, 3)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	info, _ := c.GetClusterInformation(ctx)
	follower := nodes[0]
	for _, n := range nodes {
		if n.Cfg.Name != info.Leader {
			follower = n
		}
	}
	stop := tc.Writers(t, []string{nodes[0].API(), nodes[1].API(), nodes[2].API()}, 4)
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	b, err := client.StartBackup(ctx, follower.API(), shadow.BackupCopy)
	if err != nil {
		t.Fatal(err)
	}
	b.AddComponent(ctx, writers.ClusterDBID, "", writers.ClusterDBComponent)
	if err := b.PrepareForBackup(ctx); err != nil {
		t.Fatal(err)
	}
	set, err := b.DoSnapshotSet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The checkpoint is held (its read transaction open until the backup
	// completes): a write must still be acknowledged, and stay out of it.
	held, err := c.SetValue(ctx, "Probe", wire.Uint64Value("n", 1))
	if err != nil {
		t.Fatalf("a write while the checkpoint is held: %v", err)
	}
	f := filepath.Join(t.TempDir(), "clusdb")
	os.WriteFile(f, readAll(t, b, set.Items[0].Name), 0o600)
	b.BackupComplete(ctx)
	time.Sleep(200 * time.Millisecond)
	acks := stop()

	h, err := hive.OpenReadOnly(f)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	at := h.Seq()
	err = tc.CheckPointInTime(acks, began, at, func(key string) (uint64, error) {
		v, err := h.GetValue(key, "n")
		return v.Uint64, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if held <= at {
		t.Fatalf("the write made while the checkpoint was held (seq %d) is at or below the checkpoint's seq %d", held, at)
	}
	if _, err := h.GetValue("Probe", "n"); err == nil {
		t.Fatal("the write made while the checkpoint was held is in the checkpoint")
	}
	t.Logf("checkpoint at seq %d; %d writes acknowledged; a write while it was held got seq %d", at, len(acks), held)
}
