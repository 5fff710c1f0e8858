package s3

import (
	"path"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/schedule"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// A schedule whose target is S3: the leader's agent, with the AWS settings
// in its environment, makes sets in the bucket that verify, and applies the
// retention there (keep-last 1 leaves the newest set, and nothing of the
// older one).
func TestScheduledBackupToS3(t *testing.T) {
	s := server(t)
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // the in-process agent's environment
	}
	nodes := tc.InProcessWith(t, 1, nil)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	b := bucket(t, s)
	to := "s3://" + b + "/scheduled"
	if err := c.SetSchedule(ctx, schedule.Config{Spec: "@every 1h", Target: to, KeepLast: 1}); err != nil {
		t.Fatal(err)
	}
	var runs []schedule.Run
	for range 2 {
		runs = append(runs, tc.RunScheduleNow(t, c))
	}
	env := append(s.Env(), client.EnvCluster+"="+nodes[0].API())
	for _, r := range runs {
		if !strings.HasPrefix(r.Path, to+"/") || r.Warning != "" || r.Bytes == 0 || r.Target != to {
			t.Fatalf("scheduled run to S3: %+v", r)
		}
	}
	var v map[string]any
	jsonCLI(t, env, &v, "backup", "verify", runs[1].Path)
	if v["ok"] != true {
		t.Fatalf("verify: %v", v)
	}
	if sets := listSets(t, env, to); len(sets) != 1 || sets[0].Path != runs[1].Path {
		t.Fatalf("keep-last 1 on S3: %+v", sets)
	}
	tg := s3Target(t, s, b, "scheduled", nil)
	if left := keys(t, tg, "scheduled/"+path.Base(runs[0].Path)+"/"); len(left) != 0 {
		t.Fatalf("the pruned set left objects: %v", left)
	}
}
