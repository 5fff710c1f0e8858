package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/client"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// A watch from a sequence number no member keeps the changes after stops
// with ErrCompacted, saying to re-read and watch again.
func TestWatchSaysWhenHistoryIsCompacted(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	for _, v := range []string{"a", "b"} {
		if _, err := c.SetValue(ctx, "Apps/W", wire.StringValue(v, v)); err != nil {
			t.Fatal(err)
		}
	}
	// A node keeps the changes since it started.
	nodes[0].Stop()
	nodes[0].Start()
	c = tc.Open(t, nodes[0].API())
	var out strings.Builder
	w := &watcher{c: c, path: "Apps", after: 0, out: &out, notice: t.Logf}
	err := w.run(ctx)
	if !errors.Is(err, client.ErrCompacted) || !strings.Contains(err.Error(), "the changes to Apps after sequence 0 are no longer kept by any member: re-read it (clusterkeep config export Apps)") {
		t.Fatalf("watch from 0 after a restart: %v", err)
	}
	if out.Len() != 0 {
		t.Fatalf("printed %q before saying the history is gone", out.String())
	}
}
