package testcluster

import (
	"fmt"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/schedule"
)

// RunScheduleNow asks the cluster for a scheduled run at once (run-now)
// and waits until it succeeded; it returns the run.
func RunScheduleNow(t testing.TB, c *client.Cluster) schedule.Run {
	t.Helper()
	asked, err := c.RunSchedule(Context(t))
	if err != nil {
		t.Fatal(err)
	}
	var run schedule.Run
	Eventually(t, "the run asked for", func() error {
		s, err := c.Schedule(Context(t))
		if err != nil {
			return err
		}
		if l := s.State.Last; l.Started.Before(asked) || l.Result == schedule.Running {
			return fmt.Errorf("last run %+v", l)
		}
		run = s.State.Last
		return nil
	})
	if run.Result != schedule.OK {
		t.Fatalf("the run asked for failed: %+v", run)
	}
	return run
}
