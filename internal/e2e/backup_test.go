package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/agent"
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/backupset/offline"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// A backup process killed with SIGKILL at any moment leaves no set that
// list shows; the next backup succeeds, and what is listed verifies.
func TestBackupKilledAtAnyMomentLeavesNoSet(t *testing.T) {
	nodes := tc.InProcessWith(t, 3, func(i int, cfg *agent.Config) { cfg.SessionTimeout = "2s" })
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	// Enough data that the store takes a while.
	for i := range 24 {
		if _, err := c.SetValue(ctx, fmt.Sprintf("Blobs/b%d", i), wire.BinaryValue("data", bytes.Repeat([]byte{byte(i)}, 1<<20))); err != nil {
			t.Fatal(err)
		}
	}
	to := t.TempDir()
	env := []string{client.EnvCluster + "=" + nodes[0].API()}
	for _, after := range []time.Duration{0, 10 * time.Millisecond, 30 * time.Millisecond, 50 * time.Millisecond, 60 * time.Millisecond, 70 * time.Millisecond, 80 * time.Millisecond, 90 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 250 * time.Millisecond, 400 * time.Millisecond} {
		cmd := exec.Command(tc.Binary(t), "backup", "create", "--to", to, "--data-dir", t.TempDir(), "--json")
		cmd.Env = append(os.Environ(), env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(after)
		cmd.Process.Kill()
		cmd.Wait()
		sets, errs, err := offline.List(to)
		if len(errs) != 0 || err != nil {
			t.Fatalf("killed after %v: list: %v %v", after, errs, err)
		}
		for _, s := range sets {
			if _, err := offline.Verify(s.Path, nil); err != nil {
				t.Fatalf("killed after %v: a listed set does not verify: %v", after, err)
			}
		}
		partial := 0
		entries, _ := os.ReadDir(to)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				partial++
			}
		}
		t.Logf("killed after %v: %d complete sets listed, %d partial left hidden", after, len(sets), partial)
	}
	// The next backup succeeds (waiting out any session a killed one left)
	// and clears the partial sets of the dead ones.
	out, errOut, code := cli(t, env, "backup", "create", "--to", to, "--data-dir", t.TempDir(), "--json")
	if code != 0 {
		t.Fatalf("backup after kills: %s", errOut)
	}
	var res backup.Result
	json.Unmarshal([]byte(out), &res)
	if _, err := offline.Verify(res.Path, nil); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(to)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("partial set left after the next backup: %s", e.Name())
		}
	}
	if _, errOut, code := cli(t, env, "backup", "verify", filepath.Join(to, filepath.Base(res.Path))); code != 0 {
		t.Fatalf("cli verify: %s", errOut)
	}
}

// A backup killed with SIGKILL mid-session, while it waits on its target
// (here an S3 endpoint that accepts connections and never answers), does
// not hold its node until the session timeout: the node notices its held
// connection close, aborts the session saying the requester is gone, and
// takes the next backup at once.
func TestBackupKilledMidSessionFreesItsNode(t *testing.T) {
	lc := tc.ProcessesWith(t, 1, "--session-timeout", "10m")
	api := lc.Nodes[0].API
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- conn // held open, never answered
		}
	}()
	cmd := exec.Command(tc.Binary(t), "backup", "create", "--to", "s3://backups/cluster", "--data-dir", t.TempDir(),
		"--s3-endpoint", "http://"+ln.Addr().String(), "--s3-path-style", "--s3-region", "us-east-1")
	cmd.Env = append(os.Environ(), client.EnvCluster+"="+api, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The target is reached after the snapshot set is taken: the session
	// is open, and no call of the backup's is in flight.
	select {
	case conn := <-accepted:
		defer conn.Close()
	case <-tc.Context(t).Done():
		t.Fatal("the backup never reached its target")
	}
	ctx := tc.Context(t)
	if b, err := client.StartBackup(ctx, api, shadow.BackupCopy); !errors.Is(err, client.ErrBusy) {
		if err == nil {
			b.AbortBackup(ctx)
		}
		t.Fatalf("the node is not in the killed backup's session: %v", err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	tc.Eventually(t, "node free for a new backup", func() error {
		b, err := client.StartBackup(ctx, api, shadow.BackupCopy)
		if err != nil {
			return err
		}
		return b.AbortBackup(ctx)
	})
	log, _ := os.ReadFile(lc.Nodes[0].Log)
	if !strings.Contains(string(log), "requester is gone") {
		t.Fatalf("the node's log does not say the requester is gone:\n%s", log)
	}
}
