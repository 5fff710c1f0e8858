package placement

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
)

// Node is a member as the leader sees it when it decides.
type Node struct {
	ID, Name string
	// Member: the node is a member of the cluster (an evicted node is not,
	// but may still run groups until its lease expires).
	Member bool
	// Live: this leader granted it a lease that has not expired; only a
	// live node is given a group.
	Live bool
	// MayRun: the node may still run groups: the lease this leader counts
	// for it (at least from when this node became leader) has not expired.
	MayRun bool
	Paused bool
	Drain  bool
	// Released: the node said it stopped every group and starts none (its
	// agent stops); losing it is no failure.
	Released bool
	// Unavailable maps each type the node cannot run to why.
	Unavailable map[string]string
	// Reports are the node's reports, by lower-case group name.
	Reports map[string]GroupReport
}

// Input is everything a decision looks at.
type Input struct {
	Now       time.Time
	Groups    []roles.Group
	Resources map[string]roles.Resource // by lower-case name
	Nodes     []Node
	// Records are the groups' placements, by lower-case group name.
	Records map[string]Record
}

// Decide returns the records that must change, by lower-case group name;
// a nil record is one to remove (its group is gone and runs nowhere).
func Decide(in Input) map[string]*Record {
	d := &decider{in: in, byID: map[string]*Node{}, byName: map[string]*Node{}, load: map[string]int{}}
	for i := range in.Nodes {
		n := &d.in.Nodes[i]
		d.byID[n.ID] = n
		d.byName[strings.ToLower(n.Name)] = n
	}
	for _, r := range in.Records {
		if r.Owner != "" {
			d.load[r.Owner]++
		}
	}
	out := map[string]*Record{}
	seen := map[string]bool{}
	for _, g := range in.Groups {
		name := strings.ToLower(g.Name)
		seen[name] = true
		old := in.Records[name]
		if old.State == "" {
			old.State = StateOffline
		}
		next := d.group(g, old)
		if !sameRecord(old, next) {
			next.Changed = in.Now
			if next.Owner != old.Owner {
				d.load[old.Owner]--
				d.load[next.Owner]++
			}
			out[name] = &next
		}
	}
	// Records of groups that are gone: stop what runs, then forget them.
	for name, r := range in.Records {
		if seen[name] {
			continue
		}
		switch {
		case r.Owner != "" && r.Run:
			r.Run, r.Next, r.Epoch, r.State, r.Reason, r.Changed = false, "", r.Epoch+1, StatePending, "the group was removed", in.Now
			out[name] = &r
		case r.Owner == "" || d.stoppedOrGone(r, name):
			out[name] = nil
		}
	}
	return out
}

type decider struct {
	in     Input
	byID   map[string]*Node
	byName map[string]*Node
	load   map[string]int // groups owned, by node id
}

// sameRecord compares what a decision changes (not Changed).
func sameRecord(a, b Record) bool {
	a.Changed, b.Changed = time.Time{}, time.Time{}
	return a.Encode() == b.Encode()
}

// report is the owner's report of group name at the record's epoch.
func (d *decider) report(r Record, name string) (GroupReport, bool) {
	n := d.byID[r.Owner]
	if n == nil {
		return GroupReport{}, false
	}
	rep, ok := n.Reports[name]
	if !ok || rep.Epoch != r.Epoch {
		return GroupReport{}, false
	}
	return rep, true
}

// gone: the owner can no longer be running anything (its lease expired).
func (d *decider) gone(r Record) bool {
	n := d.byID[r.Owner]
	return r.Owner != "" && (n == nil || !n.MayRun)
}

// stoppedOrGone: nothing of the group runs on its owner any more, and will
// not: the owner said it stopped it at this epoch (told to stop), or its
// lease expired.
func (d *decider) stoppedOrGone(r Record, name string) bool {
	if d.gone(r) {
		return true
	}
	rep, ok := d.report(r, name)
	// Failed is said only once everything of the group stopped (a stop
	// that failed says StopFailed).
	return ok && !r.Run && (rep.State == RunStopped || rep.State == RunFailed)
}

// why says why node n cannot take group g ("" when it can).
func (d *decider) why(n *Node, g roles.Group) string {
	switch {
	case !n.Member:
		return "not a member"
	case !n.Live:
		return "not heard from (no lease)"
	case n.Paused:
		return "paused"
	}
	return d.misfit(n, g)
}

// misfit says why group g's configuration rules node n out ("" when it
// does not): not a possible owner, or a type the node cannot run.
func (d *decider) misfit(n *Node, g roles.Group) string {
	if len(g.PossibleOwners) > 0 && !slices.ContainsFunc(g.PossibleOwners, func(p string) bool { return strings.EqualFold(p, n.Name) }) {
		return "not a possible owner"
	}
	for _, res := range g.Resources {
		r, ok := d.in.Resources[strings.ToLower(res)]
		if !ok {
			return "resource " + res + " is not recorded"
		}
		if why, bad := n.Unavailable[r.Type]; bad {
			return fmt.Sprintf("cannot run %s resources (%s)", r.Type, why)
		}
	}
	return ""
}

// candidates lists the nodes that can take g, best first: its preferred
// owners in order (starting after the node named after, for a failover
// to the next one), then the others, least loaded first. The node
// excluded is left out.
func (d *decider) candidates(g roles.Group, after, exclude string) []*Node {
	var pref []*Node
	for _, p := range g.PreferredOwners {
		if n := d.byName[strings.ToLower(p)]; n != nil {
			pref = append(pref, n)
		}
	}
	if i := slices.IndexFunc(pref, func(n *Node) bool { return n.ID == after }); i >= 0 {
		pref = append(pref[i+1:], pref[:i+1]...)
	}
	var rest []*Node
	for i := range d.in.Nodes {
		n := &d.in.Nodes[i]
		if !slices.Contains(pref, n) {
			rest = append(rest, n)
		}
	}
	sort.SliceStable(rest, func(i, j int) bool {
		if d.load[rest[i].ID] != d.load[rest[j].ID] {
			return d.load[rest[i].ID] < d.load[rest[j].ID]
		}
		return strings.ToLower(rest[i].Name) < strings.ToLower(rest[j].Name)
	})
	var out []*Node
	for _, n := range append(pref, rest...) {
		if n.ID != exclude && d.why(n, g) == "" {
			out = append(out, n)
		}
	}
	return out
}

// nobody explains why no node can take g.
func (d *decider) nobody(g roles.Group, exclude string) string {
	var parts []string
	for i := range d.in.Nodes {
		n := &d.in.Nodes[i]
		if n.ID == exclude {
			continue
		}
		if w := d.why(n, g); w != "" {
			parts = append(parts, n.Name+": "+w)
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "no other node"
	}
	return "no node can run it (" + strings.Join(parts, "; ") + ")"
}

// rank is n's place among g's preferred owners (len when not among them).
func rank(g roles.Group, name string) int {
	for i, p := range g.PreferredOwners {
		if strings.EqualFold(p, name) {
			return i
		}
	}
	return len(g.PreferredOwners)
}

func (d *decider) name(id string) string {
	if n := d.byID[id]; n != nil {
		return n.Name
	}
	return id
}

// start gives r to node n, to run.
func (d *decider) start(r Record, n *Node, reason string) Record {
	r.Epoch++
	r.Owner, r.OwnerName, r.Run, r.Next, r.NextName = n.ID, n.Name, true, "", ""
	r.State, r.Reason = StatePending, reason
	return r
}

// moveTo has r's owner stop the group, to start it on n next (nil: to
// start it nowhere).
func (d *decider) moveTo(r Record, n *Node, reason string) Record {
	r.Epoch++
	r.Run, r.Next, r.NextName = false, "", ""
	if n != nil {
		r.Next, r.NextName = n.ID, n.Name
	}
	r.State, r.Reason = StatePending, reason
	return r
}

// countFailover records a failover at now; it reports whether the group
// has now failed over more often than its threshold allows.
func (d *decider) countFailover(g roles.Group, r *Record) bool {
	since := d.in.Now.Add(-time.Duration(g.FailoverPeriod))
	var kept []time.Time
	for _, t := range r.Failovers {
		if t.After(since) {
			kept = append(kept, t)
		}
	}
	r.Failovers = append(kept, d.in.Now)
	return g.FailoverThreshold == 0 || len(r.Failovers) > g.FailoverThreshold
}

func (d *decider) held(g roles.Group, r Record) string {
	if g.FailoverThreshold == 0 {
		return "automatic failover is off (failover threshold 0): bring it online again with `group online`"
	}
	return fmt.Sprintf("failed over %d times within %s (threshold %d): bring it online again with `group online`",
		len(r.Failovers), time.Duration(g.FailoverPeriod), g.FailoverThreshold)
}

// group decides group g's next record from its current one.
func (d *decider) group(g roles.Group, r Record) Record {
	name := strings.ToLower(g.Name)
	free := r.Owner == "" || d.stoppedOrGone(r, name)
	if g.Wanted == roles.WantedOffline {
		switch {
		case r.Owner != "" && r.Run:
			r = d.moveTo(r, nil, "taken offline")
		case r.Owner != "" && free:
			r.Epoch++
			r.Owner, r.OwnerName, r.Next, r.NextName, r.Move = "", "", "", "", ""
			r.State, r.Reason = StateOffline, "offline, as wanted"
		case r.Owner == "" && (r.State != StateOffline || r.Move != ""):
			r.State, r.Reason, r.Move = StateOffline, "offline, as wanted", ""
		}
		return r
	}

	// Wanted online.
	if r.Owner == "" {
		if r.Held != "" {
			r.State, r.Reason = StateFailed, r.Held
			return r
		}
		if c := d.candidates(g, "", ""); len(c) > 0 {
			return d.start(r, c[0], "brought online on "+c[0].Name)
		}
		r.State, r.Reason = StateOffline, d.nobody(g, "")
		return r
	}

	if d.gone(r) {
		owner := d.name(r.Owner)
		if !r.Run {
			// It was being stopped; its owner is gone now, so it is
			// stopped: go on as the stop would have.
			return d.afterStop(g, r)
		}
		if n := d.byID[r.Owner]; n != nil && n.Released {
			// A planned stop of the owner's agent: it stopped the group.
			r.Run = false
			r.Reason = fmt.Sprintf("node %s stopped its agent", owner)
			return d.afterStop(g, r)
		}
		r.LastFailure, r.LastFailureAt, r.FailedOn = fmt.Sprintf("node %s was lost (its lease expired)", owner), d.in.Now, ""
		if d.countFailover(g, &r) {
			r.Held = d.held(g, r)
			r.Epoch++
			r.Owner, r.OwnerName, r.Run = "", "", false
			r.State, r.Reason = StateFailed, r.Held
			return r
		}
		if c := d.candidates(g, r.Owner, r.Owner); len(c) > 0 {
			return d.start(r, c[0], fmt.Sprintf("failed over from %s (lost) to %s", owner, c[0].Name))
		}
		r.Epoch++
		r.Owner, r.OwnerName, r.Run = "", "", false
		r.State, r.Reason = StateOffline, fmt.Sprintf("node %s was lost; %s", owner, d.nobody(g, r.Owner))
		return r
	}

	rep, reported := d.report(r, name)
	if !r.Run {
		if free {
			return d.afterStop(g, r)
		}
		if reported && rep.State == RunStopFailed {
			r.State, r.Reason = StateFailed, fmt.Sprintf("could not stop on %s: %s (it stays there until it stops)", d.name(r.Owner), rep.Error)
		}
		return r
	}

	// Running (or starting) on a live owner.
	owner := d.byID[r.Owner]
	if reported {
		switch rep.State {
		case RunFailed:
			r.LastFailure, r.LastFailureAt, r.FailedOn = fmt.Sprintf("on %s: %s", owner.Name, rep.Error), d.in.Now, owner.ID
			if d.countFailover(g, &r) {
				r.Held = d.held(g, r)
				r = d.moveTo(r, nil, "failed on "+owner.Name+": "+rep.Error)
				r.State = StateFailed
				return r
			}
			c := d.candidates(g, r.Owner, r.Owner)
			if len(c) == 0 {
				return d.moveTo(r, nil, fmt.Sprintf("failed on %s (%s); %s", owner.Name, rep.Error, d.nobody(g, r.Owner)))
			}
			return d.moveTo(r, c[0], fmt.Sprintf("failed on %s (%s): failing over to %s", owner.Name, rep.Error, c[0].Name))
		case RunStopFailed:
			r.State, r.Reason = StateFailed, fmt.Sprintf("could not stop on %s: %s", owner.Name, rep.Error)
			return r
		}
	}

	// Moves of a healthy group: the operator's, a drain, an owner that may
	// no longer run it, a failback.
	if r.Move != "" {
		target := r.Move
		r.Move = ""
		var c []*Node
		if target == MoveAnywhere {
			c = d.candidates(g, r.Owner, r.Owner)
		} else if n := d.byID[target]; n != nil && n.ID != r.Owner && d.why(n, g) == "" {
			c = []*Node{n}
		}
		if len(c) == 0 {
			r.Reason = "move refused: " + d.nobody(g, r.Owner)
			if n := d.byID[target]; n != nil && n.ID != r.Owner {
				r.Reason = fmt.Sprintf("move to %s refused: %s", n.Name, d.why(n, g))
			}
		} else {
			return d.moveTo(r, c[0], "moved by the operator to "+c[0].Name)
		}
	}
	// (An owner not heard from keeps the group until its lease expires.)
	if w := d.misfit(owner, g); owner.Drain || w != "" {
		why := "its owner " + owner.Name + " is draining"
		if !owner.Drain {
			why = fmt.Sprintf("its owner %s may no longer run it (%s)", owner.Name, w)
		}
		if c := d.candidates(g, r.Owner, r.Owner); len(c) > 0 {
			return d.moveTo(r, c[0], why+": moving to "+c[0].Name)
		}
		r.Reason = why + ", but " + d.nobody(g, r.Owner)
	} else if d.failbackNow(g) && reported && rep.State == RunOnline {
		// Not back to a node the group failed on within its period.
		exclude := ""
		if r.FailedOn != "" && d.in.Now.Sub(r.LastFailureAt) < time.Duration(g.FailoverPeriod) {
			exclude = r.FailedOn
		}
		if c := d.candidates(g, "", exclude); len(c) > 0 && rank(g, c[0].Name) < rank(g, owner.Name) {
			return d.moveTo(r, c[0], "failing back to "+c[0].Name)
		}
	}

	switch {
	case reported && rep.State == RunOnline:
		if r.State != StateOnline {
			r.State, r.Reason = StateOnline, "online on "+owner.Name
		}
	case reported && rep.Error != "":
		r.State, r.Reason = StatePending, fmt.Sprintf("starting on %s: %s", owner.Name, rep.Error)
	default:
		r.State = StatePending
	}
	return r
}

// afterStop goes on once the group runs nowhere: it starts on the node a
// move named, or on the best node, or stays offline.
func (d *decider) afterStop(g roles.Group, r Record) Record {
	prev := r.Owner
	if r.Held != "" {
		r.Epoch++
		r.Owner, r.OwnerName, r.Next, r.NextName = "", "", "", ""
		r.State, r.Reason = StateFailed, r.Held
		return r
	}
	if n := d.byID[r.Next]; n != nil && d.why(n, g) == "" {
		return d.start(r, n, r.Reason)
	}
	if c := d.candidates(g, prev, ""); len(c) > 0 {
		// A move whose target cannot take it any more, or a stop with no
		// target (a failure with no other node): the best node now.
		reason := r.Reason
		if r.Next != "" {
			reason = fmt.Sprintf("%s can no longer take it: started on %s", r.NextName, c[0].Name)
		}
		return d.start(r, c[0], reason)
	}
	r.Epoch++
	r.Owner, r.OwnerName, r.Next, r.NextName = "", "", "", ""
	r.State, r.Reason = StateOffline, d.nobody(g, "")
	return r
}

// failbackNow says whether g fails back at this moment.
func (d *decider) failbackNow(g roles.Group) bool {
	switch g.Failback.Policy {
	case roles.FailbackImmediately:
		return true
	case roles.FailbackWindow:
		return inWindow(d.in.Now, g.Failback.WindowStart, g.Failback.WindowEnd)
	}
	return false
}

// inWindow says whether t (UTC) is within the daily window [start, end),
// "HH:MM" each; a window may cross midnight.
func inWindow(t time.Time, start, end string) bool {
	s, err1 := time.Parse("15:04", start)
	e, err2 := time.Parse("15:04", end)
	if err1 != nil || err2 != nil {
		return false
	}
	t = t.UTC()
	m := t.Hour()*60 + t.Minute()
	sm, em := s.Hour()*60+s.Minute(), e.Hour()*60+e.Minute()
	if sm < em {
		return m >= sm && m < em
	}
	return m >= sm || m < em
}
