package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/agent"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/writers"
)

// The recorder is a real application that keeps appending records to a
// file: an 8-byte sequence number, a 4-byte length, the body, and a CRC-32
// of all that, each part written by its own system call so that a copy
// taken at a random moment can cut a record. It honours a freeze protocol:
// while ctl/freeze.req exists it writes nothing and says so in ctl/freeze.ack.
func runRecorder(file, ctl string) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		os.Exit(1)
	}
	req, ack := filepath.Join(ctl, "freeze.req"), filepath.Join(ctl, "freeze.ack")
	for seq := uint64(1); ; seq++ {
		for exists(req) {
			f.Sync()
			if !exists(ack) {
				os.WriteFile(ack, nil, 0o600)
			}
			time.Sleep(2 * time.Millisecond)
		}
		os.Remove(ack)
		body := make([]byte, 100+rand.IntN(4000))
		for i := range body {
			body[i] = byte(seq)
		}
		hdr := binary.BigEndian.AppendUint64(nil, seq)
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(body)))
		sum := crc32.ChecksumIEEE(append(append([]byte(nil), hdr...), body...))
		f.Write(hdr)
		f.Write(body)
		f.Write(binary.BigEndian.AppendUint32(nil, sum))
		time.Sleep(200 * time.Microsecond)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// checkRecords parses a copy of the recorder's file: every record whole,
// its checksum right, the sequence unbroken, nothing after the last.
func checkRecords(data []byte) (int, error) {
	n := 0
	for len(data) > 0 {
		if len(data) < 12 {
			return n, fmt.Errorf("torn header after record %d (%d bytes left)", n, len(data))
		}
		seq, size := binary.BigEndian.Uint64(data), binary.BigEndian.Uint32(data[8:])
		if seq != uint64(n+1) {
			return n, fmt.Errorf("record %d has sequence %d", n+1, seq)
		}
		if uint32(len(data)-12) < size+4 {
			return n, fmt.Errorf("torn record %d", seq)
		}
		if crc32.ChecksumIEEE(data[:12+size]) != binary.BigEndian.Uint32(data[12+size:]) {
			return n, fmt.Errorf("record %d fails its checksum", seq)
		}
		data = data[16+size:]
		n++
	}
	return n, nil
}

// singleNode starts one agent process with cfg's writers and returns its API.
func singleNode(t *testing.T, ws []writers.ExecConfig) string {
	dir := t.TempDir()
	cfg := agent.Config{DataDir: filepath.Join(dir, "node"), Name: "solo", API: tc.FreeAddr(t), Raft: tc.FreeAddr(t),
		Create: "solo", Writers: ws, HeartbeatTimeout: "300ms", ElectionTimeout: "300ms", LeaderLease: "150ms"}
	raw, _ := json.Marshal(cfg)
	file := filepath.Join(dir, "agent.json")
	os.WriteFile(file, raw, 0o600)
	agentProcess(t, "--config", file)
	tc.Eventually(t, "agent running", func() error {
		st, err := client.GetNodeClusterState(cfg.DataDir)
		if err != nil || st != client.Running {
			return fmt.Errorf("state %s %v", st, err)
		}
		return nil
	})
	return cfg.API
}

func TestApplicationWriterGuardsARealProcess(t *testing.T) {
	dir := t.TempDir()
	file, ctl := filepath.Join(dir, "records.log"), filepath.Join(dir, "ctl")
	os.MkdirAll(ctl, 0o700)
	rec := exec.Command(os.Args[0], file, ctl)
	rec.Env = append(os.Environ(), "CK_HELPER=recorder")
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Process.Kill(); rec.Wait() })
	w := writers.ExecConfig{Name: "recorder", Paths: []string{file}, Timeout: "10s",
		Freeze: []string{"sh", "-c", fmt.Sprintf("touch %[1]s/freeze.req; while [ ! -f %[1]s/freeze.ack ]; do sleep 0.005; done", ctl)},
		Thaw:   []string{"sh", "-c", fmt.Sprintf("rm -f %[1]s/freeze.req; while [ -f %[1]s/freeze.ack ]; do sleep 0.005; done", ctl)},
	}
	api := singleNode(t, []writers.ExecConfig{w})
	ctx := tc.Context(t)
	prev := 0
	for round := range 5 {
		time.Sleep(100 * time.Millisecond)
		b, err := client.StartBackup(ctx, api, shadow.BackupCopy)
		if err != nil {
			t.Fatal(err)
		}
		var id string
		for _, m := range b.Started.Writers {
			if m.Name == "recorder" {
				id = m.ID
			}
		}
		if err := b.AddComponent(ctx, id, "", "recorder"); err != nil {
			t.Fatal(err)
		}
		if err := b.PrepareForBackup(ctx); err != nil {
			t.Fatal(err)
		}
		set, err := b.DoSnapshotSet(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := b.Item(ctx, set.Items[0].Name)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		if _, err := b.BackupComplete(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := checkRecords(data)
		if err != nil {
			t.Fatalf("round %d: the copy is not consistent: %v", round, err)
		}
		if n <= prev {
			t.Fatalf("round %d: %d records, no more than the %d before: the application was not writing", round, n, prev)
		}
		prev = n
	}
	t.Logf("five consistent copies, the last with %d records", prev)
}

// runRequester is a backup program that starts a backup of every writer
// of the node at api and hangs in DoSnapshotSet until it is killed.
func runRequester(api string) {
	ctx := context.Background()
	b, err := client.StartBackup(ctx, api, shadow.BackupFull)
	if err != nil {
		os.Exit(2)
	}
	if b.AddAllComponents(ctx) != nil || b.PrepareForBackup(ctx) != nil {
		os.Exit(3)
	}
	b.DoSnapshotSet(ctx)
	os.Exit(0)
}

func TestRequesterKilledWhileWritersFrozen(t *testing.T) {
	dir := t.TempDir()
	logA, logB := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	os.WriteFile(filepath.Join(dir, "a.dat"), []byte("a"), 0o600)
	os.WriteFile(filepath.Join(dir, "b.dat"), []byte("b"), 0o600)
	phase := func(log, then string) []string {
		return []string{"sh", "-c", fmt.Sprintf("echo $CLUSTERKEEP_PHASE >> %s; %s", log, then)}
	}
	ws := []writers.ExecConfig{
		{Name: "fast", Paths: []string{filepath.Join(dir, "a.dat")}, Freeze: phase(logA, "true"), Thaw: phase(logA, "true")},
		// The slow writer's freeze outlasts the requester.
		{Name: "slow", Paths: []string{filepath.Join(dir, "b.dat")}, Freeze: phase(logB, "sleep 120"), Thaw: phase(logB, "true"), Timeout: "5m"},
	}
	api := singleNode(t, ws)
	req := exec.Command(os.Args[0], api)
	req.Env = append(os.Environ(), "CK_HELPER=requester")
	if err := req.Start(); err != nil {
		t.Fatal(err)
	}
	tc.Eventually(t, "writers frozen", func() error {
		a, _ := os.ReadFile(logA)
		b, _ := os.ReadFile(logB)
		if string(a) != "Freeze\n" || string(b) != "Freeze\n" {
			return fmt.Errorf("a %q b %q", a, b)
		}
		return nil
	})
	req.Process.Signal(syscall.SIGKILL)
	req.Wait()
	tc.Eventually(t, "writers thawed after the requester died", func() error {
		a, _ := os.ReadFile(logA)
		b, _ := os.ReadFile(logB)
		if string(a) != "Freeze\nThaw\n" || string(b) != "Freeze\nThaw\n" {
			return fmt.Errorf("a %q b %q", a, b)
		}
		return nil
	})
	// The failure is on record, and the node is free again.
	ctx := tc.Context(t)
	tc.Eventually(t, "slow writer failed at freeze", func() error {
		res, err := client.Node(api).Writers(ctx, false)
		if err != nil {
			return err
		}
		for _, st := range res.Writers {
			if st.Metadata.Name == "slow" && st.State != shadow.StateFailedAtFreeze {
				return fmt.Errorf("slow writer: %s %s", st.State, st.LastError)
			}
		}
		return nil
	})
	tc.Eventually(t, "node free for a new backup", func() error {
		b, err := client.StartBackup(ctx, api, shadow.BackupCopy)
		if err != nil {
			return err
		}
		return b.AbortBackup(ctx)
	})
}

// The record check catches a copy cut in the middle of a record.
func TestCheckRecordsCatchesTornCopy(t *testing.T) {
	var data []byte
	for seq := uint64(1); seq <= 3; seq++ {
		hdr := binary.BigEndian.AppendUint64(nil, seq)
		hdr = binary.BigEndian.AppendUint32(hdr, 10)
		rec := append(hdr, make([]byte, 10)...)
		data = append(data, binary.BigEndian.AppendUint32(rec, crc32.ChecksumIEEE(rec))...)
	}
	if n, err := checkRecords(data); err != nil || n != 3 {
		t.Fatalf("whole copy: %d %v", n, err)
	}
	for _, cut := range []int{len(data) - 1, len(data) - 20, 5} {
		if _, err := checkRecords(data[:cut]); err == nil {
			t.Errorf("copy cut at %d passed", cut)
		}
	}
	bad := append([]byte(nil), data...)
	bad[15] ^= 1
	if _, err := checkRecords(bad); err == nil {
		t.Error("flipped byte passed")
	}
}
