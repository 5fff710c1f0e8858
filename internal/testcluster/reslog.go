package testcluster

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Run is one run of a test resource (ckres) on a node, as its shared log
// shows it: from its start line to its stop or exit line, or, for a run
// that was killed, to its last alive line plus the slack given.
type Run struct {
	Node, Name string
	Start, End time.Time
	// How it ended: "stop", "exit" or "killed".
	How string
}

// ResourceLog is a parsed shared log, in the order written.
type ResourceLog struct {
	Lines []LogLine
}

// LogLine is one line of the log.
type LogLine struct {
	Event, Node, Name string
	At                time.Time
}

// ReadResourceLog reads the shared log at path (missing: empty).
func ReadResourceLog(path string) (ResourceLog, error) {
	var rl ResourceLog
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return rl, nil
	}
	if err != nil {
		return rl, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Fields(sc.Text())
		if len(parts) != 4 {
			return rl, fmt.Errorf("resource log %s: malformed line %q", path, sc.Text())
		}
		ns, err := strconv.ParseInt(parts[3], 10, 64)
		if err != nil {
			return rl, fmt.Errorf("resource log %s: line %q: %v", path, sc.Text(), err)
		}
		rl.Lines = append(rl.Lines, LogLine{Event: parts[0], Node: parts[1], Name: parts[2], At: time.Unix(0, ns)})
	}
	return rl, sc.Err()
}

// Runs groups the lines into runs, each resource on each node in time
// order. slack is added to the end of a run that was killed (its last
// alive line is up to one beat before it died).
func (rl ResourceLog) Runs(slack time.Duration) []Run {
	type key struct{ node, name string }
	open := map[key]*Run{}
	var out []Run
	closeRun := func(k key, end time.Time, how string) {
		if r := open[k]; r != nil {
			r.End, r.How = end, how
			out = append(out, *r)
			delete(open, k)
		}
	}
	for _, l := range rl.Lines {
		k := key{l.Node, l.Name}
		switch l.Event {
		case "start":
			if r := open[k]; r != nil {
				closeRun(k, r.End.Add(slack), "killed")
			}
			open[k] = &Run{Node: l.Node, Name: l.Name, Start: l.At, End: l.At}
		case "alive":
			if r := open[k]; r != nil {
				r.End = l.At
			}
		case "stop", "exit":
			closeRun(k, l.At, l.Event)
		}
	}
	for k, r := range open {
		closeRun(k, r.End.Add(slack), "killed")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Overlaps lists every pair of runs of the named resources on two
// different nodes whose times overlap: a group that ran on two nodes at
// once.
func Overlaps(runs []Run, names ...string) []string {
	in := map[string]bool{}
	for _, n := range names {
		in[n] = true
	}
	var out []string
	for i, a := range runs {
		if !in[a.Name] {
			continue
		}
		for _, b := range runs[i+1:] {
			if !in[b.Name] || a.Node == b.Node {
				continue
			}
			if a.Start.Before(b.End) && b.Start.Before(a.End) {
				out = append(out, fmt.Sprintf("%s on %s %s..%s (%s) overlaps %s on %s %s..%s (%s)",
					a.Name, a.Node, a.Start.Format("15:04:05.000"), a.End.Format("15:04:05.000"), a.How,
					b.Name, b.Node, b.Start.Format("15:04:05.000"), b.End.Format("15:04:05.000"), b.How))
			}
		}
	}
	return out
}
