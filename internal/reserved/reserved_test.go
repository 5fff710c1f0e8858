package reserved_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

func open(t *testing.T) *hive.Hive {
	t.Helper()
	h, err := hive.Open(filepath.Join(t.TempDir(), hive.FileName), hive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// apply commits txn as the cluster service does: a system change, the
// only kind that may write the reserved subtree.
func apply(t *testing.T, h *hive.Hive, txn hive.Txn) error {
	t.Helper()
	res, err := h.Apply([]hive.Entry{{Txn: txn, System: true}})
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Err
}

func TestMembersReadWhatTheirOpsWrite(t *testing.T) {
	h := open(t)
	if ms, err := reserved.Members(h); err != nil || len(ms) != 0 {
		t.Fatalf("no members recorded: got %v, %v", ms, err)
	}
	want := []wire.Member{
		{ID: "a1", Name: "Alpha", RaftAddr: "10.0.0.1:7000", APIAddr: "10.0.0.1:7443"},
		{ID: "b2", Name: "beta", RaftAddr: "10.0.0.2:7000", APIAddr: "10.0.0.2:7443", Paused: true},
	}
	for _, m := range want {
		if err := apply(t, h, hive.Txn{Ops: append(reserved.MemberOps(m), reserved.NameOps(m)...)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := apply(t, h, hive.Txn{Ops: []hive.Op{hive.SetValue(reserved.NodePath("b2"), hive.Uint32Value("Drain", 1))}}); err != nil {
		t.Fatal(err)
	}
	want[1].Drain = true
	got, err := reserved.Members(h)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("members: got %+v, %v; want %+v", got, err, want)
	}
	if v, err := h.GetValue(reserved.NamePath("ALPHA"), "Id"); err != nil || v.String != "a1" {
		t.Fatalf("name record of Alpha: %+v, %v", v, err)
	}
}

func TestRolesChangeOnlyAtTheVersionRead(t *testing.T) {
	h := open(t)
	rr, err := reserved.ReadRoles(h)
	if err != nil || rr.Version != 0 || len(rr.Resources)+len(rr.Groups) != 0 {
		t.Fatalf("empty roles: %+v, %v", rr, err)
	}
	res := roles.Resource{Name: "Web", Type: "exec", Params: map[string]string{"start": "/bin/true"}}
	ops, err := reserved.PutResourceOps("", res)
	if err != nil {
		t.Fatal(err)
	}
	if err := apply(t, h, reserved.ChangeTxn(rr, nil, ops)); err != nil {
		t.Fatal(err)
	}
	// A second change planned against the same read must not commit.
	stale := rr
	ops, _ = reserved.PutResourceOps("", roles.Resource{Name: "Other", Type: "exec"})
	if err := apply(t, h, reserved.ChangeTxn(stale, nil, ops)); !errors.Is(err, hive.ErrPreconditionFailed) {
		t.Fatalf("a change planned on a stale read: %v, want a failed precondition", err)
	}
	rr, err = reserved.ReadRoles(h)
	if err != nil || rr.Version != 1 || len(rr.Resources) != 1 || rr.Resources[0].Name != "Web" {
		t.Fatalf("roles after one change: %+v, %v", rr, err)
	}
	g := roles.Group{Name: "G", Resources: []string{"web"}}
	gops, err := reserved.PutGroupOps("", g)
	if err != nil {
		t.Fatal(err)
	}
	// The group's owner must be a member: it is not.
	if err := apply(t, h, reserved.ChangeTxn(rr, reserved.OwnerConds([]string{"n1"}), gops)); !errors.Is(err, hive.ErrPreconditionFailed) {
		t.Fatalf("a group owned by no member: %v, want a failed precondition", err)
	}
	if err := apply(t, h, reserved.ChangeTxn(rr, nil, gops)); err != nil {
		t.Fatal(err)
	}
	rr, _ = reserved.ReadRoles(h)
	if rr.GroupOf("WEB") != "G" {
		t.Fatalf("web's group: %q", rr.GroupOf("WEB"))
	}
	if _, ok := rr.Group("g"); !ok {
		t.Fatal("group g not found by another case")
	}
	// A new spelling replaces the record.
	ops, _ = reserved.PutResourceOps("Web", roles.Resource{Name: "WEB", Type: "exec"})
	if err := apply(t, h, reserved.ChangeTxn(rr, nil, ops)); err != nil {
		t.Fatal(err)
	}
	rr, _ = reserved.ReadRoles(h)
	if len(rr.Resources) != 1 || rr.Resources[0].Name != "WEB" {
		t.Fatalf("respelled resource: %+v", rr.Resources)
	}
}

func TestPlacementsScheduleAndLeaseSwapOnlyFromWhatWasRead(t *testing.T) {
	h := open(t)
	if _, ok := reserved.SwapPlacementTxn("G", "", ""); ok {
		t.Fatal("removing a missing placement must be nothing to do")
	}
	txn, _ := reserved.SwapPlacementTxn("G", "", "one")
	if err := apply(t, h, txn); err != nil {
		t.Fatal(err)
	}
	txn, _ = reserved.SwapPlacementTxn("G", "stale", "two")
	if err := apply(t, h, txn); !errors.Is(err, hive.ErrPreconditionFailed) {
		t.Fatalf("swap from a stale placement: %v", err)
	}
	if p, err := reserved.Placement(h, "g"); err != nil || p != "one" {
		t.Fatalf("placement of g: %q, %v", p, err)
	}
	if all, err := reserved.Placements(h); err != nil || !reflect.DeepEqual(all, map[string]string{"g": "one"}) {
		t.Fatalf("placements: %v, %v", all, err)
	}

	if err := apply(t, h, reserved.AskRunTxn("now")); !errors.Is(err, hive.ErrPreconditionFailed) {
		t.Fatalf("a run asked of no schedule: %v", err)
	}
	for _, txn := range []hive.Txn{reserved.SetScheduleTxn("cfg"), reserved.SwapScheduleStateTxn("cfg", "", "s1"), reserved.AskRunTxn("t1")} {
		if err := apply(t, h, txn); err != nil {
			t.Fatal(err)
		}
	}
	if err := apply(t, h, reserved.SwapScheduleStateTxn("other", "s1", "s2")); !errors.Is(err, hive.ErrPreconditionFailed) {
		t.Fatalf("a state swap for a changed configuration: %v", err)
	}
	if c, st, rn, err := reserved.Schedule(h); err != nil || c != "cfg" || st != "s1" || rn != "t1" {
		t.Fatalf("schedule: %q %q %q %v", c, st, rn, err)
	}
	if err := apply(t, h, reserved.SetScheduleTxn("")); err != nil {
		t.Fatal(err)
	}
	if c, st, rn, err := reserved.Schedule(h); err != nil || c+st+rn != "" {
		t.Fatalf("removed schedule: %q %q %q %v", c, st, rn, err)
	}

	if err := apply(t, h, reserved.RaiseLeaseMaxTxn(0, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := apply(t, h, reserved.RaiseLeaseMaxTxn(0, time.Hour)); !errors.Is(err, hive.ErrPreconditionFailed) {
		t.Fatalf("a raise from a stale lease: %v", err)
	}
	if d, err := reserved.LeaseMax(h); err != nil || d != time.Minute {
		t.Fatalf("lease max: %v, %v", d, err)
	}
}

func TestSecurityRecords(t *testing.T) {
	h := open(t)
	if _, _, _, err := reserved.Authority(h); !errors.Is(err, reserved.ErrNoAuthority) {
		t.Fatalf("no authority recorded: %v", err)
	}
	ca, err := security.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := reserved.TrustOps(ca, "join-secret", "admin-token")
	if err != nil {
		t.Fatal(err)
	}
	if err := apply(t, h, hive.Txn{Ops: ops}); err != nil {
		t.Fatal(err)
	}
	cert, key, secret, err := reserved.Authority(h)
	if err != nil || secret != "join-secret" {
		t.Fatalf("authority: %v, secret %q", err, secret)
	}
	if _, err := security.ParseCA(cert, key); err != nil {
		t.Fatalf("recorded authority does not parse: %v", err)
	}
	var toks []wire.Token
	if err := reserved.EachToken(h, func(id string, tk wire.Token) {
		if id != security.TokenID("admin-token") {
			t.Errorf("token recorded under %q", id)
		}
		toks = append(toks, tk)
	}); err != nil {
		t.Fatal(err)
	}
	if len(toks) != 1 || toks[0].Name != "admin" || !reflect.DeepEqual(toks[0].Roles, []security.Role{security.RoleOperator, security.RoleBackup}) {
		t.Fatalf("tokens: %+v", toks)
	}
	for path, want := range map[string]bool{"Cluster/Security": true, "cluster/security/Tokens/x": true, "Cluster": false, "Cluster/Nodes": false, "a//b": false} {
		if reserved.IsSecret(path) != want {
			t.Errorf("IsSecret(%q) = %v", path, !want)
		}
	}
}
