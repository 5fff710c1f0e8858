package metrics

import (
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
