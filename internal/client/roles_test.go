package client_test

import (
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// The roles' configuration through the client and a follower: what is
// recorded reads back, and every refusal changes nothing.
func TestRolesInProcess(t *testing.T) {
	nodes := tc.InProcess(t, 3)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	info, err := c.GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var leader, follower *tc.Node
	for _, n := range nodes {
		if n.Cfg.Name == info.Leader {
			leader = n
		} else {
			follower = n
		}
	}
	fc := client.Node(follower.API()) // writes are forwarded to the leader
	lc := client.Node(leader.API())
	seq := func() uint64 {
		t.Helper()
		i, err := lc.GetClusterInformation(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return i.Seq
	}
	snapshot := func() ([]roles.ResourceInfo, []roles.Group) {
		t.Helper()
		rs, err := c.Resources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gs, err := c.Groups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rs, gs
	}

	web := roles.Resource{Name: "web", Type: "exec", Params: map[string]string{"start": `["/usr/bin/web", "--port", "8080"]`, "http": "http://127.0.0.1:8080/health"}, RestartLimit: 2}
	db := roles.Resource{Name: "db", Type: "exec", Params: map[string]string{"start": "/usr/bin/db --data '/var/lib/db'", "tcp": "127.0.0.1:5432"}}
	for _, r := range []roles.Resource{web, db} {
		out, err := fc.PutResource(ctx, r, wire.PutCreate)
		if err != nil {
			t.Fatalf("add %s: %v", r.Name, err)
		}
		if out.MonitorInterval != roles.Duration(roles.DefaultMonitorInterval) {
			t.Errorf("%s: defaults not filled: %+v", r.Name, out)
		}
	}
	grp := roles.Group{Name: "shop", Resources: []string{"db", "web"}, PreferredOwners: []string{nodes[1].Cfg.Name, nodes[0].Cfg.Name},
		FailoverThreshold: 2, Failback: roles.Failback{Policy: roles.FailbackWindow, WindowStart: "22:00", WindowEnd: "06:00"}, Wanted: roles.WantedOnline}
	if _, err := fc.PutGroup(ctx, grp, wire.PutCreate); err != nil {
		t.Fatalf("create the group: %v", err)
	}
	rs, gs := snapshot()
	if len(rs) != 2 || rs[0].Name != "db" || rs[0].Group != "shop" || rs[1].Group != "shop" {
		t.Fatalf("resources: %+v", rs)
	}
	if len(gs) != 1 || !reflect.DeepEqual(gs[0].Resources, []string{"db", "web"}) || gs[0].Failback.WindowEnd != "06:00" {
		t.Fatalf("groups: %+v", gs)
	}

	refusals := []struct {
		name string
		do   func() error
		want error
	}{
		{"removing a resource a group holds", func() error { return fc.RemoveResource(ctx, "WEB") }, client.ErrConflict},
		{"an owner that is not a member", func() error {
			g := grp
			g.Name, g.Resources, g.PreferredOwners = "other", nil, []string{"n9"}
			_, err := fc.PutGroup(ctx, g, wire.PutCreate)
			return err
		}, client.ErrInvalid},
		{"an unknown resource in a group", func() error {
			g := grp
			g.Name, g.Resources = "other", []string{"nosuch"}
			_, err := fc.PutGroup(ctx, g, "")
			return err
		}, client.ErrInvalid},
		{"a resource listed twice", func() error {
			g := grp
			g.Resources = []string{"db", "DB"}
			_, err := fc.PutGroup(ctx, g, "")
			return err
		}, client.ErrInvalid},
		{"a resource already in another group", func() error {
			g := grp
			g.Name = "other"
			_, err := fc.PutGroup(ctx, g, "")
			return err
		}, client.ErrInvalid},
		{"an unknown type", func() error {
			_, err := fc.PutResource(ctx, roles.Resource{Name: "x", Type: "docker"}, "")
			return err
		}, client.ErrInvalid},
		{"a negative restart limit", func() error {
			r := web
			r.RestartLimit = -1
			_, err := fc.PutResource(ctx, r, "")
			return err
		}, client.ErrInvalid},
		{"adding a resource that exists", func() error {
			_, err := fc.PutResource(ctx, db, wire.PutCreate)
			return err
		}, client.ErrConflict},
		{"changing a group that does not exist", func() error {
			g := grp
			g.Name, g.Resources = "nosuch", nil
			_, err := fc.PutGroup(ctx, g, wire.PutReplace)
			return err
		}, client.ErrNotFound},
		{"removing a group that does not exist", func() error { return fc.RemoveGroup(ctx, "nosuch") }, client.ErrNotFound},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			before := seq()
			err := r.do()
			if !errors.Is(err, r.want) {
				t.Fatalf("got %v, want %v", err, r.want)
			}
			if after := seq(); after != before {
				t.Errorf("hive sequence moved from %d to %d", before, after)
			}
			if rs2, gs2 := snapshot(); !reflect.DeepEqual(rs2, rs) || !reflect.DeepEqual(gs2, gs) {
				t.Errorf("the roles changed:\n%+v\n%+v", rs2, gs2)
			}
		})
	}

	t.Run("concurrent edits keep every group's resources recorded", func(t *testing.T) {
		// Racing: a group taking in a resource, and that resource's
		// removal. Whatever the order, no group may end up naming a
		// resource that is gone.
		for i := range 5 {
			spare := roles.Resource{Name: "spare", Type: "exec", Params: map[string]string{"start": "/bin/true"}}
			if _, err := c.PutResource(ctx, spare, ""); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				g := roles.Group{Name: "race", Resources: []string{"spare"}}
				_, _ = fc.PutGroup(ctx, g, "")
			}()
			go func() {
				defer wg.Done()
				_ = lc.RemoveResource(ctx, "spare")
			}()
			wg.Wait()
			rs, gs := snapshot()
			have := map[string]bool{}
			for _, r := range rs {
				have[r.Name] = true
			}
			for _, g := range gs {
				for _, r := range g.Resources {
					if !have[r] {
						t.Fatalf("round %d: group %s names %s, which is gone", i, g.Name, r)
					}
				}
			}
			_ = c.RemoveGroup(ctx, "race")
		}
	})

	t.Run("remove the group, then its resources", func(t *testing.T) {
		if err := fc.RemoveGroup(ctx, "Shop"); err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{"web", "db", "spare"} {
			if err := fc.RemoveResource(ctx, r); err != nil && !(r == "spare" && errors.Is(err, client.ErrNotFound)) {
				t.Fatalf("remove %s: %v", r, err)
			}
		}
		if rs, gs := snapshot(); len(rs) != 0 || len(gs) != 0 {
			t.Fatalf("left: %+v %+v", rs, gs)
		}
	})
}
