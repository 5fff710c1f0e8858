package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// Between an owner's death and the failover, group status says the owner
// is unreachable and when its lease ends (the group shows the owner's last
// state until then); group status takes a group's name.
func TestGroupStatusShowsAnUnreachableOwner(t *testing.T) {
	// A lease long enough that the window is seen on a loaded machine.
	e := &rolesEnv{t: t, lc: tc.ProcessesWith(t, 3, "--group-lease", "10s", "--group-lease-margin", "3s", "--group-lease-renew", "500ms"),
		res: tc.ResourceBinary(t)}
	e.env = e.lc.Env()
	e.log = filepath.Join(t.TempDir(), "resources.log")
	e.resource("r")
	e.resource("other")
	e.must("group", "create", "site", "--resources", "r", "--preferred-owners", "node2,node3", "--wanted", "online")
	e.must("group", "create", "spare", "--resources", "other", "--preferred-owners", "node3", "--wanted", "online")
	e.waitGroup("site", "online on node2", onlineOn("node2"))

	one := func() (placement.GroupStatus, error) {
		out, errOut, code := cli(t, e.env, "group", "status", "SITE", "--json")
		if code != 0 {
			return placement.GroupStatus{}, fmt.Errorf("group status SITE: exit %d: %s", code, errOut)
		}
		var list []placement.GroupStatus
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return placement.GroupStatus{}, err
		}
		if len(list) != 1 || list[0].Name != "site" {
			t.Fatalf("group status SITE: %s, want site's status alone", out)
		}
		return list[0], nil
	}
	if st, err := one(); err != nil || st.OwnerUnreachable {
		t.Fatalf("before the owner died: %+v %v", st, err)
	}
	e.refused("no group named nosuch (they are site, spare)", "group", "status", "nosuch")

	if _, err := e.lc.Stop("node2", true); err != nil {
		t.Fatal(err)
	}
	var seen placement.GroupStatus
	tc.Eventually(t, "site's owner shown unreachable", func() error {
		st, err := one()
		if err != nil {
			return err
		}
		if st.Owner != "node2" {
			t.Fatalf("site moved to %s before its owner was ever shown unreachable: %+v", st.Owner, st)
		}
		if !st.OwnerUnreachable {
			return fmt.Errorf("%+v", st)
		}
		seen = st
		return nil
	})
	if seen.OwnerLeaseEnds.IsZero() || (!seen.OwnerLastHeard.IsZero() && !seen.OwnerLeaseEnds.After(seen.OwnerLastHeard)) {
		t.Errorf("unreachable owner without its lease's end: %+v", seen)
	}
	if out := e.must("group", "status", "site"); !strings.Contains(out, "owner unreachable") || !strings.Contains(out, "node2") {
		t.Errorf("group status site while node2 is dead:\n%s", out)
	}
	st := e.waitGroup("site", "failed over to node3", onlineOn("node3"))
	if st.OwnerUnreachable {
		t.Errorf("after the failover, the owner still shown unreachable: %+v", st)
	}
}
