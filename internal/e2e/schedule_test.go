package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/schedule"
	"github.com/clusterkeep/clusterkeep/internal/security"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// Scheduled backups are taken by the leader only, one run per slot; the
// schedule survives the leader's death; runs missed while the cluster was
// down are taken as one when it comes back.
func TestScheduledBackups(t *testing.T) {
	lc := tc.Processes(t, 3)
	ctx := tc.Context(t)
	c := tc.Open(t, lc.APIAddrs())
	to := filepath.Join(t.TempDir(), "scheduled")
	const period = 2 * time.Second
	if err := c.SetSchedule(ctx, schedule.Config{Spec: "@every " + period.String(), Target: to}); err != nil {
		t.Fatal(err)
	}
	// okRuns waits until n runs succeeded after since, and returns the
	// history.
	okRuns := func(n int, since time.Time) []schedule.Run {
		t.Helper()
		var h []schedule.Run
		tc.Eventually(t, fmt.Sprintf("%d scheduled runs", n), func() error {
			s, err := c.Schedule(ctx)
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
	leaderID := func() string {
		info, err := c.GetClusterInformation(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range info.Nodes {
			if n.Leader {
				return n.ID
			}
		}
		t.Fatal("no leader")
		return ""
	}
	okRuns(3, time.Time{})
	first := leaderID()

	// The leader dies: the next one goes on with the schedule.
	var name string
	info, _ := c.GetClusterInformation(ctx)
	for _, n := range info.Nodes {
		if n.ID == first {
			name = n.Name
		}
	}
	killed := time.Now()
	if _, err := lc.Stop(name, true); err != nil {
		t.Fatal(err)
	}
	h := okRuns(3, killed)
	for _, r := range h {
		if r.Started.After(killed) && r.Result == schedule.OK && r.Runner == first {
			t.Fatalf("the dead leader took a run: %+v", r)
		}
	}
	if _, err := lc.Start(ctx, name); err != nil {
		t.Fatal(err)
	}

	// The whole cluster stops for several periods, then comes back.
	okRuns(1, time.Now())
	for _, n := range lc.Nodes {
		if _, err := lc.Stop(n.Name, false); err != nil {
			t.Fatal(err)
		}
	}
	// Taken once every node stopped: no slot after it can have run before
	// the restart.
	stopped := time.Now()
	time.Sleep(4 * period)
	restarted := time.Now()
	for _, n := range lc.Nodes {
		if _, err := lc.Start(ctx, n.Name); err != nil {
			t.Fatal(err)
		}
	}
	h = okRuns(3, restarted)

	// Every run has its own slot, and slots only go forward. The slots
	// missed while the cluster was down are taken as one run at most (a
	// run cut short by the stop may be taken again for its own, earlier,
	// slot), and after the restart no two runs fall in one period.
	var last time.Time
	missed := 0
	for _, r := range h {
		if r.Result != schedule.OK {
			continue
		}
		if !r.Slot.After(last) {
			t.Fatalf("slot %s taken after %s: %+v", r.Slot, last, h)
		}
		if r.Slot.After(stopped) && r.Slot.Before(restarted) {
			missed++
		}
		if r.Started.After(restarted) && !last.Before(restarted) && r.Slot.Sub(last) < period {
			t.Fatalf("two runs within one period after the restart: %s, %s", last, r.Slot)
		}
		last = r.Slot
	}
	if missed > 1 {
		t.Fatalf("the slots missed while the cluster was down were taken %d times, want once at most: %+v", missed, h)
	}
	// Every successful run made a complete set, and no node but the
	// leader backed up: the sets are the runs' (and at most the two runs
	// the kill and the stop interrupted after their set was made).
	s, err := c.Schedule(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sets, errs := backupset.List(to)
	if len(errs) > 0 {
		t.Fatalf("list %s: %v", to, errs)
	}
	listed := map[string]bool{}
	for _, set := range sets {
		listed[set.Location] = true
	}
	ok := 0
	for _, r := range s.State.History {
		if r.Result == schedule.OK {
			ok++
			if !listed[r.Path] {
				t.Fatalf("run %+v: its set is not listed among %v", r, listed)
			}
		}
	}
	if len(s.State.History) < 20 && len(sets) > ok+2 {
		t.Fatalf("%d sets for %d successful runs", len(sets), ok)
	}

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
	if m := get("/metrics"); !strings.Contains(m, `clusterkeep_schedule_runs_total{result="ok",target="`+to+`"}`) {
		t.Fatalf("no scheduled-run metric:\n%s", m)
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
