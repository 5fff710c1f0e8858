package metrics

import (
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/schedule"
	"github.com/prometheus/client_golang/prometheus"
)

// scheduleCollector reports the scheduled backups from the schedule's
// record in the hive: every node reports the same figures (the record is
// replicated), labelled by the schedule's target. The scheduled_backup_*
// figures are those of backup_last_* per target, from the runs the record
// keeps (each run names its target), so a target the schedule left keeps
// its last figures while its runs are in the history.
type scheduleCollector struct {
	record func() (config, state, runNow string, err error)

	runs, lastSuccess, lastEnd, lastSeconds, lastBytes, lastOK, failing, next *prometheus.Desc
	tLastTime, tLastBytes, tLastSeconds, tLastSuccess                         *prometheus.Desc
}

// ScheduleRecord is what the schedule collector reads.
type ScheduleRecord func() (config, state, runNow string, err error)

// AttachSchedule reports the scheduled backups.
func (m *Metrics) AttachSchedule(record ScheduleRecord) error {
	return m.reg.Register(&scheduleCollector{record: record,
		runs:         desc("schedule_runs_total", "Scheduled backup runs since the schedule began, by target and result (ok, failed), whichever node took them.", "target", "result"),
		lastSuccess:  desc("schedule_last_success_timestamp_seconds", "When the last successful scheduled backup ended (Unix time).", "target"),
		lastEnd:      desc("schedule_last_run_timestamp_seconds", "When the last scheduled run ended (Unix time).", "target"),
		lastSeconds:  desc("schedule_last_run_duration_seconds", "Duration of the last scheduled run.", "target"),
		lastBytes:    desc("schedule_last_run_size_bytes", "Stored size of the set the last scheduled run made.", "target"),
		lastOK:       desc("schedule_last_run_success", "1 when the last scheduled run succeeded, 0 when it failed.", "target"),
		failing:      desc("schedule_consecutive_failures", "Scheduled runs failed in a row (0 after a success).", "target"),
		next:         desc("schedule_next_run_timestamp_seconds", "When the next scheduled run is due (Unix time).", "target"),
		tLastTime:    desc("scheduled_backup_last_completion_timestamp_seconds", "When the last successful scheduled backup to the target completed (Unix time).", "target"),
		tLastBytes:   desc("scheduled_backup_last_size_bytes", "Stored size of the set the last successful scheduled backup to the target made.", "target"),
		tLastSeconds: desc("scheduled_backup_last_duration_seconds", "Duration of the last successful scheduled backup to the target, from its start to its set verified.", "target"),
		tLastSuccess: desc("scheduled_backup_last_success", "1 when the last scheduled backup to the target succeeded, 0 when it failed.", "target"),
	})
}

func (c *scheduleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.runs, c.lastSuccess, c.lastEnd, c.lastSeconds, c.lastBytes, c.lastOK, c.failing, c.next,
		c.tLastTime, c.tLastBytes, c.tLastSeconds, c.tLastSuccess} {
		ch <- d
	}
}

func (c *scheduleCollector) Collect(ch chan<- prometheus.Metric) {
	cs, ss, _, err := c.record()
	if err != nil || cs == "" {
		return
	}
	cfg, err := schedule.ParseConfig(cs)
	if err != nil {
		return
	}
	st, err := schedule.ParseState(ss)
	if err != nil {
		return
	}
	t := cfg.Target
	for target, n := range st.RunsByTarget(t) {
		counter(ch, c.runs, float64(n.OK), target, schedule.OK)
		counter(ch, c.runs, float64(n.Failed), target, schedule.Failed)
	}
	gauge(ch, c.failing, float64(st.Failures), t)
	if !st.LastSuccess.IsZero() {
		gauge(ch, c.lastSuccess, unix(st.LastSuccess), t)
	}
	if l := st.Last; !l.Ended.IsZero() {
		gauge(ch, c.lastEnd, unix(l.Ended), t)
		gauge(ch, c.lastSeconds, l.Ended.Sub(l.Started).Seconds(), t)
		gauge(ch, c.lastBytes, float64(l.Bytes), t)
		gauge(ch, c.lastOK, b2f(l.Result == schedule.OK), t)
	}
	if spec, err := schedule.ParseSpec(cfg.Spec); err == nil && !cfg.Paused {
		if n := spec.Next(time.Now()); !n.IsZero() {
			gauge(ch, c.next, unix(n), t)
		}
	}
	c.collectTargets(ch, cfg, st)
}

// collectTargets reports, per target of the runs kept, the last ended
// run's result and the last successful one's figures.
func (c *scheduleCollector) collectTargets(ch chan<- prometheus.Metric, cfg schedule.Config, st schedule.State) {
	runs := st.History
	if len(runs) == 0 && !st.Last.Ended.IsZero() {
		runs = []schedule.Run{st.Last}
	}
	type figures struct {
		last, ok *schedule.Run
	}
	byTarget := map[string]*figures{}
	var order []string
	for i := range runs { // oldest first
		r := &runs[i]
		if r.Ended.IsZero() || r.Result == schedule.Running {
			continue
		}
		t := runTarget(*r, cfg.Target)
		f := byTarget[t]
		if f == nil {
			f = &figures{}
			byTarget[t] = f
			order = append(order, t)
		}
		f.last = r
		if r.Result == schedule.OK {
			f.ok = r
		}
	}
	for _, t := range order {
		f := byTarget[t]
		gauge(ch, c.tLastSuccess, b2f(f.last.Result == schedule.OK), t)
		if ok := f.ok; ok != nil {
			gauge(ch, c.tLastTime, unix(ok.Ended), t)
			gauge(ch, c.tLastBytes, float64(ok.Bytes), t)
			gauge(ch, c.tLastSeconds, ok.Ended.Sub(ok.Started).Seconds(), t)
		}
	}
}

// runTarget is the target a run backed up to: as recorded, else the
// parent of its set's location, else the schedule's (runs recorded before
// runs named their target).
func runTarget(r schedule.Run, fallback string) string {
	if r.Target != "" {
		return r.Target
	}
	if i := strings.LastIndex(r.Path, "/"); i > 0 {
		return r.Path[:i]
	}
	return fallback
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
