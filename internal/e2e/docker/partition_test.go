package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/backupset/offline"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// One node at a time is cut off the network (docker network disconnect,
// then connect again) while two clients on the host keep writing: first the
// leader, then the node a backup is being taken on, as the checkpoint
// begins and in the middle of storing. There is never a second leader that
// takes writes: the cut-off node acknowledges nothing, the majority keeps
// one leader and keeps taking writes, and every acknowledged write ends on
// all three nodes. Each backup either completes through the majority
// (verifies, and holds every write acknowledged before it began) or fails
// cleanly (an error, and nothing more in backup list).
func TestCutOffANodeDuringWritesAndBackups(t *testing.T) {
	c := newCluster(t, "cut")
	// Enough data that storing a backup takes more than one read.
	h, err := c.open(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 16 {
		blob := strings.Repeat(string(rune('a'+i)), 1<<20)
		if _, err := h.SetValue(ctx(t), fmt.Sprintf("Blobs/b%02d", i), wire.BinaryValue("data", []byte(blob))); err != nil {
			t.Fatal(err)
		}
	}
	w := c.startWriters("Cut", 2)
	w.waitMore("writes before any cut", 30)
	var cutSide []string // keys written through a cut-off node

	// The leader is cut off.
	leader := c.leader()
	began := time.Now()
	c.cut(leader)
	cutSide = append(cutSide, c.checkCutOff(leader)...)
	w.waitMore("the majority takes writes while "+leader.name+" is cut off", 30)
	c.heal(leader)
	c.waitRejoined(leader)
	t.Logf("leader %s cut off and back: %v", leader.name, time.Since(began).Round(time.Millisecond))

	to := t.TempDir()
	var listed []string
	for _, when := range []string{"checkpoint", "store"} {
		began := time.Now()
		acked := w.snapshot()
		p := &cutter{c: c, when: when}
		o := c.backupOptions(to)
		o.Progress, o.Log = p, slog.New(&chosenLog{t: t, p: p})
		// The deadline bounds a backup stuck on a silent connection to the
		// cut-off node (a partition is silent: nothing refuses or resets);
		// failing there is a clean failure, which is allowed.
		bctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := backup.Create(bctx, o)
		cancel()
		if p.err != nil {
			t.Fatalf("cut during the backup: %v", p.err)
		}
		if p.cut == nil {
			t.Fatalf("the backup ended (%v) before the %s phase cut a node", err, when)
		}
		if err == nil {
			t.Logf("backup with %s cut off during the %s: completed on %s (after %v) in %v", p.cut.name, when, res.Node, res.Retried, time.Since(began).Round(time.Millisecond))
			c.checkBackupHolds(res, acked, began)
			listed = append(listed, res.Path)
		} else {
			t.Logf("backup with %s cut off during the %s: failed after %v: %v", p.cut.name, when, time.Since(began).Round(time.Millisecond), err)
		}
		c.checkListed(to, listed)
		cutSide = append(cutSide, c.writeMustFail(p.cut, "backup-"+when))
		c.heal(p.cut)
		c.waitRejoined(p.cut)
	}

	// Healed, a backup completes, verifies and holds every write
	// acknowledged before it began.
	began = time.Now()
	acked := w.snapshot()
	res, err := backup.Create(ctx(t), c.backupOptions(to))
	if err != nil {
		t.Fatal(err)
	}
	c.checkBackupHolds(res, acked, began)
	c.checkListed(to, append(listed, res.Path))

	acks := w.stop()
	c.checkAcked("Cut", acks)
	// Nothing written through a cut-off node appeared later either.
	for _, n := range c.nodes {
		text, err := c.export(n, "CutSide")
		if errors.Is(err, client.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range cutSide {
			if strings.Contains(strings.ToLower(text), strings.ToLower(fmt.Sprintf("%q", k))) {
				t.Errorf("%s holds %s, written through a cut-off node and not acknowledged", n.name, k)
			}
		}
	}
	c.waitAllUp()
}

// checkCutOff checks, from both sides, that the cut-off node n takes no
// writes and the others keep one leader; it returns the keys it tried to
// write through n.
func (c *cluster) checkCutOff(n *node) []string {
	c.t.Helper()
	// At once, while it may still believe it leads.
	keys := []string{c.writeMustFail(n, "at-once")}
	var others []*node
	for _, m := range c.nodes {
		if m != n {
			others = append(others, m)
		}
	}
	var leader *node
	c.eventually("the majority agrees on one leader among itself", time.Minute, func() error {
		ids := map[string]*node{}
		var leaderIDs []string
		for _, m := range others {
			st, err := c.localStatus(m)
			if err != nil {
				return err
			}
			ids[st.NodeID] = m
			leaderIDs = append(leaderIDs, st.LeaderID)
		}
		if leaderIDs[0] == "" || leaderIDs[0] != leaderIDs[1] || ids[leaderIDs[0]] == nil {
			return fmt.Errorf("leaders seen by %s and %s: %q", others[0].name, others[1].name, leaderIDs)
		}
		leader = ids[leaderIDs[0]]
		return nil
	})
	c.eventually("the majority's cluster information", time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		info, err := c.nodeClient(others[0]).GetClusterInformation(ctx)
		if err != nil {
			return err
		}
		for _, ni := range info.Nodes {
			if ni.Name == n.name && ni.State == "Up" {
				return fmt.Errorf("%s still Up", n.name)
			}
		}
		if info.Leader != leader.name {
			return fmt.Errorf("leader %q, want %s", info.Leader, leader.name)
		}
		return nil
	})
	c.eventually(n.name+" no longer claims to lead", time.Minute, func() error {
		st, err := c.localStatus(n)
		if err != nil {
			return err
		}
		if st.RaftState == "Leader" {
			return errors.New("it still says Leader")
		}
		return nil
	})
	// Its cluster information (a linearizable read) fails: it knows no
	// leader it can reach.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if info, err := c.nodeClient(n).GetClusterInformation(ctx); err == nil {
		c.t.Fatalf("the cut-off %s answered cluster information: %+v", n.name, info)
	}
	c.t.Logf("%s cut off: the majority leads through %s; %s acknowledges no write", n.name, leader.name, n.name)
	return append(keys, c.writeMustFail(n, "later"))
}

// writeMustFail sends a write to node n only (no failover) and fails the
// test if it is acknowledged. It returns the key.
func (c *cluster) writeMustFail(n *node, tag string) string {
	c.t.Helper()
	key := fmt.Sprintf("CutSide/%s-%s-%d", n.name, tag, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if seq, err := c.nodeClient(n).SetValue(ctx, key, wire.Uint32Value("v", 1)); err == nil {
		c.t.Fatalf("the cut-off %s acknowledged a write (%s at seq %d)", n.name, key, seq)
	}
	return key
}

// waitRejoined waits until the healed node n is Up and follows the
// cluster's leader again.
func (c *cluster) waitRejoined(n *node) {
	c.t.Helper()
	c.eventually(n.name+" back in the cluster", 2*time.Minute, func() error {
		info, err := c.info()
		if err != nil {
			return err
		}
		if err := allUp(info); err != nil {
			return err
		}
		st, err := c.localStatus(n)
		if err != nil {
			return err
		}
		if st.LeaderID != info.LeaderID {
			return fmt.Errorf("%s follows %q, the cluster's leader is %s", n.name, st.LeaderID, info.Leader)
		}
		return nil
	})
}

// checkBackupHolds checks a completed backup: backup verify passes, and it
// holds every write acknowledged before it began.
func (c *cluster) checkBackupHolds(res *backup.Result, acked []ack, began time.Time) {
	c.t.Helper()
	if _, errOut, code := c.hostCLI("backup", "verify", res.Path); code != 0 {
		c.t.Fatalf("backup verify %s: exit %d: %s", res.Path, code, errOut)
	}
	text, err := offline.Export(res.Path)
	if err != nil {
		c.t.Fatal(err)
	}
	keys, err := keysOf(string(text))
	if err != nil {
		c.t.Fatal(err)
	}
	n := 0
	for _, a := range acked {
		if !a.done.Before(began) {
			continue
		}
		n++
		if !keys[strings.ToLower(a.key)] || a.seq > res.HiveSeq {
			c.t.Fatalf("backup at seq %d lacks %s (seq %d), acknowledged before it began", res.HiveSeq, a.key, a.seq)
		}
	}
	c.t.Logf("backup %s verifies and holds all %d writes acknowledged before it began", res.Path, n)
}

// checkListed checks that backup list shows exactly the sets want.
func (c *cluster) checkListed(dir string, want []string) {
	c.t.Helper()
	out, errOut, code := c.hostCLI("backup", "list", "--json", dir)
	if code != 0 {
		c.t.Fatalf("backup list: exit %d: %s", code, errOut)
	}
	var l struct {
		Backups []offline.Summary `json:"backups"`
	}
	jsonOf(c.t, out, &l)
	var got []string
	for _, s := range l.Backups {
		got = append(got, s.Path)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		c.t.Fatalf("backup list shows %v, want %v", got, want)
	}
}

// snapshot is a copy of the writes acknowledged so far.
func (w *writers) snapshot() []ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acks)
}

// cutter is the backup program's progress display, used to cut off the
// node the backup runs on at a chosen moment: as the checkpoint begins, or
// at the first bytes stored. It cuts once.
type cutter struct {
	c    *cluster
	when string // checkpoint or store

	mu     sync.Mutex
	chosen string // the node the backup program last chose
	cut    *node
	err    error
}

func (p *cutter) Phase(name string, total int64) {
	if name == "checkpoint" && p.when == "checkpoint" {
		p.cutChosen()
	}
}

func (p *cutter) Add(n int64) {
	if p.when == "store" {
		p.cutChosen()
	}
}

func (p *cutter) Done() {}

func (p *cutter) cutChosen() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut != nil || p.err != nil {
		return
	}
	if p.chosen == "" {
		p.err = errors.New("the backup program's log did not name the node it chose (\"backing up\", node=...)")
		return
	}
	for _, n := range p.c.nodes {
		if n.name == p.chosen {
			// Not c.cut: this may run on another goroutine than the test's.
			if _, err := docker(context.Background(), "network", "disconnect", p.c.peerNet, n.container); err != nil {
				p.err = err
				return
			}
			p.cut = n
			return
		}
	}
	p.err = fmt.Errorf("the backup program chose %q, no node of the test", p.chosen)
}

// chosenLog is the backup program's log: it learns which node the program
// chose from its "backing up" record, and shows every record in the
// test's log.
type chosenLog struct {
	t *testing.T
	p *cutter
}

func (h *chosenLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *chosenLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("backup program: " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		if r.Message == "backing up" && a.Key == "node" {
			h.p.mu.Lock()
			h.p.chosen = a.Value.String()
			h.p.mu.Unlock()
		}
		return true
	})
	h.t.Log(b.String())
	return nil
}

func (h *chosenLog) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h *chosenLog) WithGroup(string) slog.Handler { return h }
