package metrics

import (
	"time"

	"github.com/clusterkeep/clusterkeep/internal/schedule"
	"github.com/prometheus/client_golang/prometheus"
)

// scheduleCollector reports the scheduled backups from the schedule's
// record in the hive: every node reports the same figures (the record is
// replicated), labelled by the schedule's target.
type scheduleCollector struct {
	record func() (config, state, runNow string, err error)

	runs, lastSuccess, lastEnd, lastSeconds, lastBytes, lastOK, failing, next *prometheus.Desc
}

// ScheduleRecord is what the schedule collector reads.
type ScheduleRecord func() (config, state, runNow string, err error)

// AttachSchedule reports the scheduled backups.
func (m *Metrics) AttachSchedule(record ScheduleRecord) error {
	return m.reg.Register(&scheduleCollector{record: record,
		runs:        desc("schedule_runs_total", "Scheduled backup runs since the schedule began, by result (ok, failed), whichever node took them.", "target", "result"),
		lastSuccess: desc("schedule_last_success_timestamp_seconds", "When the last successful scheduled backup ended (Unix time).", "target"),
		lastEnd:     desc("schedule_last_run_timestamp_seconds", "When the last scheduled run ended (Unix time).", "target"),
		lastSeconds: desc("schedule_last_run_duration_seconds", "Duration of the last scheduled run.", "target"),
		lastBytes:   desc("schedule_last_run_size_bytes", "Stored size of the set the last scheduled run made.", "target"),
		lastOK:      desc("schedule_last_run_success", "1 when the last scheduled run succeeded, 0 when it failed.", "target"),
		failing:     desc("schedule_consecutive_failures", "Scheduled runs failed in a row (0 after a success).", "target"),
		next:        desc("schedule_next_run_timestamp_seconds", "When the next scheduled run is due (Unix time).", "target"),
	})
}

func (c *scheduleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.runs, c.lastSuccess, c.lastEnd, c.lastSeconds, c.lastBytes, c.lastOK, c.failing, c.next} {
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
	counter(ch, c.runs, float64(st.Succeeded), t, schedule.OK)
	counter(ch, c.runs, float64(st.FailedRuns), t, schedule.Failed)
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
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
