package placement

import (
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// world is a cluster of nodes n1..n3, all live, and one group "g" of one
// exec resource, preferred on n1 then n2 then n3.
type world struct {
	in Input
}

func newWorld() *world {
	g := roles.Group{Name: "g", Resources: []string{"r"}, PreferredOwners: []string{"n1", "n2", "n3"},
		FailoverThreshold: 2, Wanted: roles.WantedOnline}
	g.Normalize()
	w := &world{in: Input{Now: t0, Groups: []roles.Group{g},
		Resources: map[string]roles.Resource{"r": {Name: "r", Type: "exec"}}, Records: map[string]Record{}}}
	for _, n := range []string{"n1", "n2", "n3"} {
		w.in.Nodes = append(w.in.Nodes, Node{ID: "id-" + n, Name: n, Member: true, Live: true, MayRun: true, Reports: map[string]GroupReport{}})
	}
	return w
}

func (w *world) node(name string) *Node {
	for i := range w.in.Nodes {
		if w.in.Nodes[i].Name == name {
			return &w.in.Nodes[i]
		}
	}
	panic(name)
}

func (w *world) group() *roles.Group { return &w.in.Groups[0] }

// report makes the named node report state for the group's current epoch.
func (w *world) report(name, state, errMsg string) {
	w.node(name).Reports["g"] = GroupReport{Group: "g", Epoch: w.in.Records["g"].Epoch, State: state, Error: errMsg}
}

// step decides once and applies the change; it returns the group's record.
func (w *world) step(t *testing.T) Record {
	t.Helper()
	for name, r := range Decide(w.in) {
		if r == nil {
			delete(w.in.Records, name)
		} else {
			w.in.Records[name] = *r
		}
	}
	return w.in.Records["g"]
}

func want(t *testing.T, r Record, owner string, run bool, state string) {
	t.Helper()
	if r.OwnerName != owner || r.Run != run || r.State != state {
		t.Fatalf("record %+v; want owner %q run %v state %s", r, owner, run, state)
	}
}

func TestPlacedOnThePreferredOwnerAndOnline(t *testing.T) {
	w := newWorld()
	r := w.step(t)
	want(t, r, "n1", true, StatePending)
	w.report("n1", RunOnline, "")
	want(t, w.step(t), "n1", true, StateOnline)
	if len(Decide(w.in)) != 0 {
		t.Fatal("a settled group changed again")
	}
}

func TestLostOwnerFailsOverOnlyOnceItsLeaseExpired(t *testing.T) {
	w := newWorld()
	w.step(t)
	w.report("n1", RunOnline, "")
	w.step(t)
	// n1 stops renewing: not live, but its lease may still hold.
	w.node("n1").Live = false
	r := w.step(t)
	want(t, r, "n1", true, StateOnline)
	w.node("n1").MayRun = false
	r = w.step(t)
	want(t, r, "n2", true, StatePending)
	if len(r.Failovers) != 1 || !strings.Contains(r.Reason, "n1") {
		t.Fatalf("failover not counted or explained: %+v", r)
	}
}

func TestAMoveWaitsForTheOwnerToStop(t *testing.T) {
	w := newWorld()
	w.step(t)
	w.report("n1", RunOnline, "")
	w.step(t)
	rec := w.in.Records["g"]
	rec.Move = "id-n3"
	w.in.Records["g"] = rec
	r := w.step(t)
	if r.Run || r.NextName != "n3" || r.OwnerName != "n1" {
		t.Fatalf("move did not stop the group on its owner first: %+v", r)
	}
	// Still stopping: nothing changes.
	w.report("n1", RunStopping, "")
	if r2 := w.step(t); r2.OwnerName != "n1" || r2.Run {
		t.Fatalf("started elsewhere before the owner stopped: %+v", r2)
	}
	// An old report of the previous epoch does not count.
	w.node("n1").Reports["g"] = GroupReport{Group: "g", Epoch: r.Epoch - 1, State: RunStopped}
	if r2 := w.step(t); r2.OwnerName != "n1" {
		t.Fatalf("an old report moved it: %+v", r2)
	}
	w.report("n1", RunStopped, "")
	want(t, w.step(t), "n3", true, StatePending)
}

func TestFailedResourceFailsOverThenTheThresholdHoldsIt(t *testing.T) {
	w := newWorld()
	w.step(t)
	owners := []string{"n1", "n2", "n3"}
	for i := 0; i < 2; i++ {
		w.report(owners[i], RunFailed, "resource r failed 4 times")
		r := w.step(t)
		if r.Run || r.NextName != owners[i+1] {
			t.Fatalf("failover %d: %+v", i, r)
		}
		w.report(owners[i], RunStopped, "")
		want(t, w.step(t), owners[i+1], true, StatePending)
		w.in.Now = w.in.Now.Add(time.Minute)
	}
	// The third failure within the period passes the threshold of 2.
	w.report("n3", RunFailed, "resource r failed 4 times")
	r := w.step(t)
	if r.Run || r.Held == "" || r.State != StateFailed {
		t.Fatalf("threshold not applied: %+v", r)
	}
	w.report("n3", RunStopped, "")
	r = w.step(t)
	want(t, r, "", false, StateFailed)
	if !strings.Contains(r.Reason, "threshold 2") {
		t.Fatalf("reason %q", r.Reason)
	}
	// It stays offline.
	want(t, w.step(t), "", false, StateFailed)
	// An operator's online clears the hold.
	rec := w.in.Records["g"]
	rec.Held, rec.Failovers = "", nil
	w.in.Records["g"] = rec
	want(t, w.step(t), "n1", true, StatePending)
}

func TestFailoversOutsideThePeriodDoNotCount(t *testing.T) {
	w := newWorld()
	w.step(t)
	w.report("n1", RunFailed, "x")
	w.step(t)
	w.report("n1", RunStopped, "")
	w.step(t) // on n2
	w.in.Now = w.in.Now.Add(7 * time.Hour)
	w.report("n2", RunFailed, "x")
	w.step(t)
	w.report("n2", RunStopped, "")
	w.step(t)
	w.in.Now = w.in.Now.Add(7 * time.Hour)
	w.report("n3", RunFailed, "x")
	r := w.step(t)
	if r.Held != "" || r.NextName != "n1" || len(r.Failovers) != 1 {
		t.Fatalf("old failovers counted: %+v", r)
	}
}

func TestOfflineStopsThenForgetsTheOwner(t *testing.T) {
	w := newWorld()
	w.step(t)
	w.report("n1", RunOnline, "")
	w.step(t)
	w.group().Wanted = roles.WantedOffline
	r := w.step(t)
	want(t, r, "n1", false, StatePending)
	w.report("n1", RunStopped, "")
	want(t, w.step(t), "", false, StateOffline)
}

func TestPausedKeepsDrainMoves(t *testing.T) {
	w := newWorld()
	w.step(t)
	w.report("n1", RunOnline, "")
	w.step(t)
	w.node("n1").Paused = true
	want(t, w.step(t), "n1", true, StateOnline)
	w.node("n1").Drain = true
	r := w.step(t)
	if r.Run || r.NextName != "n2" {
		t.Fatalf("drain: %+v", r)
	}
	w.report("n1", RunStopped, "")
	want(t, w.step(t), "n2", true, StatePending)
	if len(w.in.Records["g"].Failovers) != 0 {
		t.Fatal("a drain counted as a failover")
	}
}

func TestFailback(t *testing.T) {
	for _, c := range []struct {
		policy, start, end string
		at                 time.Time
		back               bool
	}{
		{roles.FailbackNever, "", "", t0, false},
		{roles.FailbackImmediately, "", "", t0, true},
		{roles.FailbackWindow, "11:00", "13:00", t0, true},
		{roles.FailbackWindow, "13:00", "14:00", t0, false},
		{roles.FailbackWindow, "22:00", "06:00", t0.Add(12 * time.Hour), true}, // 00:00, across midnight
	} {
		w := newWorld()
		w.group().Failback = roles.Failback{Policy: c.policy, WindowStart: c.start, WindowEnd: c.end}
		w.in.Now = c.at
		w.node("n1").Live, w.node("n1").MayRun = false, false
		w.step(t)
		w.report("n2", RunOnline, "")
		want(t, w.step(t), "n2", true, StateOnline)
		w.node("n1").Live, w.node("n1").MayRun = true, true // n1 is back
		r := w.step(t)
		if back := !r.Run && r.NextName == "n1"; back != c.back {
			t.Errorf("failback %s %s-%s at %s: %+v", c.policy, c.start, c.end, c.at.Format("15:04"), r)
		}
	}
}

func TestNoNodeCanRunItSaysWhy(t *testing.T) {
	w := newWorld()
	w.in.Resources["r"] = roles.Resource{Name: "r", Type: "systemd"}
	for _, n := range []string{"n1", "n2", "n3"} {
		w.node(n).Unavailable = map[string]string{"systemd": "systemd does not run on " + n}
	}
	r := w.step(t)
	want(t, r, "", false, StateOffline)
	if !strings.Contains(r.Reason, "cannot run systemd resources") {
		t.Fatalf("reason %q", r.Reason)
	}
}

func TestNotAPossibleOwnerNeverGetsIt(t *testing.T) {
	w := newWorld()
	w.group().PossibleOwners = []string{"n2", "n3"}
	w.group().PreferredOwners = []string{"n3"}
	want(t, w.step(t), "n3", true, StatePending)
	w.node("n3").Live, w.node("n3").MayRun = false, false
	want(t, w.step(t), "n2", true, StatePending)
}

func TestAnEvictedOwnerIsWaitedForUntilItsLeaseExpires(t *testing.T) {
	w := newWorld()
	w.step(t)
	w.report("n1", RunOnline, "")
	w.step(t)
	w.node("n1").Member = false // evicted: may run until its lease ends
	r := w.step(t)
	if r.OwnerName != "n1" || !r.Run {
		t.Fatalf("moved before the evicted owner's lease expired: %+v", r)
	}
	w.node("n1").MayRun, w.node("n1").Live = false, false
	want(t, w.step(t), "n2", true, StatePending)
}

func TestRemovedGroupIsStoppedThenForgotten(t *testing.T) {
	w := newWorld()
	w.step(t)
	w.report("n1", RunOnline, "")
	w.step(t)
	w.in.Groups = nil
	r := w.step(t)
	if r.Run || r.OwnerName != "n1" {
		t.Fatalf("removed group: %+v", r)
	}
	w.report("n1", RunStopped, "")
	w.step(t)
	if _, ok := w.in.Records["g"]; ok {
		t.Fatal("record of a removed, stopped group kept")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{Lease: time.Second, Margin: time.Second, Renew: 100 * time.Millisecond},
		{Lease: 2 * time.Second, Margin: time.Second, Renew: time.Second}, {}} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// A group that failed over because it failed on a node does not fail back
// there within its failover period (it would fail again and again).
func TestNoFailbackToTheNodeItFailedOn(t *testing.T) {
	w := newWorld()
	w.group().Failback = roles.Failback{Policy: roles.FailbackImmediately}
	w.step(t)
	w.report("n1", RunFailed, "r failed 4 times")
	w.step(t)
	w.report("n1", RunStopped, "")
	want(t, w.step(t), "n2", true, StatePending)
	w.report("n2", RunOnline, "")
	want(t, w.step(t), "n2", true, StateOnline)
	w.in.Now = w.in.Now.Add(time.Hour)
	want(t, w.step(t), "n2", true, StateOnline)
	// Past the period, it fails back.
	w.in.Now = w.in.Now.Add(6 * time.Hour)
	if r := w.step(t); r.Run || r.NextName != "n1" {
		t.Fatalf("no failback after the period: %+v", r)
	}
}

// An owner whose agent stopped gracefully released its lease having
// stopped its groups: they move at once, and it counts no failover.
func TestReleasedOwnerIsNoFailover(t *testing.T) {
	w := newWorld()
	w.step(t)
	w.report("n1", RunOnline, "")
	w.step(t)
	n := w.node("n1")
	n.Live, n.MayRun, n.Released = false, false, true
	r := w.step(t)
	want(t, r, "n2", true, StatePending)
	if len(r.Failovers) != 0 || r.LastFailure != "" {
		t.Fatalf("a planned stop counted as a failure: %+v", r)
	}
}
