package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/backupset/offline"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
	"github.com/clusterkeep/clusterkeep/internal/schedule"
	"github.com/clusterkeep/clusterkeep/internal/security"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// leaderWatch asks every node, ten times a second, whether it leads, so
// that a run can be checked against who led while it ran.
type leaderWatch struct {
	mu  sync.Mutex
	obs []leaderSeen
}

// leaderSeen is one node's answer: between sent and got it said it led,
// or not.
type leaderSeen struct {
	node      string // id
	sent, got time.Time
	leads     bool
}

func watchLeaders(t *testing.T, lc *localcluster.Cluster) *leaderWatch {
	w := &leaderWatch{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, nd := range lc.Nodes {
		wg.Go(func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
				sent := time.Now()
				st, err := client.LocalStatus(rctx, nd.API)
				got := time.Now()
				rcancel()
				if err == nil && st.NodeID != "" {
					w.mu.Lock()
					w.obs = append(w.obs, leaderSeen{node: st.NodeID, sent: sent, got: got, leads: st.RaftState == "Leader"})
					w.mu.Unlock()
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return w
}

// check fails the test if a successful run's node was seen not leading
// when asked during the run, and just before and just after it (a run may
// be shorter than the time between two questions), or if none of the runs
// could be checked. A node that ran a run to its end led when it claimed
// it and when it recorded it.
func (w *leaderWatch) check(t *testing.T, runs []schedule.Run) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	const near = 2 * time.Second
	checked := 0
	for _, r := range runs {
		if r.Result != schedule.OK {
			continue
		}
		var before, after *leaderSeen
		var asked []leaderSeen
		for i, o := range w.obs {
			switch {
			case o.node != r.Runner:
			case o.got.Before(r.Started):
				if r.Started.Sub(o.got) < near && (before == nil || o.got.After(before.got)) {
					before = &w.obs[i]
				}
			case o.sent.After(r.Ended):
				if o.sent.Sub(r.Ended) < near && (after == nil || o.sent.Before(after.sent)) {
					after = &w.obs[i]
				}
			default:
				asked = append(asked, o)
			}
		}
		for _, o := range []*leaderSeen{before, after} {
			if o != nil {
				asked = append(asked, *o)
			}
		}
		if len(asked) == 0 {
			continue
		}
		checked++
		led := false
		for _, o := range asked {
			led = led || o.leads
		}
		if !led {
			t.Errorf("run %+v: its node %s said it did not lead, every time it was asked during the run and just before and after it: %+v", r, r.Runner, asked)
		}
	}
	if checked == 0 {
		t.Errorf("no run could be checked against who led: %d runs, %d answers", len(runs), len(w.obs))
	}
}

// okRuns waits until n runs succeeded that started after since, and
// returns the history.
func okRuns(t *testing.T, c *client.Cluster, n int, since time.Time) []schedule.Run {
	t.Helper()
	var h []schedule.Run
	tc.Eventually(t, fmt.Sprintf("%d scheduled runs", n), func() error {
		s, err := c.Schedule(tc.Context(t))
		if err != nil {
			return err
		}
		h = s.State.History
		got := 0
		for _, r := range h {
			if r.Result == schedule.OK && r.Started.After(since) {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d of %d: %+v", got, n, s.State.Last)
		}
		return nil
	})
	return h
}

func leaderOf(t *testing.T, c *client.Cluster) (id, name string) {
	t.Helper()
	tc.Eventually(t, "a leader", func() error {
		info, err := c.GetClusterInformation(tc.Context(t))
		if err != nil {
			return err
		}
		for _, n := range info.Nodes {
			if n.Leader {
				id, name = n.ID, n.Name
				return nil
			}
		}
		return fmt.Errorf("no leader among %+v", info.Nodes)
	})
	return id, name
}

// Scheduled backups are taken by the leader only, one run per slot, and
// the schedule survives the leader's death: the next leader goes on, and
// the old one, back as a follower, takes no run.
func TestScheduledBackups(t *testing.T) {
	lc := tc.Processes(t, 3)
	ctx := tc.Context(t)
	c := tc.Open(t, lc.APIAddrs())
	leaders := watchLeaders(t, lc)
	to := filepath.Join(t.TempDir(), "scheduled")
	const period = 2 * time.Second
	if err := c.SetSchedule(ctx, schedule.Config{Spec: "@every " + period.String(), Target: to}); err != nil {
		t.Fatal(err)
	}
	okRuns(t, c, 3, time.Time{})
	first, firstName := leaderOf(t, c)

	// The leader dies: the next one goes on with the schedule.
	killed := time.Now()
	if _, err := lc.Stop(firstName, true); err != nil {
		t.Fatal(err)
	}
	okRuns(t, c, 2, killed)
	second, _ := leaderOf(t, c)
	if second == first {
		t.Fatalf("the killed node %s still leads", first)
	}
	// The old leader comes back as a follower: the runs stay the new
	// leader's.
	if _, err := lc.Start(ctx, firstName); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	h := okRuns(t, c, 3, back)
	// Unless leadership moved again meanwhile, every run since the kill
	// is the second leader's.
	now, _ := leaderOf(t, c)
	for _, r := range h {
		if r.Result != schedule.OK || !r.Started.After(killed) {
			continue
		}
		if now == second && r.Runner != second {
			t.Fatalf("run %+v after the leader's death was taken by %s, not by the new leader %s", r, r.Runner, second)
		}
		if r.Runner == first && r.Started.After(back) && now == second {
			t.Fatalf("the old leader, back as a follower, took a run: %+v", r)
		}
	}

	// Every run has its own slot, slots only go forward, and no two
	// successful runs fall in one period.
	s, err := c.Schedule(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for _, r := range s.State.History {
		if r.Result != schedule.OK {
			continue
		}
		if !r.Slot.After(last) {
			t.Fatalf("slot %s taken after %s: %+v", r.Slot, last, s.State.History)
		}
		if !last.IsZero() && r.Slot.Sub(last) < period {
			t.Fatalf("two runs within one period: %s, %s", last, r.Slot)
		}
		last = r.Slot
	}
	leaders.check(t, s.State.History)
	checkSets(t, c, to)

	// The dashboard's backups page shows the schedule and its runs, and
	// the metrics count them.
	cr, err := lc.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: security.HTTPTransport(func() (*tls.Config, error) { return security.ClientConfig(cr.CA, nil), nil })}
	get := func(path string) string {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+lc.Nodes[1].API+path, nil)
		req.Header.Set("Authorization", "Bearer "+cr.Token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		return string(b)
	}
	if page := get("/ui/backups"); !strings.Contains(page, "Scheduled backups: @every 2s to "+to) || !strings.Contains(page, "verified") {
		t.Fatalf("the dashboard's backups page lacks the schedule or its runs:\n%s", page)
	}
	m := get("/metrics")
	for _, want := range []string{`clusterkeep_schedule_runs_total{result="ok",target="` + to + `"}`,
		`clusterkeep_scheduled_backup_last_success{target="` + to + `"} 1`,
		`clusterkeep_scheduled_backup_last_size_bytes{target="` + to + `"}`} {
		if !strings.Contains(m, want) {
			t.Fatalf("no %s among the metrics:\n%s", want, m)
		}
	}

	// The CLI: run-now waits for its run; show lists it.
	if out, errOut, code := cli(t, lc.Env(), "schedule", "run-now", "--wait", "--json"); code != 0 || !strings.Contains(out, `"result": "ok"`) && !strings.Contains(out, `"result":"ok"`) {
		t.Fatalf("schedule run-now --wait: exit %d: %s %s", code, out, errOut)
	}
	if out, errOut, code := cli(t, lc.Env(), "schedule", "show"); code != 0 || !strings.Contains(out, "@every 2s") {
		t.Fatalf("schedule show: exit %d: %s %s", code, out, errOut)
	}
	if _, errOut, code := cli(t, lc.Env(), "schedule", "set", "--every", "1h"); code != 2 || !strings.Contains(errOut, "no target") {
		t.Fatalf("schedule set without a target: exit %d: %s", code, errOut)
	}
}

// checkSets checks the sets in to against the schedule's record: every
// successful run kept in the history has its set, and there are as many
// sets as successful runs since the schedule began, give or take the runs
// that did not end well (a run killed or stopped after its set was made
// leaves the set without being counted) and the one that may be running.
// No retention is set, so none was removed. The sets are listed before
// and after the record is read, as runs may go on meanwhile.
func checkSets(t *testing.T, c *client.Cluster, to string) schedule.State {
	t.Helper()
	list := func() map[string]bool {
		sets, errs := backupset.List(to)
		if len(errs) > 0 {
			t.Fatalf("list %s: %v", to, errs)
		}
		listed := map[string]bool{}
		for _, set := range sets {
			listed[set.Location] = true
		}
		return listed
	}
	before := list()
	s, err := c.Schedule(tc.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	st := s.State
	after := list()
	interrupted, running := 0, 0
	for _, r := range st.History {
		switch {
		case r.Result == schedule.OK && !after[r.Path]:
			t.Fatalf("run %+v: its set is not listed among %v", r, after)
		case r.Result == schedule.Failed && strings.HasPrefix(r.Error, "interrupted"):
			interrupted++ // not counted in FailedRuns
		}
	}
	if st.Last.Result == schedule.Running {
		running = 1
	}
	if n := int64(len(after)); n < st.Succeeded {
		t.Fatalf("%d sets for %d successful runs: %+v", n, st.Succeeded, st)
	}
	if n := int64(len(before)); n > st.Succeeded+st.FailedRuns+int64(interrupted+running) {
		t.Fatalf("%d sets for %d successful runs, %d failed, %d interrupted and %d running: %+v", n, st.Succeeded, st.FailedRuns, interrupted, running, st)
	}
	return st
}

// Runs missed while the whole cluster was down are taken as one when it
// comes back: with the cluster stopped across two slots and started
// again just after the second, exactly one run is taken for them, at
// once, for the later slot, and the schedule goes on from there.
func TestScheduledRunsMissedWhileDownAreTakenOnce(t *testing.T) {
	lc := tc.Processes(t, 3)
	ctx := tc.Context(t)
	c := tc.Open(t, lc.APIAddrs())
	leaders := watchLeaders(t, lc)
	to := filepath.Join(t.TempDir(), "scheduled")
	// Long enough for the cluster to come back and claim the run before
	// the next slot, short enough for two slots to pass while it is down.
	const period = 5 * time.Second
	text := "@every " + period.String()
	spec, err := schedule.ParseSpec(text)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetSchedule(ctx, schedule.Config{Spec: text, Target: to}); err != nil {
		t.Fatal(err)
	}
	okRuns(t, c, 1, time.Time{})

	for _, n := range lc.Nodes {
		if _, err := lc.Stop(n.Name, false); err != nil {
			t.Fatal(err)
		}
	}
	// Every node is stopped: no slot after this can run before the
	// restart. Two slots pass, and the cluster starts just after the
	// second.
	down := time.Now()
	missed := []time.Time{spec.Next(down)}
	missed = append(missed, spec.Next(missed[0]))
	time.Sleep(time.Until(missed[1].Add(200 * time.Millisecond))) // letting the slots pass, not waiting for a state
	up := time.Now()
	for _, n := range lc.Nodes {
		if _, err := lc.Start(ctx, n.Name); err != nil {
			t.Fatal(err)
		}
	}
	started := time.Now()
	h := okRuns(t, c, 2, up)

	var taken []schedule.Run
	for _, r := range h {
		if r.Slot.After(down) && r.Slot.Before(up) {
			taken = append(taken, r)
		}
		if r.Started.After(down) && r.Started.Before(up) {
			t.Fatalf("a run started while every node was stopped: %+v", r)
		}
	}
	if len(taken) != 1 {
		t.Fatalf("the slots %v missed while the cluster was down (%s to %s, started again by %s) were taken %d times, want once: %+v",
			missed, down.Format(time.StampMilli), up.Format(time.StampMilli), started.Format(time.StampMilli), len(taken), h)
	}
	if r := taken[0]; r.Result != schedule.OK || !r.Slot.Equal(missed[1]) || !r.Started.After(up) {
		t.Fatalf("the run for the missed slots %v: %+v, want the later slot, taken after the restart at %s", missed, r, up.Format(time.StampMilli))
	}
	// After it, the next slots as usual: no catching up.
	var last time.Time
	for _, r := range h {
		if r.Result != schedule.OK {
			continue
		}
		if !r.Slot.After(last) || (!last.IsZero() && r.Slot.Sub(last) < period) {
			t.Fatalf("slot %s taken after %s: %+v", r.Slot, last, h)
		}
		last = r.Slot
	}
	st := checkSets(t, c, to)
	leaders.check(t, st.History)
}

// A schedule with recipients makes encrypted sets: each verifies in full
// with the identity, only its stored bytes without it, and not with
// another identity; the retention prunes them as any other.
func TestScheduledBackupEncrypted(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	id, _ := age.GenerateX25519Identity()
	stranger, _ := age.GenerateX25519Identity()
	to := filepath.Join(t.TempDir(), "encrypted")
	if err := c.SetSchedule(ctx, schedule.Config{Spec: "@every 1h", Target: to, KeepLast: 1, Recipients: []string{id.Recipient().String()}}); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for range 2 {
		r := tc.RunScheduleNow(t, c)
		if r.Warning != "" {
			t.Fatalf("the scheduled run: %+v", r)
		}
		paths = append(paths, r.Path)
	}
	if paths[0] == paths[1] {
		t.Fatalf("two runs made one set: %v", paths)
	}
	set, err := backupset.Open(paths[1])
	if err != nil {
		t.Fatal(err)
	}
	if !set.Encrypted() || len(set.Manifest.Encryption.Recipients) != 1 || set.Manifest.Encryption.Recipients[0] != backupset.Fingerprint(id.Recipient().String()) {
		t.Fatalf("the scheduled set is not encrypted to the schedule's recipient: %+v", set.Manifest.Encryption)
	}
	v, err := offline.VerifySet(paths[1], nil, id)
	if err != nil || !v.Encrypted || !v.ContentsChecked {
		t.Fatalf("verify with the identity: %+v %v", v, err)
	}
	if v, err := offline.VerifySet(paths[1], nil); err != nil || v.ContentsChecked {
		t.Fatalf("verify without the identity: %+v %v", v, err)
	}
	if _, err := offline.VerifySet(paths[1], nil, stranger); err == nil {
		t.Fatal("the set verified with an identity it is not encrypted to")
	}
	// Its data is not the plain database.
	for _, f := range set.Manifest.Files {
		if f.Encryption == "" {
			t.Fatalf("file %s of the encrypted set is stored in the clear", f.Name)
		}
	}
	// The retention kept the newest only.
	if _, err := os.Stat(paths[0]); !os.IsNotExist(err) {
		t.Fatalf("keep-last 1: the older set %s is still there (%v)", paths[0], err)
	}
}
