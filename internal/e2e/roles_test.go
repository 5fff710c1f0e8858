package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// The roles' configuration through the CLI against agent processes:
// resources and a group recorded and listed, bad input refused with a
// clear error and nothing changed.
func TestRolesCLI(t *testing.T) {
	lc := tc.Processes(t, 3)
	env := lc.Env()
	run := func(args ...string) (string, string, int) { return cli(t, env, args...) }
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := run(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	refused := func(want string, args ...string) {
		t.Helper()
		out, errOut, code := run(args...)
		if code == 0 || !strings.Contains(errOut, want) {
			t.Fatalf("%v: exit %d, stderr %q, stdout %q; want a failure saying %q", args, code, errOut, out, want)
		}
	}
	groupsJSON := func() string { return must("group", "list", "--json") }
	resourcesJSON := func() string { return must("resource", "list", "--json") }

	must("resource", "add", "db", "--start", "/usr/bin/db --data '/var/lib/db'", "--tcp", "127.0.0.1:5432")
	must("resource", "add", "web", "--start", `["/usr/bin/web", "-p", "80"]`, "--http", "http://127.0.0.1/health", "--restart-limit", "1")
	must("resource", "set", "web", "--monitor-interval", "30s")
	must("group", "create", "shop", "--resources", "db,web", "--preferred-owners", "node2,node1", "--failback", "window", "--failback-window", "22:00-06:00")

	var rs []map[string]any
	if err := json.Unmarshal([]byte(resourcesJSON()), &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[1]["name"] != "web" || rs[1]["monitor_interval"] != "30s" || rs[1]["restart_limit"].(float64) != 1 || rs[1]["group"] != "shop" {
		t.Fatalf("resources: %v", rs)
	}
	var gs []map[string]any
	if err := json.Unmarshal([]byte(groupsJSON()), &gs); err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0]["name"] != "shop" || gs[0]["wanted"] != "offline" || len(gs[0]["preferred_owners"].([]any)) != 2 {
		t.Fatalf("groups: %v", gs)
	}
	if out := must("group", "list"); !strings.Contains(out, "window 22:00-06:00") || !strings.Contains(out, "db,web") {
		t.Fatalf("group list:\n%s", out)
	}

	beforeR, beforeG := resourcesJSON(), groupsJSON()
	refused("in a group", "resource", "remove", "web")
	refused("not a member", "group", "create", "other", "--possible-owners", "node9")
	refused("no resource named nosuch", "group", "set", "shop", "--resources", "db,nosuch")
	refused("listed twice", "group", "set", "shop", "--resources", "db,db")
	refused(`unknown resource type "docker"`, "resource", "add", "x", "--type", "docker")
	refused("restart limit -2", "resource", "set", "db", "--restart-limit", "-2")
	refused("exists", "resource", "add", "db", "--start", "/bin/true")
	if r, g := resourcesJSON(), groupsJSON(); r != beforeR || g != beforeG {
		t.Fatalf("a refusal changed the roles:\n%s\n%s", r, g)
	}

	// A systemd resource is recorded anywhere; a node without systemd says
	// it could not run it.
	_, errOut, code := run("resource", "add", "unit", "--type", "systemd", "--unit", "nginx.service")
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		if code != 0 || !strings.Contains(errOut, "systemd does not run on") {
			t.Fatalf("systemd resource where systemd does not run: exit %d, %q", code, errOut)
		}
	} else if code != 0 {
		t.Fatalf("systemd resource: exit %d: %s", code, errOut)
	}
	refused("unit name", "resource", "add", "unit2", "--type", "systemd", "--unit", "nginx")
	must("resource", "remove", "unit")

	must("group", "set", "shop", "--resources", "web", "--wanted", "online")
	must("resource", "remove", "db")
	must("group", "remove", "shop")
	must("resource", "remove", "web")
	if r, g := resourcesJSON(), groupsJSON(); strings.TrimSpace(r) != "[]" || strings.TrimSpace(g) != "[]" {
		t.Fatalf("left:\n%s\n%s", r, g)
	}
}
