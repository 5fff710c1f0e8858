package client_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// One in-process cluster serves these subtests, so the API server, the
// forwarding and the client run under the race detector.
func TestAPIAndClientInProcess(t *testing.T) {
	nodes := tc.InProcess(t, 3)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())

	// Find a follower to send requests through: they must be forwarded.
	info, err := c.GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var follower *tc.Node
	for _, n := range nodes {
		if n.Cfg.Name != info.Leader {
			follower = n
		}
	}
	fc := client.Node(follower.API())

	t.Run("writes through a follower reach the leader", func(t *testing.T) {
		seq, err := fc.SetValue(ctx, "Apps/Db", wire.StringValue("Conn", "postgres://x"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := fc.GetValue(ctx, "apps/db", "conn")
		if err != nil || v.String != "postgres://x" {
			t.Fatalf("linearizable read through the follower: %+v %v", v, err)
		}
		tc.Eventually(t, "follower's own copy", func() error {
			k, err := fc.GetKey(ctx, "Apps/Db", client.Stale())
			if err != nil || k.Change < seq {
				return fmt.Errorf("%+v %v", k, err)
			}
			return nil
		})
	})

	t.Run("errors map to sentinels and change nothing", func(t *testing.T) {
		before, _ := c.GetClusterInformation(ctx)
		cases := []struct {
			err  error
			want error
		}{
			{func() error { _, err := c.GetKey(ctx, "Nope"); return err }(), client.ErrKeyNotFound},
			{func() error { _, err := c.GetValue(ctx, "Apps/Db", "nope"); return err }(), client.ErrValueNotFound},
			{func() error { _, err := c.DeleteKey(ctx, "Nope"); return err }(), client.ErrKeyNotFound},
			{func() error { _, err := c.DeleteValue(ctx, "Apps/Db", "nope"); return err }(), client.ErrValueNotFound},
			{func() error {
				_, err := c.Txn(ctx, wire.Txn{Conds: []wire.Cond{{Kind: wire.CondKeyMissing, Key: "Apps/Db"}}, Ops: []wire.Op{wire.CreateKey("X")}})
				return err
			}(), client.ErrPrecondition},
			{func() error { _, err := c.SetValue(ctx, "a//b", wire.StringValue("x", "y")); return err }(), client.ErrInvalid},
			{func() error { _, err := c.GetKey(ctx, "a/../b"); return err }(), client.ErrInvalid},
			{func() error { _, err := c.EvictNode(ctx, "ghost"); return err }(), client.ErrNodeNotFound},
			{func() error { _, err := c.Watch(ctx, "a//b", 0, time.Second); return err }(), client.ErrInvalid},
		}
		for i, cs := range cases {
			if !errors.Is(cs.err, cs.want) {
				t.Errorf("case %d: got %v, want %v", i, cs.err, cs.want)
			}
		}
		after, _ := c.GetClusterInformation(ctx)
		if after.Seq != before.Seq {
			t.Fatalf("bad requests changed the hive: seq %d -> %d", before.Seq, after.Seq)
		}
	})

	t.Run("watch returns the next change under a subtree", func(t *testing.T) {
		k, err := c.GetKey(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		info, _ := c.GetClusterInformation(ctx)
		got := make(chan wire.WatchResult, 1)
		go func() {
			r, err := fc.Watch(ctx, "Apps/Web", info.Seq, 30*time.Second)
			if err != nil {
				t.Error(err)
			}
			got <- r
		}()
		if _, err := c.SetValue(ctx, "Other", wire.Uint32Value("x", 1)); err != nil {
			t.Fatal(err)
		}
		seq, err := c.SetValue(ctx, "Apps/Web/Conf", wire.Uint32Value("Port", 80))
		if err != nil {
			t.Fatal(err)
		}
		r := <-got
		if len(r.Events) == 0 || r.Events[len(r.Events)-1].Seq != seq || !strings.HasPrefix(r.Events[0].Key, "Apps/Web") {
			t.Fatalf("watch: %+v (root %+v)", r, k)
		}
		// A wait with no change returns no events.
		r, err = c.Watch(ctx, "Apps/Web", seq, 200*time.Millisecond)
		if err != nil || len(r.Events) != 0 {
			t.Fatalf("idle watch: %+v %v", r, err)
		}
	})

	t.Run("export and import round trip", func(t *testing.T) {
		if _, err := c.Txn(ctx, wire.Txn{Ops: []wire.Op{
			wire.SetValue("Roles/Web", wire.MultiStringValue("Owners", []string{"n1", "n2"})),
			wire.SetValue("Roles/Web", wire.BinaryValue("Blob", []byte{0, 1, 2})),
			wire.SetValue("Roles/Web/Res", wire.Uint64Value("Timeout", 1<<40)),
		}}); err != nil {
			t.Fatal(err)
		}
		var first bytes.Buffer
		if err := c.Export(ctx, "Roles", &first); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SetValue(ctx, "Roles/Web/Res", wire.Uint64Value("Extra", 1)); err != nil {
			t.Fatal(err)
		}
		res, err := c.Import(ctx, "Roles", bytes.NewReader(first.Bytes()), true)
		if err != nil || res.Keys != 3 {
			t.Fatalf("import: %+v %v", res, err)
		}
		var second bytes.Buffer
		c.Export(ctx, "Roles", &second)
		if first.String() != second.String() {
			t.Fatalf("round trip differs:\n%s---\n%s", first.String(), second.String())
		}
		// A whole-hive export imports without touching the cluster's subtree.
		var all bytes.Buffer
		c.Export(ctx, "", &all)
		res, err = c.Import(ctx, "", bytes.NewReader(all.Bytes()), false)
		if err != nil || res.SkippedReserved == 0 {
			t.Fatalf("whole import: %+v %v", res, err)
		}
		if _, err := c.Import(ctx, "", strings.NewReader("garbage"), false); !errors.Is(err, client.ErrInvalid) {
			t.Fatalf("garbage import: %v", err)
		}
	})

	t.Run("pause and resume", func(t *testing.T) {
		if _, err := fc.PauseNode(ctx, nodes[2].Cfg.Name); err != nil {
			t.Fatal(err)
		}
		info, _ := c.GetClusterInformation(ctx)
		for _, n := range info.Nodes {
			if n.Name == nodes[2].Cfg.Name && n.State != wire.NodePaused {
				t.Fatalf("paused node is %s", n.State)
			}
		}
		if _, err := c.ResumeNode(ctx, nodes[2].Cfg.Name); err != nil {
			t.Fatal(err)
		}
		info, _ = c.GetClusterInformation(ctx)
		for _, n := range info.Nodes {
			if n.State != wire.NodeUp {
				t.Fatalf("after resume: %+v", info.Nodes)
			}
		}
	})

	t.Run("a node leaves gracefully", func(t *testing.T) {
		leaving := nodes[2]
		st, err := client.Leave(ctx, leaving.API())
		if err != nil {
			t.Fatal(err)
		}
		if st.ClusterID != "" {
			t.Fatalf("left node still in cluster %s", st.ClusterID)
		}
		if s, _ := client.GetNodeClusterState(leaving.Cfg.DataDir); s != client.NotConfigured {
			t.Fatalf("left node state %s", s)
		}
		info, err := c.GetClusterInformation(ctx)
		if err != nil || len(info.Nodes) != 2 {
			t.Fatalf("after leave: %+v %v", info.Nodes, err)
		}
		if _, err := c.SetValue(ctx, "After", wire.Uint32Value("Leave", 1)); err != nil {
			t.Fatal(err)
		}
	})
}
