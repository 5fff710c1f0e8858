package backup_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/agent"
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/backupset/offline"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/clusterkeep/clusterkeep/internal/writers"
)

func create(t *testing.T, o backup.Options) *backup.Result {
	t.Helper()
	res, err := backup.Create(tc.Context(t), o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDetectionOutcomes(t *testing.T) {
	nodes := tc.InProcess(t, 3)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	if _, err := c.SetValue(ctx, "Apps/Web", wire.Uint32Value("Port", 80)); err != nil {
		t.Fatal(err)
	}
	to := t.TempDir()

	// NotInstalled, no cluster named: a clear error, nothing written.
	_, err := backup.Create(ctx, backup.Options{DataDir: t.TempDir(), To: to})
	if !errors.Is(err, backup.ErrNoCluster) || !strings.Contains(err.Error(), "NotInstalled") {
		t.Fatalf("not installed: %v", err)
	}
	// Running: the host's node is a member; it is preferred.
	res := create(t, backup.Options{DataDir: nodes[1].Cfg.DataDir, To: to})
	if res.Mode != backup.ModeCluster || res.Node != nodes[1].Cfg.Name || !strings.Contains(res.Why, "local") {
		t.Fatalf("running: %+v", res)
	}
	// NotRunning: the node's files, offline.
	nodes[2].Stop()
	tc.Eventually(t, "node 3 NotRunning", func() error {
		if st, _ := client.GetNodeClusterState(nodes[2].Cfg.DataDir); st != client.NotRunning {
			return fmt.Errorf("state %s", st)
		}
		return nil
	})
	off := create(t, backup.Options{DataDir: nodes[2].Cfg.DataDir, To: to})
	if off.Mode != backup.ModeOffline || off.Node != nodes[2].Cfg.Name || off.Files != 2 {
		t.Fatalf("offline: %+v", off)
	}
	m, err := offline.Verify(off.Path, nil)
	if err != nil || !m.Offline || m.Cluster.Name != "inproc" {
		t.Fatalf("offline verify: %+v %v", m, err)
	}
	in, err := offline.Inspect(off.Path)
	if err != nil || in.Keys < 3 {
		t.Fatalf("inspect: %+v %v", in, err)
	}
	// From a host with no node, the cluster is named.
	remote := create(t, backup.Options{DataDir: t.TempDir(), Cluster: []string{nodes[0].API()}, To: to})
	if remote.Mode != backup.ModeCluster {
		t.Fatalf("remote: %+v", remote)
	}
	list, errs, err := offline.List(to)
	if len(list) != 3 || len(errs) != 0 || err != nil {
		t.Fatalf("list: %+v %v %v", list, errs, err)
	}
}

func TestSelectionSkipsDownAndPausedAndHonoursNode(t *testing.T) {
	nodes := tc.InProcess(t, 3)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	if _, err := c.PauseNode(ctx, nodes[1].Cfg.Name); err != nil {
		t.Fatal(err)
	}
	nodes[2].Stop()
	to := t.TempDir()
	o := backup.Options{DataDir: t.TempDir(), Cluster: []string{nodes[0].API()}, To: to}
	res := create(t, o)
	if res.Node != nodes[0].Cfg.Name {
		t.Fatalf("chose %s", res.Node)
	}
	skipped := fmt.Sprint(res.Skipped)
	if !strings.Contains(skipped, nodes[1].Cfg.Name+" Paused") || !strings.Contains(skipped, nodes[2].Cfg.Name+" Down") {
		t.Fatalf("skipped: %s", skipped)
	}
	for _, bad := range []struct{ node, why string }{{nodes[1].Cfg.Name, "Paused"}, {nodes[2].Cfg.Name, "Down"}} {
		o.Node = bad.node
		_, err := backup.Create(ctx, o)
		if !errors.Is(err, backup.ErrNodeRefused) || !strings.Contains(err.Error(), bad.why) {
			t.Fatalf("--node %s: %v", bad.node, err)
		}
	}
	o.Node = nodes[0].Cfg.Name
	if res := create(t, o); res.Node != nodes[0].Cfg.Name || !strings.Contains(res.Why, "--node") {
		t.Fatalf("--node accepted: %+v", res)
	}
}

func TestBackupContinuesWhenItsNodeStops(t *testing.T) {
	// The first node's application writer is slow to freeze, so the
	// backup is under way on it when it stops.
	data := filepath.Join(t.TempDir(), "app.dat")
	os.WriteFile(data, []byte("x"), 0o600)
	nodes := tc.InProcessWith(t, 3, func(i int, cfg *agent.Config) {
		if i == 0 {
			cfg.Writers = []writers.ExecConfig{{Name: "slow", Paths: []string{data}, Freeze: []string{"sleep", "3"}}}
		}
	})
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	if _, err := c.SetValue(ctx, "K", wire.Uint32Value("V", 7)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var res *backup.Result
	go func() {
		var err error
		res, err = backup.Create(ctx, backup.Options{DataDir: nodes[0].Cfg.DataDir, To: t.TempDir()})
		done <- err
	}()
	time.Sleep(time.Second)
	nodes[0].Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("result: %+v", res)
	if res.Node == nodes[0].Cfg.Name || len(res.Retried) == 0 {
		t.Fatalf("result: %+v", res)
	}
	if _, err := offline.Verify(res.Path, nil); err != nil {
		t.Fatal(err)
	}
}

// Concurrent writers run through a backup; the backup holds every write
// acknowledged before it began, and is the hive at one sequence number.
func TestBackupHoldsTheAcknowledgedHistory(t *testing.T) {
	nodes := tc.InProcess(t, 3)
	stop := tc.Writers(t, []string{nodes[0].API(), nodes[1].API(), nodes[2].API()}, 4)
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	res := create(t, backup.Options{DataDir: t.TempDir(), Cluster: []string{nodes[0].API()}, To: t.TempDir(), Compress: true})
	acks := stop()
	if _, err := offline.Verify(res.Path, nil); err != nil {
		t.Fatal(err)
	}
	err := offline.WithHive(mustOpen(t, res.Path), func(h *hive.Hive) error {
		return tc.CheckPointInTime(acks, began, res.HiveSeq, func(key string) (uint64, error) {
			v, err := h.GetValue(key, "n")
			return v.Uint64, err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustOpen(t *testing.T, path string) *backupset.Set {
	s, err := backupset.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
