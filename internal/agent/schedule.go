package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/dashboard"
	"github.com/clusterkeep/clusterkeep/internal/retention"
	"github.com/clusterkeep/clusterkeep/internal/schedule"
)

// startSchedule runs the scheduled backups' runner: it acts only while this
// node leads.
func (a *Agent) startSchedule() {
	ctx, cancel := context.WithCancel(context.Background())
	a.stopSchedule = cancel
	r := &schedule.Runner{Store: a.svc, Backup: a.scheduledBackup, Log: a.log.With("part", "schedule")}
	a.scheduling.Add(1)
	go func() {
		defer a.scheduling.Done()
		r.Run(ctx)
	}()
}

// scheduledBackup takes a run's backup as `backup create` would, with this
// node's certificate.
func (a *Agent) scheduledBackup(ctx context.Context, c schedule.Config) (schedule.Outcome, error) {
	recipients, err := backupset.ParseRecipients(c.Recipients, nil)
	if err != nil {
		return schedule.Outcome{}, err
	}
	log := a.log.With("part", "schedule")
	res, err := backup.Create(ctx, backup.Options{DataDir: a.cfg.DataDir, To: c.Target, Recipients: recipients,
		Log: log, Client: []client.Option{a.nodeCreds()}})
	if err != nil {
		return schedule.Outcome{}, err
	}
	out := schedule.Outcome{Path: res.Path, Bytes: res.StoredBytes}
	// Retention after each success; prune keeps the newest set that
	// verifies.
	policy := retention.Policy{Last: c.KeepLast, Daily: c.KeepDaily, Weekly: c.KeepWeekly, Monthly: c.KeepMonthly}
	if !policy.Empty() {
		pr, err := backup.Prune(ctx, backup.PruneOptions{Target: c.Target, Policy: policy, Log: log})
		if err != nil {
			// The set is made and verified: the run succeeded, and the
			// next one prunes again (retrying would make another set).
			out.Warning = fmt.Sprintf("prune: %v", err)
			return out, nil
		}
		log.Info("pruned", "kept", len(pr.Kept), "removed", len(pr.Removed))
	}
	return out, nil
}

// scheduleRuns shows the scheduled backups' runs on the dashboard's
// backups page. A run's set was verified when it was written (backup
// create verifies what it stored before it reports success).
type scheduleRuns struct{ svc *cluster.Service }

func (s scheduleRuns) Name() string {
	cs, _, _, err := s.svc.ScheduleRecord()
	if err != nil || cs == "" {
		return "Scheduled backups: none set"
	}
	c, err := schedule.ParseConfig(cs)
	if err != nil {
		return "Scheduled backups"
	}
	name := fmt.Sprintf("Scheduled backups: %s to %s", c.Spec, c.Target)
	if spec, err := schedule.ParseSpec(c.Spec); err == nil && !c.Paused {
		name += ", next " + spec.Next(time.Now()).Format(time.RFC3339)
	}
	return name
}

func (s scheduleRuns) Backups(context.Context) ([]dashboard.Backup, error) {
	_, ss, _, err := s.svc.ScheduleRecord()
	if err != nil {
		return nil, err
	}
	st, err := schedule.ParseState(ss)
	if err != nil {
		return nil, err
	}
	runs := st.History
	if st.Last.Result == schedule.Running {
		runs = append(runs, st.Last)
	}
	names := map[string]string{}
	if ms, err := s.svc.Members(); err == nil {
		for _, m := range ms {
			names[m.ID] = m.Name
		}
	}
	var out []dashboard.Backup
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		b := dashboard.Backup{ID: r.Slot.Format(time.RFC3339), Kind: "backup", Type: "scheduled", Where: r.Path,
			Started: r.Started, Ended: r.Ended, Result: r.Result, Bytes: r.Bytes, Error: r.Error}
		if n := names[r.Runner]; n != "" && b.Where == "" {
			b.Where = "by " + n
		}
		switch r.Result {
		case schedule.OK:
			b.Result, b.Verified = "completed", "verified"
		case schedule.Failed:
			b.Verified = "—"
		}
		out = append(out, b)
	}
	return out, nil
}
