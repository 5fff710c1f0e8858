package cluster

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
)

// A change that commits between a roles change's read and its commit makes
// the latter read and check again: a group cannot take in a resource that
// was removed meanwhile, nor name an owner evicted meanwhile.
func TestRolesChangesRecheckWhatChangedMeanwhile(t *testing.T) {
	s := openSvc(t, filepath.Join(t.TempDir(), "n0"), "n0")
	if err := s.Create(ctx(t), "test"); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, s)
	spare := roles.Resource{Name: "spare", Type: "exec", Params: map[string]string{"start": "/bin/true"}}
	if err := s.PutResource(ctx(t), spare, PutCreate); err != nil {
		t.Fatal(err)
	}

	// The plan of a group taking "spare" in, with the resource removed
	// right after the plan's read: the first commit must fail its
	// condition, and the second plan must refuse.
	plans := 0
	err := s.changeRoles(ctx(t), func(rr RolesRecord) ([]hive.Cond, []hive.Op, error) {
		plans++
		if _, ok := rr.Resource("spare"); !ok {
			return nil, nil, errors.New("spare is gone")
		}
		if plans == 1 {
			if err := s.RemoveResource(ctx(t), "spare"); err != nil {
				t.Fatalf("remove meanwhile: %v", err)
			}
		}
		return nil, []hive.Op{hive.SetValue(reserved.GroupPath("race"), hive.StringValue("Config", `{"name":"race","resources":["spare"]}`))}, nil
	})
	if err == nil || err.Error() != "spare is gone" || plans != 2 {
		t.Fatalf("got %v after %d plans, want the second plan's refusal", err, plans)
	}
	rr, err := s.Roles()
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Groups) != 0 || len(rr.Resources) != 0 {
		t.Fatalf("recorded: %+v", rr)
	}

	// Refusals propose nothing: the sequence stays.
	if err := s.PutResource(ctx(t), spare, PutCreate); err != nil {
		t.Fatal(err)
	}
	before := s.Hive().Seq()
	err = s.PutGroup(ctx(t), roles.Group{Name: "g", Resources: []string{"spare"}, PossibleOwners: []string{"n0", "n7"}}, PutCreate)
	if !errors.Is(err, roles.ErrInvalid) {
		t.Fatalf("owner n7: %v", err)
	}
	if err := s.RemoveResource(ctx(t), "nosuch"); !errors.Is(err, ErrNoResource) {
		t.Fatalf("remove nosuch: %v", err)
	}
	if after := s.Hive().Seq(); after != before {
		t.Fatalf("refusals moved the sequence from %d to %d", before, after)
	}
	if err := s.PutGroup(ctx(t), roles.Group{Name: "g", Resources: []string{"spare"}, PossibleOwners: []string{"N0"}}, PutCreate); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveResource(ctx(t), "SPARE"); !errors.Is(err, ErrResourceInUse) {
		t.Fatalf("remove a resource in use: %v", err)
	}
}
