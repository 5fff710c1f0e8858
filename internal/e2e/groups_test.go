package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// groupsLease are the group lease settings of the groups' tests: short,
// so failovers take a few seconds.
var groupsLease = []string{"--group-lease", "3s", "--group-lease-margin", "1s", "--group-lease-renew", "250ms"}

// rolesEnv is a local cluster of three agent processes with short group
// leases, a shared resource log, and helpers for the CLI.
type rolesEnv struct {
	t   *testing.T
	lc  *localcluster.Cluster
	env []string
	log string
	res string // the test resource's binary
	// stoppedIndexes are the nodes' applied indexes when they were
	// stopped for a restore.
	stoppedIndexes string
}

func newRolesEnv(t *testing.T) *rolesEnv {
	e := &rolesEnv{t: t, lc: tc.ProcessesWith(t, 3, groupsLease...), res: tc.ResourceBinary(t)}
	e.env = e.lc.Env()
	e.log = filepath.Join(t.TempDir(), "resources.log")
	// Whatever else a test proves, no resource ran on two nodes at once.
	// (Cleanups run last first: this runs while the agents still do.)
	t.Cleanup(func() {
		runs := e.runs()
		names := map[string]bool{}
		for _, r := range runs {
			names[r.Name] = true
		}
		for name := range names {
			for _, o := range tc.Overlaps(runs, name) {
				t.Errorf("ran on two nodes at once: %s", o)
			}
		}
		if t.Failed() {
			for _, r := range runs {
				t.Logf("run %s on %s %s..%s (%s)", r.Name, r.Node, r.Start.Format("15:04:05.000"), r.End.Format("15:04:05.000"), r.How)
			}
		}
	})
	return e
}

// refused runs a command that must fail with stderr saying want.
func (e *rolesEnv) refused(want string, args ...string) {
	e.t.Helper()
	out, errOut, code := cli(e.t, e.env, args...)
	if code == 0 || !strings.Contains(errOut, want) {
		e.t.Fatalf("%v: exit %d, stderr %q, stdout %q; want a failure saying %q", args, code, errOut, out, want)
	}
}

func (e *rolesEnv) must(args ...string) string {
	e.t.Helper()
	out, errOut, code := cli(e.t, e.env, args...)
	if code != 0 {
		e.t.Fatalf("%v: exit %d: %s", args, code, errOut)
	}
	return out
}

// resource adds a test resource named name with extra ckres flags.
func (e *rolesEnv) resource(name string, flags ...string) {
	e.t.Helper()
	e.resourceWith(name, nil, flags...)
}

// resourceWith adds a test resource with extra `resource add` flags (opts)
// and extra ckres flags.
func (e *rolesEnv) resourceWith(name string, opts []string, flags ...string) {
	e.t.Helper()
	argv, _ := json.Marshal(append([]string{e.res, "-log", e.log, "-name", name}, flags...))
	e.must(append([]string{"resource", "add", name, "--start", string(argv), "--monitor-interval", "500ms", "--monitor-timeout", "400ms", "--stop-timeout", "2s"}, opts...)...)
}

// statuses is every group's status, by name.
func (e *rolesEnv) statuses() map[string]placement.GroupStatus {
	e.t.Helper()
	var list []placement.GroupStatus
	if err := json.Unmarshal([]byte(e.must("group", "status", "--json")), &list); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]placement.GroupStatus{}
	for _, s := range list {
		out[s.Name] = s
	}
	return out
}

// lines are the shared log's lines.
func (e *rolesEnv) lines() []tc.LogLine {
	e.t.Helper()
	rl, err := tc.ReadResourceLog(e.log)
	if err != nil {
		e.t.Fatal(err)
	}
	return rl.Lines
}

// runsOf are the runs of resource name, in start order.
func (e *rolesEnv) runsOf(name string) []tc.Run {
	e.t.Helper()
	var out []tc.Run
	for _, r := range e.runs() {
		if r.Name == name {
			out = append(out, r)
		}
	}
	return out
}

// starts counts resource name's start lines on each node.
func (e *rolesEnv) starts(name string) map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for _, l := range e.lines() {
		if l.Event == "start" && l.Name == name {
			out[l.Node]++
		}
	}
	return out
}

// waitGroup polls the group's status until ok accepts it.
func (e *rolesEnv) waitGroup(name, what string, ok func(placement.GroupStatus) bool) placement.GroupStatus {
	e.t.Helper()
	var last placement.GroupStatus
	tc.Eventually(e.t, "group "+name+" "+what, func() error {
		var list []placement.GroupStatus
		out, errOut, code := cli(e.t, e.env, "group", "status", "--json")
		if code != 0 {
			return fmt.Errorf("group status: %s", errOut)
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		for _, s := range list {
			if strings.EqualFold(s.Name, name) {
				last = s
				if ok(s) {
					return nil
				}
			}
		}
		return fmt.Errorf("last status %+v", last)
	})
	return last
}

// onlineOn accepts a group online on node, as its owner itself reports it
// (a record's state alone may be older than the leader that shows it).
func onlineOn(node string) func(placement.GroupStatus) bool {
	return func(s placement.GroupStatus) bool {
		return s.State == "Online" && s.Owner == node && s.OwnerReport == "Online"
	}
}

func (e *rolesEnv) runs() []tc.Run {
	e.t.Helper()
	rl, err := tc.ReadResourceLog(e.log)
	if err != nil {
		e.t.Fatal(err)
	}
	return rl.Runs(50 * time.Millisecond)
}

// A group of two resources, the second depending on the first, starts in
// order on its preferred owner and stops in reverse.
func TestGroupStartsInOrderOnItsPreferredOwnerAndStopsInReverse(t *testing.T) {
	e := newRolesEnv(t)
	// db is ready once it listens (it logs its start line after that):
	// web must not start before db's check passes.
	port := tc.FreeAddr(t)
	e.resourceWith("db", []string{"--tcp", port}, "-listen", port)
	e.resource("web")
	e.must("group", "create", "shop", "--resources", "db,web", "--preferred-owners", "node2,node1")
	e.must("group", "online", "shop", "--wait")
	e.waitGroup("shop", "online on node2", onlineOn("node2"))
	e.must("group", "offline", "shop", "--wait")

	// Each run of web lies within a run of db on the same node: started
	// after it, stopped before it. (A loaded machine may make a node
	// fence itself and start the group again: more runs, same order.)
	runs := e.runs()
	var dbs, webs []tc.Run
	for _, r := range runs {
		if r.Node != "node2" {
			t.Fatalf("a run off the preferred owner: %+v", r)
		}
		if r.Name == "db" {
			dbs = append(dbs, r)
		} else {
			webs = append(webs, r)
		}
	}
	if len(dbs) == 0 || len(webs) == 0 {
		t.Fatalf("runs: %+v", runs)
	}
	for _, web := range webs {
		inside := false
		for _, db := range dbs {
			if db.Start.Before(web.Start) && web.End.Before(db.End) && db.How == "stop" && web.How == "stop" {
				inside = true
			}
		}
		if !inside {
			t.Fatalf("web's run %+v is not within a run of db (started after it, stopped before it): %+v", web, dbs)
		}
	}
}

// `group events` follows the groups' changes as they happen: a group
// brought online shows as Pending, then Online on its owner; taken
// offline, as Offline.
func TestGroupEventsFollowChanges(t *testing.T) {
	e := newRolesEnv(t)
	e.resource("ev")
	e.must("group", "create", "evg", "--resources", "ev", "--preferred-owners", "node3")
	cmd := exec.Command(tc.Binary(t), "group", "events", "--json", "--timeout", "2m")
	cmd.Env = append(os.Environ(), e.env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	events := make(chan map[string]any, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			}
		}
		close(events)
	}()
	next := func(want func(map[string]any) bool, what string) {
		t.Helper()
		deadline := time.After(time.Minute)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("group events ended before %s", what)
				}
				if ev["group"] == "evg" && want(ev) {
					return
				}
			case <-deadline:
				t.Fatalf("no event: %s", what)
			}
		}
	}
	next(func(ev map[string]any) bool { return ev["initial"] == true && ev["state"] == "Offline" }, "the initial state")
	e.must("group", "online", "evg")
	next(func(ev map[string]any) bool { return ev["state"] == "Online" && ev["owner"] == "node3" }, "online on node3")
	e.must("group", "offline", "evg")
	next(func(ev map[string]any) bool { return ev["state"] == "Offline" }, "offline")
}
