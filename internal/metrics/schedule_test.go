package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func TestScheduleMetrics(t *testing.T) {
	m := New()
	ended := time.Date(2026, 11, 25, 10, 0, 30, 0, time.UTC)
	state := `{"last":{"slot":"2026-11-25T10:00:00Z","runner":"a","started":"2026-11-25T10:00:00Z","ended":"2026-11-25T10:00:30Z","result":"failed","error":"disk full","bytes":0},` +
		`"failures":2,"last_success":"2026-11-25T09:00:20Z","succeeded":7,"failed_runs":3}`
	if err := m.AttachSchedule(func() (string, string, string, error) {
		return `{"spec":"@every 1h","target":"/backups"}`, state, "", nil
	}); err != nil {
		t.Fatal(err)
	}
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, mm := range f.Metric {
			key := f.GetName()
			for _, l := range mm.Label {
				if l.GetName() == "target" && l.GetValue() != "/backups" {
					t.Fatalf("%s: target %q", key, l.GetValue())
				}
				if l.GetName() == "result" {
					key += "/" + l.GetValue()
				}
			}
			got[key] = value(mm)
		}
	}
	want := map[string]float64{
		"clusterkeep_schedule_runs_total/ok":                  7,
		"clusterkeep_schedule_runs_total/failed":              3,
		"clusterkeep_schedule_consecutive_failures":           2,
		"clusterkeep_schedule_last_run_success":               0,
		"clusterkeep_schedule_last_run_duration_seconds":      30,
		"clusterkeep_schedule_last_run_timestamp_seconds":     float64(ended.Unix()),
		"clusterkeep_schedule_last_success_timestamp_seconds": float64(time.Date(2026, 11, 25, 9, 0, 20, 0, time.UTC).Unix()),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got["clusterkeep_schedule_next_run_timestamp_seconds"] <= float64(time.Now().Unix()) {
		t.Errorf("next run %v is not in the future", got["clusterkeep_schedule_next_run_timestamp_seconds"])
	}
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// The scheduled backups' figures per target, from the runs the record
// keeps: a target the schedule moved away from keeps its last figures; a
// run recorded before runs named their target counts for its set's
// parent.
func TestScheduledBackupMetricsPerTarget(t *testing.T) {
	m := New()
	run := func(target, path, started string, seconds int, result string, bytes int64) string {
		s, _ := time.Parse(time.RFC3339, started)
		e := s.Add(time.Duration(seconds) * time.Second)
		return fmt.Sprintf(`{"slot":%q,"runner":"a","target":%q,"path":%q,"started":%q,"ended":%q,"result":%q,"bytes":%d}`,
			started, target, path, started, e.Format(time.RFC3339), result, bytes)
	}
	history := []string{
		run("", "s3://bucket/old/c-1", "2026-11-25T06:00:00Z", 40, "ok", 500),
		run("/dir", "/dir/c-2", "2026-11-25T07:00:00Z", 10, "ok", 100),
		run("/dir", "/dir/c-3", "2026-11-25T08:00:00Z", 12, "ok", 120),
		run("/dir", "", "2026-11-25T09:00:00Z", 3, "failed", 0),
		run("s3://bucket/new", "s3://bucket/new/c-5", "2026-11-25T10:00:00Z", 20, "ok", 300),
	}
	state := `{"last":` + history[len(history)-1] + `,"succeeded":4,"failed_runs":1,"history":[` + strings.Join(history, ",") + `]}`
	if err := m.AttachSchedule(func() (string, string, string, error) {
		return `{"spec":"@every 1h","target":"s3://bucket/new"}`, state, "", nil
	}); err != nil {
		t.Fatal(err)
	}
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "clusterkeep_scheduled_backup_") {
			continue
		}
		for _, mm := range f.Metric {
			key := strings.TrimPrefix(f.GetName(), "clusterkeep_scheduled_backup_")
			for _, l := range mm.Label {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got[key] = value(mm)
		}
	}
	ts := func(s string, plus int) float64 {
		t, _ := time.Parse(time.RFC3339, s)
		return float64(t.Add(time.Duration(plus) * time.Second).Unix())
	}
	want := map[string]float64{
		"last_success{target=/dir}":                                 0,
		"last_completion_timestamp_seconds{target=/dir}":            ts("2026-11-25T08:00:00Z", 12),
		"last_size_bytes{target=/dir}":                              120,
		"last_duration_seconds{target=/dir}":                        12,
		"last_success{target=s3://bucket/old}":                      1,
		"last_completion_timestamp_seconds{target=s3://bucket/old}": ts("2026-11-25T06:00:00Z", 40),
		"last_size_bytes{target=s3://bucket/old}":                   500,
		"last_duration_seconds{target=s3://bucket/old}":             40,
		"last_success{target=s3://bucket/new}":                      1,
		"last_completion_timestamp_seconds{target=s3://bucket/new}": ts("2026-11-25T10:00:00Z", 20),
		"last_size_bytes{target=s3://bucket/new}":                   300,
		"last_duration_seconds{target=s3://bucket/new}":             20,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (reported %v), want %v", k, g, ok, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d series, want %d: %v", len(got), len(want), got)
	}
}

// Runs are counted per target: a schedule moved to another target starts
// that target's count at zero, and the old target keeps its own; counts
// recorded before they were kept per target are the last run's target's.
func TestScheduleRunsCountedPerTarget(t *testing.T) {
	for _, tt := range []struct {
		name, state string
		want        map[string]float64
	}{
		{"moved", `{"last":{"target":"/new","result":"ok"},"succeeded":7,"failed_runs":1,"by_target":{"/old":{"ok":5,"failed":1},"/new":{"ok":2}}}`,
			map[string]float64{"/old/ok": 5, "/old/failed": 1, "/new/ok": 2, "/new/failed": 0}},
		{"recorded before", `{"last":{"target":"/old","result":"ok"},"succeeded":4,"failed_runs":2}`,
			map[string]float64{"/old/ok": 4, "/old/failed": 2}},
		{"partly before", `{"last":{"target":"/new","result":"ok"},"succeeded":4,"failed_runs":2,"by_target":{"/new":{"ok":1}}}`,
			map[string]float64{"/new/ok": 4, "/new/failed": 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			if err := m.AttachSchedule(func() (string, string, string, error) {
				return `{"spec":"@every 1h","target":"/new"}`, tt.state, "", nil
			}); err != nil {
				t.Fatal(err)
			}
			families, err := m.Registry().Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, f := range families {
				if f.GetName() != "clusterkeep_schedule_runs_total" {
					continue
				}
				for _, mm := range f.Metric {
					var target, result string
					for _, l := range mm.Label {
						switch l.GetName() {
						case "target":
							target = l.GetValue()
						case "result":
							result = l.GetValue()
						}
					}
					got[target+"/"+result] = value(mm)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("runs_total %v, want %v", got, tt.want)
			}
		})
	}
}
