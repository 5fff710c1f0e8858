package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

func copyFileE2E(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// The hive commits applied entries in groups, off the acknowledgement
// path; the consensus log is what makes them durable. A node whose hive
// lost everything since a commit (simulated: the file as of a commit is put
// back after a kill -9) comes back to the cluster's state by replaying its
// log. Tried on a follower, then on the leader.
func TestHiveThatLostItsLastGroupsCatchesUpByReplay(t *testing.T) {
	lc := tc.Processes(t, 3)
	ctx := tc.Context(t)
	c := tc.Open(t, lc.APIAddrs())
	next := 0
	write := func(n int) {
		t.Helper()
		for range n {
			if _, err := c.SetValue(ctx, fmt.Sprintf("T/k%d", next%50), wire.Uint64Value("v", uint64(next))); err != nil {
				t.Fatal(err)
			}
			next++
		}
	}
	export := func(cl *client.Cluster, opts ...client.ReadOption) (string, error) {
		var b bytes.Buffer
		err := cl.Export(ctx, "T", &b, opts...)
		return b.String(), err
	}
	write(100)
	for _, role := range []string{"follower", "leader"} {
		victim := leader(t, c)
		if role == "follower" {
			for _, nd := range lc.Nodes {
				if nd.Name != victim {
					victim = nd.Name
					break
				}
			}
		}
		// A clean stop commits the hive: keep the file as of that commit.
		nd, err := lc.Stop(victim, false)
		if err != nil {
			t.Fatal(err)
		}
		db := filepath.Join(nd.DataDir, hive.FileName)
		kept := filepath.Join(t.TempDir(), "clusdb-as-of-a-commit")
		copyFileE2E(t, db, kept)
		if _, err := lc.Start(ctx, victim); err != nil {
			t.Fatal(err)
		}
		write(300)
		want, err := export(c)
		if err != nil {
			t.Fatal(err)
		}
		tc.Eventually(t, victim+" applied the writes", func() error {
			got, err := export(client.Node(nd.API), client.Stale())
			if err == nil && got != want {
				err = errors.New("not yet")
			}
			return err
		})
		// The crash and the lost groups.
		if _, err := lc.Stop(victim, true); err != nil {
			t.Fatal(err)
		}
		copyFileE2E(t, kept, db)
		h, err := hive.OpenReadOnly(db)
		if err != nil {
			t.Fatal(err)
		}
		var lost bytes.Buffer
		if err := h.Export(&lost, "T"); err != nil {
			t.Fatal(err)
		}
		h.Close()
		if lost.String() == want {
			t.Fatal("the kept file already holds the writes: the test proves nothing")
		}
		// An offline read of the stopped node says its hive lags its log.
		if _, errOut, code := cli(t, nil, "config", "export", "T", "--data-dir", nd.DataDir); code != 0 || !strings.Contains(errOut, "consensus log holds entries") {
			t.Fatalf("offline read of a hive behind its log: exit %d, stderr %q", code, errOut)
		}
		if _, err := lc.Start(ctx, victim); err != nil {
			t.Fatal(err)
		}
		tc.Eventually(t, victim+" replayed its log", func() error {
			got, err := export(client.Node(nd.API), client.Stale())
			if err == nil && got != want {
				err = errors.New("not level with the cluster yet")
			}
			return err
		})
		write(20)
	}
	final, err := export(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range lc.Nodes {
		tc.Eventually(t, nd.Name+" holds the final state", func() error {
			got, err := export(client.Node(nd.API), client.Stale())
			if err == nil && got != final {
				err = errors.New("differs")
			}
			return err
		})
	}
}
